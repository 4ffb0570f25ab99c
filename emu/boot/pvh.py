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

#: Where emu puts the boot structures (below the classic 0x7c00 boot sector, above the BDA);
#: emu's firmware (firmware/pc) uses the same addresses, and its stack below them.
FIRMWARE_AREA = 0x5000
BOOT_AREA = 0x6000
BOOT_AREA_END = 0x8000
GDT_ADDR = 0x6000
START_INFO_ADDR = 0x6100
MODLIST_ADDR = 0x6140
MEMMAP_ADDR = 0x6200
MEMMAP_MAX = 32
CMDLINE_ADDR = 0x7000
CMDLINE_MAX = BOOT_AREA_END - CMDLINE_ADDR - 1

#: null, unused, code32 at 0x10 and data32 at 0x18: flat 4 GiB segments, with the accessed
#: bits already set (the firmware's copy in ROM must not need the CPU to write them)
GDT = struct.pack("<4Q", 0, 0, 0x00CF9B000000FFFF, 0x00CF93000000FFFF)
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


def check_cmdline(cmdline: str) -> bytes:
    """The command line as the kernel gets it, if it fits the boot area (emu's firmware and
    --direct-boot put it at CMDLINE_ADDR). QEMU 7.2's pvh.bin copies it to 0x20000 whatever
    its length, and a line of some 4.5 KiB or more reaches the guest empty or hangs it."""
    raw = cmdline.encode()
    if len(raw) > CMDLINE_MAX:
        raise ConfigError(f"-append: command line longer than {CMDLINE_MAX} bytes")
    return raw


def build_pvh(image: KernelImage, cmdline: str, memmap: list[tuple[int, int, int]],
              initrd: tuple[int, int] | None = None, rsdp: int = 0) -> PvhBoot:
    """Lay out GDT, start_info, memory map, command line and module list for ``image``.

    ``memmap`` is a list of (addr, size, E820 type); ``initrd`` is (addr, size), passed as
    the one module; ``rsdp`` is the ACPI RSDP's address (0: none).
    """
    entry = pvh_entry(image)
    for seg in image.segments:
        if seg.paddr < BOOT_AREA_END and seg.paddr + seg.memsz > BOOT_AREA:
            raise ConfigError(
                f"-kernel {image.path}: segment at 0x{seg.paddr:x} overlaps the PVH boot "
                f"area 0x{BOOT_AREA:x}-0x{BOOT_AREA_END - 1:x}")
    raw_cmdline = check_cmdline(cmdline)
    if len(memmap) > MEMMAP_MAX:
        raise ConfigError("too many memory map entries for PVH")
    table = b"".join(struct.pack("<QQII", addr, size, kind, 0) for addr, size, kind in memmap)
    modules = [] if initrd is None else [initrd]
    start_info = struct.pack(
        "<IIIIQQQQII",
        HVM_START_MAGIC, 1, 0, len(modules),  # magic, version 1, flags, nr_modules
        MODLIST_ADDR if modules else 0, CMDLINE_ADDR, rsdp, MEMMAP_ADDR,  # modlist, cmdline,
        len(memmap), 0,  # rsdp, memmap
    )
    modlist = b"".join(struct.pack("<QQQQ", addr, size, 0, 0) for addr, size in modules)
    blobs = [(START_INFO_ADDR, bytes(BOOT_AREA_END - START_INFO_ADDR)),  # as the firmware
             (GDT_ADDR, GDT), (START_INFO_ADDR, start_info), (MODLIST_ADDR, modlist),
             (MEMMAP_ADDR, table), (CMDLINE_ADDR, raw_cmdline + b"\0")]
    return PvhBoot(entry, START_INFO_ADDR, blobs)
