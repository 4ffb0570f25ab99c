"""Linux/x86 bzImage kernels: what QEMU 7.2's pc publishes for one, and the 32-bit boot
protocol that enters it (Documentation/arch/x86/boot.rst, "THE REAL-MODE KERNEL HEADER" and
"32-bit BOOT PROTOCOL").

:func:`linux_setup` is hw/i386/x86.c ``x86_load_linux`` for a file whose header says
``HdrS``: the real-mode part (``setup_sects`` + 1 sectors) with QEMU's changes to the setup
header (command line pointer, loader type 0xB0, heap, ``vga=``, the initrd), the
protected-mode part that follows it, and the addresses QEMU gives them. The board publishes
them as QEMU does (FW_CFG_SETUP_*, FW_CFG_KERNEL_*, FW_CFG_CMDLINE_*, FW_CFG_INITRD_*); emu's
firmware (firmware/pc/linux.c) loads them where SeaBIOS's linuxboot_dma option ROM does and,
instead of running the real-mode setup code, builds the zero page itself and enters
``code32_start`` in 32-bit protected mode. :func:`zero_page` is the same zero page for
``--direct-boot``.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from emu.errors import ConfigError
from emu.memory import Buffer

HDRS_MAGIC = 0x53726448  # "HdrS" at 0x202
#: setup header offsets (boot.rst)
SETUP_SECTS, BOOT_FLAG, HEADER, VERSION = 0x1F1, 0x1FE, 0x202, 0x206
VID_MODE, TYPE_OF_LOADER, LOADFLAGS, CODE32_START = 0x1FA, 0x210, 0x211, 0x214
RAMDISK_IMAGE, RAMDISK_SIZE, HEAP_END_PTR = 0x218, 0x21C, 0x224
CMD_LINE_PTR, INITRD_ADDR_MAX, XLOADFLAGS = 0x228, 0x22C, 0x236
CL_MAGIC, CL_OFFSET = 0x20, 0x22
#: boot_params (arch/x86/include/uapi/asm/bootparam.h): e820_entries and e820_table
E820_ENTRIES, E820_TABLE, E820_MAX_ENTRIES_ZEROPAGE = 0x1E8, 0x2D0, 128
ZERO_PAGE_SIZE = 4096
ACPI_RSDP_ADDR = 0x070          # boot_params.acpi_rsdp_addr (zero-page.rst)
LOADED_HIGH, CAN_USE_HEAP = 0x01, 0x80
XLF_CAN_BE_LOADED_ABOVE_4G = 0x02
#: QEMU reads this much of the file as "the header" and copies it back over the setup
HEADER_BUF = 8192


def is_bzimage(raw: Buffer) -> bool:
    """Whether the file has the Linux/x86 boot protocol's header (QEMU's test)."""
    return len(raw) >= HEADER + 4 and struct.unpack_from("<I", raw, HEADER)[0] == HDRS_MAGIC


@dataclass
class LinuxSetup:
    """What QEMU's x86_load_linux publishes for a bzImage."""

    protocol: int
    real_addr: int      # FW_CFG_SETUP_ADDR: where the setup (real-mode part) goes
    cmdline_addr: int   # FW_CFG_CMDLINE_ADDR
    prot_addr: int      # FW_CFG_KERNEL_ADDR: where the protected-mode part goes
    setup: bytes        # FW_CFG_SETUP_DATA: the setup sectors with QEMU's header changes
    kernel: Buffer      # FW_CFG_KERNEL_DATA: the rest of the file
    initrd_addr: int    # FW_CFG_INITRD_ADDR (0 without an initrd)

    @property
    def entry32(self) -> int:
        """The 32-bit entry point (code32_start)."""
        return struct.unpack_from("<I", self.setup, CODE32_START)[0]


def _vga_mode(path: str, cmdline: str) -> int | None:
    """The ``vga=`` parameter as QEMU reads it (the first ``vga=`` anywhere in the line)."""
    at = cmdline.find("vga=")
    if at < 0:
        return None
    rest = cmdline[at + 4:]
    for word, mode in (("normal", 0xFFFF), ("ext", 0xFFFE), ("ask", 0xFFFD)):
        if rest.startswith(word):
            return mode
    m = re.match(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)(?=$| )", rest)  # qemu_strtoui
    if m is None or int(m.group(1), 0) > 0xFFFFFFFF:
        raise ConfigError(f"-kernel {path}: invalid 'vga=' kernel parameter")
    return int(m.group(1), 0) & 0xFFFF


def linux_setup(path: str, raw: Buffer, cmdline: str, below_4g: int, acpi_data_size: int,
                initrd: tuple[str, int] | None) -> LinuxSetup:
    """x86_load_linux's bzImage branch (hw/i386/x86.c), with QEMU's checks as errors."""
    header = bytearray(bytes(raw[:HEADER_BUF]).ljust(HEADER_BUF, b"\0"))
    protocol = struct.unpack_from("<H", header, VERSION)[0]
    cmdline_size = (len(cmdline.encode()) + 16) & ~15  # "aligned to 16 bytes as a paranoia"
    if protocol < 0x200 or not header[LOADFLAGS] & LOADED_HIGH:
        real_addr, cmdline_addr, prot_addr = 0x90000, 0x9A000 - cmdline_size, 0x10000
    elif protocol < 0x202:
        real_addr, cmdline_addr, prot_addr = 0x90000, 0x9A000 - cmdline_size, 0x100000
    else:
        real_addr, cmdline_addr, prot_addr = 0x10000, 0x20000, 0x100000
    xloadflags = struct.unpack_from("<H", header, XLOADFLAGS)[0]
    if protocol >= 0x20C and xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G:
        initrd_max = 0xFFFFFFFF
    elif protocol >= 0x203:
        initrd_max = struct.unpack_from("<I", header, INITRD_ADDR_MAX)[0]
    else:
        initrd_max = 0x37FFFFFF
    if initrd_max >= below_4g - acpi_data_size:
        initrd_max = below_4g - acpi_data_size - 1
    if protocol >= 0x202:
        struct.pack_into("<I", header, CMD_LINE_PTR, cmdline_addr)
    else:
        struct.pack_into("<HH", header, CL_MAGIC, 0xA33F, cmdline_addr - real_addr)
    mode = _vga_mode(path, cmdline)
    if mode is not None:
        struct.pack_into("<H", header, VID_MODE, mode)
    if protocol >= 0x200:
        header[TYPE_OF_LOADER] = 0xB0
    if protocol >= 0x201:
        header[LOADFLAGS] |= CAN_USE_HEAP
        struct.pack_into("<H", header, HEAP_END_PTR, (cmdline_addr - real_addr - 0x200) & 0xFFFF)
    initrd_addr = 0
    if initrd is not None:
        initrd_path, initrd_size = initrd
        if protocol < 0x200:
            raise ConfigError(f"-kernel {path}: linux kernel too old to load a ram disk")
        if initrd_size >= initrd_max:
            raise ConfigError(f"-initrd {initrd_path}: too large (max: {initrd_max}, "
                              f"need {initrd_size})")
        initrd_addr = (initrd_max - initrd_size) & ~4095
        struct.pack_into("<II", header, RAMDISK_IMAGE, initrd_addr, initrd_size)
    setup_size = (header[SETUP_SECTS] or 4) + 1
    setup_size *= 512
    if setup_size > len(raw):
        raise ConfigError(f"-kernel {path}: invalid kernel header")
    setup = bytearray(raw[:setup_size])
    n = min(HEADER_BUF, setup_size)
    setup[:n] = header[:n]
    return LinuxSetup(protocol, real_addr, cmdline_addr, prot_addr, bytes(setup),
                      raw[setup_size:], initrd_addr)


def zero_page(setup: bytes, e820: list[tuple[int, int, int]], rsdp: int = 0) -> bytes:
    """boot_params for the 32-bit boot protocol (boot.rst): zeros, the setup header from 0x1f1
    to its end (0x202 + the byte at 0x201) as the setup data has it, the memory map and the
    ACPI RSDP's address (zero-page.rst, acpi_rsdp_addr at 0x070; 0: none)."""
    page = bytearray(ZERO_PAGE_SIZE)
    struct.pack_into("<Q", page, ACPI_RSDP_ADDR, rsdp)
    end = min(0x202 + setup[0x201], len(setup), ZERO_PAGE_SIZE)
    page[SETUP_SECTS:end] = setup[SETUP_SECTS:end]
    entries = e820[:E820_MAX_ENTRIES_ZEROPAGE]
    page[E820_ENTRIES] = len(entries)
    for i, (addr, size, kind) in enumerate(entries):
        struct.pack_into("<QQI", page, E820_TABLE + 20 * i, addr, size, kind)
    return bytes(page)


def e801_top(e820: list[tuple[int, int, int]]) -> int:
    """The top of memory SeaBIOS's INT 15h E801 reports (src/system.c handle_15e801, with
    src/malloc.c calcRamSize: the end of the highest RAM or ACPI entry below 4 GiB), as
    linuxboot_dma.c get_e801_addr turns it into an address."""
    rs = 0
    for addr, size, kind in sorted(e820, reverse=True):
        if addr + size <= 0xFFFFFFFF and kind in (1, 3):
            rs = addr + size
            break
    rs = max(rs, 0x100000)
    if rs > 0x1000000:
        return ((rs - 0x1000000) // 0x10000 + 256) << 16
    cx = (rs - 0x100000) // 1024
    return (cx + 1024) << 10 if cx else 0


def rom_setup(linux: LinuxSetup, initrd_size: int, e820: list[tuple[int, int, int]]
              ) -> tuple[bytes, int]:
    """The setup sectors and the initrd's address after linuxboot_dma.c load_kernel: it
    assumes initrd_addr_max 0x37ffffff below protocol 2.03 and, when QEMU put the initrd
    below RAM's top rather than below initrd_addr_max, moves it below the E801 top of memory
    (and says so in ramdisk_image)."""
    setup = bytearray(linux.setup)
    if linux.protocol < 0x203:
        struct.pack_into("<I", setup, INITRD_ADDR_MAX, 0x37FFFFFF)
    addr = linux.initrd_addr
    end_page = (addr + initrd_size) & ~0xFFF
    max_page = struct.unpack_from("<I", setup, INITRD_ADDR_MAX)[0] & ~0xFFF
    if end_page and max_page and end_page != max_page:
        addr = (e801_top(e820) - initrd_size) & 0xFFFFF000
        struct.pack_into("<I", setup, RAMDISK_IMAGE, addr)
    return bytes(setup), addr
