#!/usr/bin/env python3
"""Build emu's firmware with zig's C compiler (the `ziglang` package).

    python3 firmware/build.py           rebuild emu/firmware/pc.bin and virt.bin
    python3 firmware/build.py --check   rebuild into a temporary directory and
                                        compare byte-for-byte with the committed
                                        blobs; exit 1 on any difference

Each firmware is linked as an ELF file at its ROM address and then cut into
a raw image from its loadable segments (with pyelftools):

    pc.bin    64 KiB, mapped at 0xffff0000-0xffffffff (reset vector 0xfffffff0)
    virt.bin  the flash contents from address 0

The compiler runs inside firmware/ with relative paths, no debug info and no
build ID, so the output depends only on the sources and the zig version.
"""

import os
import subprocess
import sys
import tempfile

from elftools.elf.elffile import ELFFile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import buildcheck  # tools/buildcheck.py: the build and --check command line

HERE = os.path.dirname(os.path.abspath(__file__))
BLOB_DIR = os.path.join(os.path.dirname(HERE), "emu", "firmware")

COMMON_FLAGS = [
    "-Os",
    "-fno-builtin",                 # memset and memcpy are the firmware's own
    *buildcheck.freestanding_flags(HERE),
]

#: name -> (target flags, entry symbol, ROM base, ROM size or None for "as long as the code")
FIRMWARE = {
    "pc": (["-target", "x86-freestanding", "-march=i686"], "reset_vector",
           0xFFFF0000, 0x10000),
    "virt": (["-target", "aarch64-freestanding", "-mcpu=cortex_a57", "-mstrict-align"],
             "_start", 0x0, None),
}


#: the machine-specific sources beyond start.S, arch.c and main.c
EXTRA_SOURCES = {"pc": ["pc/e820.c", "pc/mptable.c", "pc/acpi.c", "pc/pci.c", "pc/linux.c",
                        "pc/mtrr.c"]}


def compile_command(name, output):
    flags, entry, _base, _size = FIRMWARE[name]
    return [sys.executable, "-m", "ziglang", "cc", *flags, *COMMON_FLAGS,
            f"-I{name}", f"-Wl,--entry={entry}", f"-Wl,-T,{name}/link.ld",
            f"{name}/start.S", f"{name}/arch.c", f"{name}/main.c", *EXTRA_SOURCES.get(name, []),
            "lib/fw_cfg.c", "lib/util.c", "-o", output]


def rom_image(elf_path, base, size):
    """The raw ROM: every PT_LOAD segment's file bytes at p_paddr - base."""
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        segments = [(s["p_paddr"], s.data()) for s in elf.iter_segments()
                    if s["p_type"] == "PT_LOAD" and s["p_filesz"]]
    end = max(addr + len(data) for addr, data in segments) - base
    if size is None:
        size = (end + 0xFFF) & ~0xFFF
    if end > size:
        sys.exit(f"build.py: {elf_path} does not fit in {size} bytes")
    rom = bytearray(size)
    for addr, data in segments:
        rom[addr - base:addr - base + len(data)] = data
    return bytes(rom)


def build_all(out_dir):
    """Build every firmware into out_dir/<name>.bin; return the file names."""
    built = []
    with tempfile.TemporaryDirectory(prefix="firmware.") as tmp:
        for name, (_flags, _entry, base, size) in FIRMWARE.items():
            elf = os.path.join(tmp, name + ".elf")
            cmd = compile_command(name, elf)
            if subprocess.run(cmd, cwd=HERE).returncode != 0:
                sys.exit("build.py: failed to build {}:\n  {}".format(name, " ".join(cmd)))
            with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
                f.write(rom_image(elf, base, size))
            built.append(name + ".bin")
    return built


def main():
    return buildcheck.main(__doc__.splitlines()[0], build_all, BLOB_DIR, "emu/firmware",
                           "firmware blobs")


if __name__ == "__main__":
    sys.exit(main())
