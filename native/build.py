#!/usr/bin/env python3
"""Build emu's native helpers with zig's C compiler (the `ziglang` package).

    python3 native/build.py           rebuild emu/cpu/native/<source>.<arch>.so
    python3 native/build.py --check   rebuild into a temporary directory and compare
                                      byte-for-byte with the committed libraries

stop_hook.c is the run loop's stop request (docs/devel/run-loop.md): a Unicorn block hook
that must run without entering Python. cpu_exceptions.c runs QEMU's exception entry from
Unicorn's exception hooks (docs/devel/exceptions.md), with the TLB fill's native page walk
(page_walk.c) and the MRS/MSR hook's filter (sysreg_filter.c). Each is built for each host
architecture emu runs on (Linux on x86_64 and aarch64) as a small shared library without
libc, debug info or build ID, so the output depends only on the source and the zig version.
"""

import itertools
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
#: the native libraries, each built into emu/cpu/native/<name>.<arch>.so, and their sources
SOURCES = {"stop_hook": ("stop_hook.c",),
           "cpu_exceptions": ("cpu_exceptions.c", "page_walk.c", "sysreg_filter.c")}


def build_all(out_dir):
    """Build every source for every host architecture into out_dir."""
    built = []
    for (arch, target), (source, files) in itertools.product(TARGETS.items(),
                                                             SOURCES.items()):
        name = f"{source}.{arch}.so"
        cmd = [sys.executable, "-m", "ziglang", "cc", "-target", target, "-shared", "-fPIC",
               "-O2", "-std=c11", "-g0", "-nostdlib", "-fno-stack-protector",
               "-fno-sanitize=all", "-fno-unwind-tables", "-fno-asynchronous-unwind-tables",
               "-Wall", "-Wextra", "-Werror", "-Wl,--build-id=none",
               *files, "-o", os.path.join(out_dir, name)]
        if subprocess.run(cmd, cwd=HERE).returncode != 0:
            sys.exit("build.py: failed to build {}:\n  {}".format(name, " ".join(cmd)))
        built.append(name)
    return built


def main():
    return buildcheck.main(__doc__.splitlines()[0], build_all, OUT_DIR, "emu/cpu/native",
                           "native libraries")


if __name__ == "__main__":
    sys.exit(main())
