#!/usr/bin/env python3
"""Build emu's native helpers with zig's C compiler (the `ziglang` package).

    python3 native/build.py           rebuild emu/cpu/native/stop_hook.<arch>.so
    python3 native/build.py --check   rebuild into a temporary directory and compare
                                      byte-for-byte with the committed libraries

stop_hook.c is the run loop's stop request (docs/devel/run-loop.md): a Unicorn block hook
that must run without entering Python. It is built for each host architecture emu runs
on (Linux on x86_64 and aarch64) as a small shared library without libc, debug info or
build ID, so the output depends only on the source and the zig version.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import buildcheck  # tools/buildcheck.py: the build and --check command line

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(os.path.dirname(HERE), "emu", "cpu", "native")
#: host architectures (platform.machine()) and their zig targets
TARGETS = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


def build_all(out_dir):
    """Build stop_hook.<arch>.so for every host architecture into out_dir."""
    built = []
    for arch, target in TARGETS.items():
        name = f"stop_hook.{arch}.so"
        cmd = [sys.executable, "-m", "ziglang", "cc", "-target", target, "-shared", "-fPIC",
               "-O2", "-std=c11", "-g0", "-nostdlib", "-fno-stack-protector",
               "-fno-sanitize=all", "-fno-unwind-tables", "-fno-asynchronous-unwind-tables",
               "-Wall", "-Wextra", "-Werror", "-Wl,--build-id=none",
               "stop_hook.c", "-o", os.path.join(out_dir, name)]
        if subprocess.run(cmd, cwd=HERE).returncode != 0:
            sys.exit("build.py: failed to build {}:\n  {}".format(name, " ".join(cmd)))
        built.append(name)
    return built


def main():
    return buildcheck.main(__doc__.splitlines()[0], build_all, OUT_DIR, "emu/cpu/native",
                           "native libraries")


if __name__ == "__main__":
    sys.exit(main())
