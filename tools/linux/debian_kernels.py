#!/usr/bin/env python3
"""Fetch Debian's distribution kernels, unchanged, and an initramfs that boots them to /init.

The kernels are the ones ``linux-image-amd64`` and ``linux-image-arm64`` (bookworm, 6.1)
depend on: the script resolves the metapackage to its kernel package
(``apt-cache depends``), downloads that .deb with ``apt-get download`` and keeps only what
it needs from it (``/boot``: the compressed kernel ``vmlinuz-*``, its ``config-*`` and
``System.map-*``)::

    ~/.cache/emu-linux/debian/<package>_<version>/vmlinuz      the kernel, as Debian ships it
                                                  config, System.map

The initramfs is the test kernels' (tools/linux/build.py ``--print-initrd``): /dev/console,
/sys, /proc and the static /init of init.c.

    python3 tools/linux/debian_kernels.py --print-path amd64       # vmlinuz's path
    python3 tools/linux/debian_kernels.py --print-initrd arm64     # init.cpio's path
    python3 tools/linux/debian_kernels.py amd64 arm64              # both, described

arm64 packages need the foreign architecture in dpkg: when ``apt-cache`` does not know
``linux-image-arm64:arm64`` and the script runs as root, it runs ``dpkg --add-architecture
arm64`` and ``apt-get update`` itself. Standard library only; needs apt, dpkg-deb and tar
(and, for the initramfs, what tools/linux/build.py needs for /init: the ziglang package).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emu-linux"
         / "debian")
# Bump when the way the outputs are made changes in a way the other inputs do not show.


@dataclass(frozen=True)
class Arch:
    name: str        # Debian's architecture name, as on the command line
    meta: str        # the metapackage that names the current kernel
    cross: str       # the prefix of the C compiler that builds /init


ARCHES = {
    "amd64": Arch("amd64", "linux-image-amd64", ""),
    "arm64": Arch("arm64", "linux-image-arm64", "aarch64-linux-gnu-"),
}


def log(msg: str) -> None:
    print(f"debian_kernels.py: {msg}", file=sys.stderr, flush=True)


def run(args: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, **kw)


def native_arch() -> str:
    return run(["dpkg", "--print-architecture"], check=True).stdout.strip()


def qualified(name: str, arch: Arch) -> str:
    return name if arch.name == native_arch() else f"{name}:{arch.name}"


def ensure_foreign(arch: Arch) -> None:
    """Make apt know ``arch``'s packages (dpkg --add-architecture, apt-get update)."""
    if run(["apt-cache", "show", qualified(arch.meta, arch)]).returncode == 0:
        return
    if arch.name != native_arch():
        if os.geteuid() != 0:
            sys.exit(f"debian_kernels.py: apt does not know {arch.name} packages; run as root "
                     f"(dpkg --add-architecture {arch.name} && apt-get update)")
        log(f"adding the {arch.name} architecture to dpkg")
        subprocess.run(["dpkg", "--add-architecture", arch.name], check=True)
    log("apt-get update")
    subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)


def kernel_package(arch: Arch) -> tuple[str, str]:
    """The kernel package the metapackage depends on, and that package's version."""
    ensure_foreign(arch)
    out = run(["apt-cache", "depends", "--important", qualified(arch.meta, arch)], check=True)
    names = [line.split(":", 1)[1].strip() for line in out.stdout.splitlines()
             if line.strip().startswith("Depends:")]
    names = [n.split(":")[0] for n in names if n.split(":")[0].startswith("linux-image-")]
    if not names:
        sys.exit(f"debian_kernels.py: {arch.meta} depends on no linux-image package")
    pkg = names[0]
    show = run(["apt-cache", "show", "--no-all-versions", qualified(pkg, arch)], check=True)
    version = next(line.split(":", 1)[1].strip() for line in show.stdout.splitlines()
                   if line.startswith("Version:"))
    return pkg, version


def fetch_kernel(arch: Arch) -> Path:
    """~/.cache/emu-linux/debian/<package>_<version>/ with vmlinuz, config, System.map."""
    pkg, version = kernel_package(arch)
    out = CACHE / f"{pkg}_{version}"
    if (out / "done").exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        work = Path(tmp)
        work.chmod(0o777)  # apt-get download writes as _apt where it can
        log(f"downloading {pkg} {version}")
        r = subprocess.run(["apt-get", "download", "-q", f"{qualified(pkg, arch)}={version}"],
                           cwd=work, stdout=subprocess.DEVNULL)
        debs = list(work.glob("*.deb"))
        if r.returncode or len(debs) != 1:
            sys.exit(f"debian_kernels.py: apt-get download {pkg} failed")
        root = work / "root"
        root.mkdir()
        # dpkg -x without the modules (hundreds of MiB): only ./boot is kept.
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(debs[0])],
                               stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(root), "--wildcards", "./boot/*"],
                       stdin=tar.stdout, check=True)
        if tar.wait():
            sys.exit(f"debian_kernels.py: dpkg-deb could not read {debs[0].name}")
        boot = root / "boot"
        stage = work / "out"
        stage.mkdir()
        for prefix, name in (("vmlinuz-", "vmlinuz"), ("config-", "config"),
                             ("System.map-", "System.map")):
            found = sorted(boot.glob(prefix + "*"))
            if len(found) != 1:
                sys.exit(f"debian_kernels.py: {pkg} has no single /boot/{prefix}*")
            shutil.copy2(found[0], stage / name)
        (stage / "done").write_text(f"{pkg} {version} ({arch.name})\n")
        shutil.rmtree(out, ignore_errors=True)
        stage.rename(out)
    return out


def initramfs(arch: Arch) -> Path:
    """The test kernels' initramfs (tools/linux/build.py: /init built with zig and musl)."""
    sys.path.insert(0, str(HERE))
    import build  # tools/linux/build.py

    return build.initrd_path({"amd64": "x86_64", "arm64": "arm64"}[arch.name])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("arch", nargs="+", choices=sorted(ARCHES))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--print-path", action="store_true",
                   help="print each kernel's path (fetching the ones not cached)")
    g.add_argument("--print-initrd", action="store_true",
                   help="print each initramfs's path (building the ones not cached)")
    args = p.parse_args(argv)
    for name in args.arch:
        arch = ARCHES[name]
        if args.print_initrd:
            print(initramfs(arch))
            continue
        kernel = fetch_kernel(arch) / "vmlinuz"
        if args.print_path:
            print(kernel)
        else:
            print(f"{name}: {kernel} initrd {initramfs(arch)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
