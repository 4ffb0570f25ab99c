"""PVH direct boot on x86_64 (Xen's HVM direct-boot ABI, as QEMU, Firecracker and
cloud-hypervisor use it; xen/include/public/arch-x86/hvm/start_info.h).

The kernel is an ELF file with a ``Xen`` note of type XEN_ELFNOTE_PHYS32_ENTRY (18) giving the
physical 32-bit entry point. It is entered in 32-bit protected mode with paging off, flat
code and data segments, and ``ebx`` holding the address of an ``hvm_start_info`` that points
to the command line and a memory map (hvm_memmap_table_entry, E820 types).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from emu.boot.elf import KernelImage
from emu.errors import ConfigError

XEN_ELFNOTE_PHYS32_ENTRY = 18
HVM_START_MAGIC = 0x336EC578
E820_RAM, E820_RESERVED = 1, 2

#: Where emu puts the boot structures (below the classic 0x7c00 boot sector, above the BDA).
BOOT_AREA = 0x6000
BOOT_AREA_END = 0x8000
GDT_ADDR = 0x6000
START_INFO_ADDR = 0x6100
MEMMAP_ADDR = 0x6200
MEMMAP_MAX = 32
CMDLINE_ADDR = 0x7000
CMDLINE_MAX = BOOT_AREA_END - CMDLINE_ADDR - 1

#: null, unused, code32 at 0x10 and data32 at 0x18: flat 4 GiB segments
GDT = struct.pack("<4Q", 0, 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF)
BOOT_CS, BOOT_DS = 0x10, 0x18


@dataclass
class PvhBoot:
    """Everything the CPU needs at the PVH entry, and the memory it must hold."""

    entry: int
    start_info: int
    blobs: list[tuple[int, bytes]]  # (paddr, bytes) to write into RAM


def pvh_entry(image: KernelImage) -> int:
    """The PHYS32 entry point from the image's Xen note."""
    desc = image.notes.get(("Xen", XEN_ELFNOTE_PHYS32_ENTRY))
    if desc is None:
        raise ConfigError(
            f"-kernel {image.path}: no PVH entry point (ELF note Xen/XEN_ELFNOTE_PHYS32_ENTRY)")
    if len(desc) not in (4, 8):
        raise ConfigError(f"-kernel {image.path}: malformed PVH entry note")
    return int.from_bytes(desc, "little")


def build_pvh(image: KernelImage, cmdline: str, memmap: list[tuple[int, int, int]]) -> PvhBoot:
    """Lay out GDT, start_info, memory map and command line for ``image``.

    ``memmap`` is a list of (addr, size, E820 type).
    """
    entry = pvh_entry(image)
    for seg in image.segments:
        if seg.paddr < BOOT_AREA_END and seg.paddr + seg.memsz > BOOT_AREA:
            raise ConfigError(
                f"-kernel {image.path}: segment at 0x{seg.paddr:x} overlaps the PVH boot "
                f"area 0x{BOOT_AREA:x}-0x{BOOT_AREA_END - 1:x}")
    raw_cmdline = cmdline.encode()
    if len(raw_cmdline) > CMDLINE_MAX:
        raise ConfigError(f"-append: command line longer than {CMDLINE_MAX} bytes")
    if len(memmap) > MEMMAP_MAX:
        raise ConfigError("too many memory map entries for PVH")
    table = b"".join(struct.pack("<QQII", addr, size, kind, 0) for addr, size, kind in memmap)
    start_info = struct.pack(
        "<IIIIQQQQII",
        HVM_START_MAGIC, 1, 0, 0,  # magic, version 1, flags, nr_modules
        0, CMDLINE_ADDR, 0, MEMMAP_ADDR,  # modlist, cmdline, rsdp, memmap
        len(memmap), 0,
    )
    blobs = [(GDT_ADDR, GDT), (START_INFO_ADDR, start_info), (MEMMAP_ADDR, table),
             (CMDLINE_ADDR, raw_cmdline + b"\0")]
    return PvhBoot(entry, START_INFO_ADDR, blobs)
