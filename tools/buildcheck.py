"""What the zig build scripts share (guest_images/build.py, firmware/build.py): compiler flags
and the command line.

Without options a script builds its outputs in place; with ``--check`` it builds them into a
temporary directory and compares them byte for byte with the committed ones, so that a test
can prove the committed binaries are what the sources build to.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable


def freestanding_flags(source_dir: str) -> list[str]:
    """The ``zig cc`` flags both builds share: a freestanding, static, position-dependent
    program without debug info, build ID or paths of this machine in it, so that the output
    depends only on the sources and the zig version (each build adds its -O level, target
    and more)."""
    return [
        "-std=c11",
        "-g0",                          # no debug info (it would hold paths)
        "-ffreestanding",
        "-nostdlib",
        "-static",
        "-fno-pic",
        "-fno-pie",
        "-fno-stack-protector",
        "-fno-sanitize=all",            # zig cc turns on UBSan traps otherwise
        "-fno-unwind-tables",
        "-fno-asynchronous-unwind-tables",
        "-mgeneral-regs-only",          # no FP/SIMD registers
        "-Wall",
        "-Wextra",
        "-Werror",
        "-ffile-prefix-map=" + source_dir + "=.",   # belt and braces: paths are relative anyway
        "-Ilib",
        "-Wl,--build-id=none",
    ]


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main(description: str, build_all: Callable[[str], list[str]], out_dir: str,
         shown: str, what: str) -> int:
    """Run a build script: ``build_all(directory)`` builds every output into ``directory`` and
    returns their paths relative to it; ``out_dir`` holds the committed outputs, ``shown`` is
    how messages name it (``guest_images``), ``what`` names the outputs (``images``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true",
                        help=f"rebuild into a temporary directory and compare with the {what} "
                             "in the tree")
    args = parser.parse_args()
    script = os.path.relpath(os.path.abspath(sys.argv[0]), os.path.dirname(out_dir))
    if not args.check:
        for rel in build_all(out_dir):
            print(f"built {shown}/{rel}")
        return 0
    with tempfile.TemporaryDirectory(prefix="buildcheck.") as tmp:
        built = build_all(tmp)
        differing = [rel for rel in built
                     if _read(os.path.join(tmp, rel)) != _read(os.path.join(out_dir, rel))]
    for rel in differing:
        print(f"differs: {shown}/{rel}")
    if differing:
        print(f"build.py --check: {len(differing)} of the {what} differ from a fresh build; "
              f"run python3 {script}")
        return 1
    print(f"build.py --check: all {len(built)} {what} match a fresh build")
    return 0
