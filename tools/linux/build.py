#!/usr/bin/env python3
"""Build the small Linux test kernels that boot on emu's and QEMU's machines.

Each kernel is Debian's linux-source-6.1 (``apt-get install linux-source-6.1``, which puts
/usr/src/linux-source-6.1.tar.xz in place) configured by ``make tinyconfig`` plus the
fragments next to this script (common.config, then ARCH.config). The initramfs the kernels
boot with (``-initrd init.cpio``) holds /dev/console, /sys, /proc and a static /init
(init.c, built with zig's C compiler and musl: ``python -m ziglang cc -target
ARCH-linux-musl``). The outputs go to a cache outside the repository::

    ~/.cache/emu-linux/src/linux-source-6.1_VERSION/   the unpacked source (shared)
    ~/.cache/emu-linux/KEY/                            one kernel: vmlinux (x86_64, a PVH
                                                       ELF) and bzImage next to it, Image
                                                       (arm64), vmlinux (with DWARF) and
                                                       System.map, config, build.log
    ~/.cache/emu-linux/init-KEY/ARCH/                  init and init.cpio

A kernel's KEY is the sha256 of everything that decides it: the tarball's name and package
version, the architecture, the fragments, the compiler's version and this script's RECIPE
number; the initramfs's is that of init.c, the zig version and RECIPE. A directory that is
complete (it has its ``done`` stamp) is reused as it is.

    python3 tools/linux/build.py x86_64 arm64           # build both (or reuse them)
    python3 tools/linux/build.py --print-path arm64     # the kernel's path (built if needed)
    python3 tools/linux/build.py --print-initrd arm64   # the initramfs's path

Needs make, gcc, flex, bison, bc, libelf-dev, and gcc-aarch64-linux-gnu for arm64
(``apt-get install -y linux-source-6.1 flex bison bc libelf-dev gcc-aarch64-linux-gnu``),
and the ``ziglang`` package for /init (emu's dev extra).
"""

from __future__ import annotations

import argparse
import fcntl
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
    zig_target: str       # /init's target
    extra: tuple[tuple[str, str], ...] = ()  # more outputs: (built file, name in the cache)


ARCHES = {
    # bzImage's make target builds vmlinux on the way; both are kept.
    "x86_64": Arch("x86_64", "x86", "", "bzImage", "vmlinux", "vmlinux", "x86_64-linux-musl",
                   (("arch/x86/boot/bzImage", "bzImage"),)),
    "arm64": Arch("arm64", "arm64", "aarch64-linux-gnu-", "Image", "arch/arm64/boot/Image",
                  "Image", "aarch64-linux-musl"),
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
    parts = [TARBALL.name.encode(), version.encode(), arch.name.encode(), fragment(arch),
             compiler_version(arch).encode(), str(RECIPE).encode()]
    if arch.extra:  # the make target and the outputs kept beside the image
        parts.append(repr((arch.target, arch.extra)).encode())
    for part in parts:
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


def zig_version() -> str:
    out = subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit("build.py: zig is missing (pip install ziglang; emu's dev extra has it)")
    return out.stdout.strip()


def newc(entries: list[tuple[str, int, bytes, int]]) -> bytes:
    """A cpio archive in the "newc" format the kernel unpacks (Documentation/driver-api/
    early-userspace/buffer-format.rst): (name, mode, data, rdev) each, then the trailer."""
    out = bytearray()
    for ino, (name, mode, data, rdev) in enumerate([*entries, ("TRAILER!!!", 0, b"", 0)],
                                                    start=1):
        raw = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev >> 8, rdev & 0xFF,
                  len(raw), 0)
        out += b"070701" + b"".join(b"%08X" % f for f in fields) + raw
        out += bytes(-len(out) % 4) + data
        out += bytes(-len(out) % 4)
    return bytes(out)


def initrd_path(name: str) -> Path:
    """/init for that architecture and the initramfs holding it (built if missing)."""
    arch = ARCHES[name]
    h = hashlib.sha256()
    for part in ((HERE / "init.c").read_bytes(), zig_version().encode(), str(RECIPE).encode()):
        h.update(len(part).to_bytes(8, "little") + part)
    out = CACHE / f"init-{h.hexdigest()}" / arch.name
    if (out / "done").exists():
        return out / "init.cpio"
    out.mkdir(parents=True, exist_ok=True)
    with (out / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "done").exists():
            build_initrd(arch, out)
    return out / "init.cpio"


def build_initrd(arch: Arch, out: Path) -> None:
    init = out / "init"
    subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", arch.zig_target,
                    "-static", "-Os", "-s", "-Wall", "-Werror", "-o", str(init),
                    str(HERE / "init.c")], check=True)
    console = (5 << 8) | 1
    (out / "init.cpio").write_bytes(newc([
        ("dev", 0o40755, b"", 0), ("dev/console", 0o20600, b"", console),
        ("sys", 0o40755, b"", 0), ("proc", 0o40755, b"", 0),
        ("init", 0o100755, init.read_bytes(), 0)]))
    (out / "done").write_text("\n")


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
    run("tinyconfig")
    frag = fragment(arch).decode()
    config = bdir / ".config"
    config.write_text(config.read_text() + frag)
    run("olddefconfig")
    got = parse_config(config.read_text())
    wanted = parse_config(frag)
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
        CACHE.mkdir(parents=True, exist_ok=True)
        # one build per kernel at a time: another process building it is waited for
        with (CACHE / f"{out.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (out / "done").exists():
                build(arch, version, out)
    return out / arch.output


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("arch", nargs="+", choices=sorted(ARCHES))
    p.add_argument("--print-path", action="store_true",
                   help="print each kernel's path (building the ones not cached)")
    p.add_argument("--print-initrd", action="store_true",
                   help="print each initramfs's path (building the ones not cached)")
    args = p.parse_args(argv)
    for name in args.arch:
        if args.print_initrd:
            print(initrd_path(name))
            continue
        path = kernel_path(name)
        initrd = initrd_path(name)
        print(path if args.print_path else f"{name}: {path} (initrd {initrd})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
