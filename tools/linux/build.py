#!/usr/bin/env python3
"""Build the small Linux test kernels that boot on emu's and QEMU's machines.

Each kernel is Debian's linux-source-6.1 (``apt-get install linux-source-6.1``, which puts
/usr/src/linux-source-6.1.tar.xz in place) configured by ``make tinyconfig`` plus the
fragments next to this script (common.config, then ARCH.config), with a built-in initramfs
that holds /dev/console, /sys and a static /init (init.c). The outputs go to a cache outside
the repository::

    ~/.cache/emu-linux/src/linux-source-6.1_VERSION/   the unpacked source (shared)
    ~/.cache/emu-linux/KEY/                            one kernel: vmlinux (x86_64, a PVH
                                                       ELF) and bzImage next to it, Image
                                                       (arm64), vmlinux and System.map for
                                                       symbols, .config, build.log

KEY is the sha256 of everything that decides the output: the tarball's name and package
version, the architecture, the fragments, init.c, the compiler's version and this script's
RECIPE number. A directory that is complete (it has its ``done`` stamp) is reused as it is.

    python3 tools/linux/build.py x86_64 arm64      # build both (or reuse them)
    python3 tools/linux/build.py --print-path arm64   # the kernel's path (built if needed)

Needs make, gcc, flex, bison, bc, libelf-dev and cpio, and gcc-aarch64-linux-gnu for arm64
(``apt-get install -y linux-source-6.1 flex bison bc libelf-dev cpio gcc-aarch64-linux-gnu``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARBALL = Path("/usr/src/linux-source-6.1.tar.xz")
PACKAGE = "linux-source-6.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emu-linux"
JOBS = 2  # the machine is shared; never more
# Bump when the way a kernel is built changes in a way the other inputs do not show.
RECIPE = 2


@dataclass(frozen=True)
class Arch:
    name: str             # the name on the command line and of the fragment
    kernel_arch: str      # make ARCH=
    cross: str            # make CROSS_COMPILE=
    target: str           # the make target
    image: str            # what `target` produces, relative to the build directory
    output: str           # its name in the cache directory
    extra: tuple[tuple[str, str], ...] = ()  # more outputs: (built file, name in the cache)


ARCHES = {
    # bzImage's make target builds vmlinux on the way; both are kept.
    "x86_64": Arch("x86_64", "x86", "", "bzImage", "vmlinux", "vmlinux",
                   (("arch/x86/boot/bzImage", "bzImage"),)),
    "arm64": Arch("arm64", "arm64", "aarch64-linux-gnu-", "Image", "arch/arm64/boot/Image",
                  "Image"),
}


def log(msg: str) -> None:
    print(f"build.py: {msg}", file=sys.stderr, flush=True)


def package_version() -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", PACKAGE],
                         capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout:
        sys.exit(f"build.py: {PACKAGE} is not installed (apt-get install -y {PACKAGE})")
    return out.stdout.strip()


def compiler_version(arch: Arch) -> str:
    cc = f"{arch.cross}gcc"
    if shutil.which(cc) is None:
        pkg = "gcc-aarch64-linux-gnu" if arch.cross else "gcc"
        sys.exit(f"build.py: {cc} not found (apt-get install -y {pkg})")
    return subprocess.run([cc, "--version"], capture_output=True, text=True,
                          check=True).stdout.splitlines()[0]


def fragment(arch: Arch) -> bytes:
    return (HERE / "common.config").read_bytes() + (HERE / f"{arch.name}.config").read_bytes()


def cache_key(arch: Arch, version: str) -> str:
    h = hashlib.sha256()
    for part in (TARBALL.name.encode(), version.encode(), arch.name.encode(), fragment(arch),
                 (HERE / "init.c").read_bytes(), compiler_version(arch).encode(),
                 str(RECIPE).encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    return h.hexdigest()


def source_tree(version: str) -> Path:
    """The unpacked tarball, shared by every kernel of that package version."""
    top = CACHE / "src" / f"{PACKAGE}_{version}"
    tree = top / PACKAGE
    if (top / "done").exists():
        return tree
    if not TARBALL.exists():
        sys.exit(f"build.py: {TARBALL} is missing (apt-get install -y {PACKAGE})")
    log(f"unpacking {TARBALL} into {top}")
    shutil.rmtree(top, ignore_errors=True)
    top.mkdir(parents=True)
    subprocess.run(["tar", "-xJf", str(TARBALL), "-C", str(top)], check=True)
    (top / "done").write_text(version + "\n")
    return tree


def parse_config(text: str) -> dict[str, str]:
    """CONFIG_X=value lines and ``# CONFIG_X is not set`` (as "n")."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
        elif line.startswith("# CONFIG_") and line.endswith(" is not set"):
            out[line[2:-len(" is not set")]] = "n"
    return out


def build_init(arch: Arch, work: Path) -> Path:
    """/init and the initramfs list (usr/gen_init_cpio's format) that holds it."""
    init = work / "init"
    subprocess.run([f"{arch.cross}gcc", "-Os", "-static", "-nostdlib", "-ffreestanding",
                    "-fno-pie", "-no-pie", "-fno-stack-protector",
                    "-fno-asynchronous-unwind-tables",
                    "-Wl,--build-id=none", "-s", "-o", str(init), str(HERE / "init.c")],
                   check=True)
    cpio_list = work / "initramfs.list"
    cpio_list.write_text(
        "dir /dev 0755 0 0\n"
        "nod /dev/console 0600 0 0 c 5 1\n"
        "dir /sys 0755 0 0\n"
        f"file /init {init} 0755 0 0\n")
    return cpio_list


def build(arch: Arch, version: str, out: Path) -> None:
    tree = source_tree(version)
    work = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    bdir = work / "build"
    logf = (work / "build.log").open("w")
    make = ["make", "-C", str(tree), f"O={bdir}", f"ARCH={arch.kernel_arch}", f"-j{JOBS}"]
    if arch.cross:
        make.append(f"CROSS_COMPILE={arch.cross}")

    def run(*args: str) -> None:
        logf.write(f"$ {' '.join(make + list(args))}\n")
        logf.flush()
        r = subprocess.run(make + list(args), stdout=logf, stderr=subprocess.STDOUT)
        if r.returncode:
            sys.exit(f"build.py: make {' '.join(args)} failed; see {work / 'build.log'}")

    t0 = time.monotonic()
    cpio_list = build_init(arch, work)
    run("tinyconfig")
    frag = fragment(arch).decode()
    extra = f'CONFIG_INITRAMFS_SOURCE="{cpio_list}"\n'
    config = bdir / ".config"
    config.write_text(config.read_text() + frag + extra)
    run("olddefconfig")
    got = parse_config(config.read_text())
    wanted = parse_config(frag + extra)
    wrong = {k: (v, got.get(k, "n")) for k, v in wanted.items() if got.get(k, "n") != v}
    if wrong:
        for k, (v, g) in sorted(wrong.items()):
            log(f"{k}: asked for {v}, olddefconfig gave {g}")
        sys.exit("build.py: the fragment does not hold (a dependency is missing)")
    log(f"building {arch.name} in {bdir} (log: {work / 'build.log'})")
    run(arch.target)
    shutil.copy2(bdir / arch.image, work / arch.output)
    if arch.output != "vmlinux":
        shutil.copy2(bdir / "vmlinux", work / "vmlinux")
    for built, name in arch.extra:
        shutil.copy2(bdir / built, work / name)
    shutil.copy2(bdir / "System.map", work / "System.map")
    shutil.copy2(config, work / "config")
    shutil.rmtree(bdir)
    secs = time.monotonic() - t0
    (work / "done").write_text(f"{arch.name} built in {secs:.0f} s\n")
    logf.close()
    shutil.rmtree(out, ignore_errors=True)
    work.rename(out)
    log(f"{arch.name}: built in {secs:.0f} s")


def kernel_path(name: str) -> Path:
    arch = ARCHES[name]
    version = package_version()
    out = CACHE / cache_key(arch, version)
    if not (out / "done").exists():
        build(arch, version, out)
    return out / arch.output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("arch", nargs="+", choices=sorted(ARCHES))
    p.add_argument("--print-path", action="store_true",
                   help="print each kernel's path (building the ones not cached)")
    args = p.parse_args(argv)
    for name in args.arch:
        path = kernel_path(name)
        print(path if args.print_path else f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
