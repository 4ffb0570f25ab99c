#!/usr/bin/env python3
"""Build the guest test images with zig's C compiler (the `ziglang` package).

    python3 guest_images/build.py           rebuild every image in place
    python3 guest_images/build.py --check   rebuild into a temporary directory
                                            and compare byte-for-byte with the
                                            images in the tree; exit 1 on any
                                            difference

Works from any directory.  The compiler always runs inside guest_images/
with relative paths, without debug info and without a build ID, so the
output depends only on the sources and the zig version.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import buildcheck  # tools/buildcheck.py: the build and --check command line

HERE = os.path.dirname(os.path.abspath(__file__))

IMAGES = ["hello", "spin", "halt", "unmapped", "trap", "pulse", "storm", "fwcfg", "fwcfgbench",
          "vmcoreinfo", "scenario", "panic", "vectors", "user", "paging", "ticks", "gicv3",
          "cpuid", "fill"]

# Images of one architecture only (the others are built for every one).
ARCH_ONLY = {"gicv3": "aarch64", "cpuid": "x86_64", "fill": "x86_64"}

# The images that take exceptions, run user code and change page tables
# (lib/traps.h) also link the exception entry code, the descriptor and
# page table set-up, and have a user area in their linker script.
TRAP_IMAGES = {"vectors", "user", "paging", "gicv3"}
TRAP_SOURCES = ["lib/{arch}/entry.S", "lib/{arch}/cpu.c", "lib/mmu.c"]

# Flags shared by both architectures.
COMMON_FLAGS = [
    "-O2",
    *buildcheck.freestanding_flags(HERE),
    "-Wl,-z,max-page-size=4096",    # keep segment padding (and files) small
]

ARCHES = {
    "x86_64": {
        "flags": ["-target", "x86_64-freestanding", "-mno-red-zone"],
        "entry": "pvh_start32",
    },
    "aarch64": {
        "flags": ["-target", "aarch64-freestanding", "-mcpu=cortex_a57"],
        "entry": "_start",
    },
}


def compile_command(arch, image, output):
    """The zig cc command line building one image (run in HERE)."""
    conf = ARCHES[arch]
    traps = image in TRAP_IMAGES
    script = "link_user.ld" if traps else "link.ld"
    extra = [source.format(arch=arch) for source in TRAP_SOURCES] if traps else []
    return (
        [sys.executable, "-m", "ziglang", "cc"]
        + conf["flags"]
        + COMMON_FLAGS
        + [
            "-Ilib/" + arch,
            # zig passes its own --entry, so the linker script's ENTRY()
            # is not enough.
            "-Wl,--entry=" + conf["entry"],
            f"-Wl,-T,lib/{arch}/{script}",
            f"lib/{arch}/start.S",
            f"lib/{arch}/arch.c",
            "lib/common.c",
            *extra,
            f"src/{image}.c",
            "-o",
            output,
        ]
    )


def build_all(out_dir):
    """Build every image into out_dir/<arch>/<image>.elf; return the paths
    relative to out_dir."""
    built = []
    for arch in ARCHES:
        os.makedirs(os.path.join(out_dir, arch), exist_ok=True)
        for image in IMAGES:
            if ARCH_ONLY.get(image, arch) != arch:
                continue
            rel = f"{arch}/{image}.elf"
            cmd = compile_command(arch, image, os.path.join(out_dir, rel))
            result = subprocess.run(cmd, cwd=HERE)
            if result.returncode != 0:
                sys.exit("build.py: failed to build {}:\n  {}".format(rel, " ".join(cmd)))
            built.append(rel)
    return built


def main():
    return buildcheck.main(__doc__.splitlines()[0], build_all, HERE, "guest_images", "images")


if __name__ == "__main__":
    sys.exit(main())
