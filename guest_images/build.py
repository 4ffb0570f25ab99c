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

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

IMAGES = ["hello", "spin", "halt", "unmapped", "trap", "pulse", "fwcfg", "fwcfgbench",
          "vmcoreinfo", "scenario", "panic"]

# Flags shared by both architectures.
COMMON_FLAGS = [
    "-std=c11",
    "-O2",
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
    "-mgeneral-regs-only",          # no FP/SIMD registers in kernel code
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffile-prefix-map=" + HERE + "=.",   # belt and braces: paths are relative anyway
    "-Ilib",
    "-Wl,--build-id=none",
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
    return (
        [sys.executable, "-m", "ziglang", "cc"]
        + conf["flags"]
        + COMMON_FLAGS
        + [
            "-Ilib/" + arch,
            # zig passes its own --entry, so the linker script's ENTRY()
            # is not enough.
            "-Wl,--entry=" + conf["entry"],
            f"-Wl,-T,lib/{arch}/link.ld",
            f"lib/{arch}/start.S",
            f"lib/{arch}/arch.c",
            "lib/common.c",
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
            rel = f"{arch}/{image}.elf"
            cmd = compile_command(arch, image, os.path.join(out_dir, rel))
            result = subprocess.run(cmd, cwd=HERE)
            if result.returncode != 0:
                sys.exit("build.py: failed to build {}:\n  {}".format(rel, " ".join(cmd)))
            built.append(rel)
    return built


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild into a temporary directory and compare "
                             "with the images in the tree")
    args = parser.parse_args()

    if not args.check:
        for rel in build_all(HERE):
            print("built guest_images/" + rel)
        return 0

    with tempfile.TemporaryDirectory(prefix="guest_images.") as tmp:
        differing = [rel for rel in build_all(tmp)
                     if read(os.path.join(tmp, rel)) != read(os.path.join(HERE, rel))]
    for rel in differing:
        print("differs: guest_images/" + rel)
    if differing:
        print(f"build.py --check: {len(differing)} image(s) differ from a fresh build; "
              "run python3 guest_images/build.py")
        return 1
    print(f"build.py --check: all {len(IMAGES) * len(ARCHES)} images match a fresh build")
    return 0


if __name__ == "__main__":
    sys.exit(main())
