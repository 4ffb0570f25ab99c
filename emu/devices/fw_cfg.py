"""QEMU's firmware configuration device, fw_cfg (hw/nvram/fw_cfg.c, docs/specs/fw_cfg.rst).

:class:`FwCfg` is the device core shared by both front ends: the item tables (well-known
keys and the arch-local table, bit 0x8000), the file directory (key 0x19) sorted by name with
QEMU's default of 32 file slots, the selector, data reads with offset tracking, and the DMA
engine (spec "DMA", steps 1-4). Guest memory is reached only through the
:class:`~emu.memory.AddressSpace`, as QEMU's dma_memory_read/write reach it: RAM and ROM are
read, unassigned bytes read as zeros (a DMA write into an item stores them) and set the ERROR
bit, writes land in RAM only. Device registers are not reached (QEMU would access them; emu
refuses such a transfer with ERROR, so the device is never re-entered).

Front ends: :class:`FwCfgIo` (x86 ports 0x510/0x511 and DMA at 0x514) and :class:`FwCfgMem`
(MMIO: data at +0, selector at +8, DMA at +16). They are thin register decoders over one core.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from emu import trace as tracing
from emu.bus import Region
from emu.errors import ConfigError
from emu.memory import AddressSpace, Buffer
from emu.trace import trace

# Well-known keys (docs/specs/fw_cfg.rst, include/standard-headers/linux/qemu_fw_cfg.h)
FW_CFG_SIGNATURE = 0x00
FW_CFG_ID = 0x01
FW_CFG_UUID = 0x02
FW_CFG_RAM_SIZE = 0x03
FW_CFG_NOGRAPHIC = 0x04
FW_CFG_NB_CPUS = 0x05
FW_CFG_MACHINE_ID = 0x06
FW_CFG_KERNEL_ADDR = 0x07
FW_CFG_KERNEL_SIZE = 0x08
FW_CFG_KERNEL_CMDLINE = 0x09
FW_CFG_INITRD_ADDR = 0x0A
FW_CFG_INITRD_SIZE = 0x0B
FW_CFG_BOOT_DEVICE = 0x0C
FW_CFG_NUMA = 0x0D
FW_CFG_BOOT_MENU = 0x0E
FW_CFG_MAX_CPUS = 0x0F
FW_CFG_KERNEL_ENTRY = 0x10
FW_CFG_KERNEL_DATA = 0x11
FW_CFG_INITRD_DATA = 0x12
FW_CFG_CMDLINE_ADDR = 0x13
FW_CFG_CMDLINE_SIZE = 0x14
FW_CFG_CMDLINE_DATA = 0x15
FW_CFG_SETUP_ADDR = 0x16
FW_CFG_SETUP_SIZE = 0x17
FW_CFG_SETUP_DATA = 0x18
FW_CFG_FILE_DIR = 0x19
FW_CFG_FILE_FIRST = 0x20
FW_CFG_WRITE_CHANNEL = 0x4000
FW_CFG_ARCH_LOCAL = 0x8000
FW_CFG_ENTRY_MASK = 0x3FFF
FW_CFG_INVALID = 0xFFFF
# x86 arch-local keys
FW_CFG_ACPI_TABLES = FW_CFG_ARCH_LOCAL + 0
FW_CFG_SMBIOS_ENTRIES = FW_CFG_ARCH_LOCAL + 1
FW_CFG_IRQ0_OVERRIDE = FW_CFG_ARCH_LOCAL + 2
FW_CFG_E820_TABLE = FW_CFG_ARCH_LOCAL + 3
FW_CFG_HPET = FW_CFG_ARCH_LOCAL + 4

FW_CFG_VERSION = 0x01
FW_CFG_VERSION_DMA = 0x02
FW_CFG_DMA_SIGNATURE = int.from_bytes(b"QEMU CFG", "big")

DMA_CTL_ERROR = 0x01
DMA_CTL_READ = 0x02
DMA_CTL_SKIP = 0x04
DMA_CTL_SELECT = 0x08
DMA_CTL_WRITE = 0x10

FILE_SLOTS_DEFAULT = 0x20
FILE_NAME_MAX = 56  # including the NUL
FILE_ENTRY = struct.Struct(">IHH56s")

KEY_NAMES = {
    FW_CFG_SIGNATURE: "signature", FW_CFG_ID: "id", FW_CFG_UUID: "uuid",
    FW_CFG_RAM_SIZE: "ram_size", FW_CFG_NOGRAPHIC: "nographic", FW_CFG_NB_CPUS: "nb_cpus",
    FW_CFG_MACHINE_ID: "machine_id", FW_CFG_KERNEL_ADDR: "kernel_addr",
    FW_CFG_KERNEL_SIZE: "kernel_size", FW_CFG_KERNEL_CMDLINE: "kernel_cmdline",
    FW_CFG_INITRD_ADDR: "initrd_addr", FW_CFG_INITRD_SIZE: "initdr_size",
    FW_CFG_BOOT_DEVICE: "boot_device", FW_CFG_NUMA: "numa", FW_CFG_BOOT_MENU: "boot_menu",
    FW_CFG_MAX_CPUS: "max_cpus", FW_CFG_KERNEL_ENTRY: "kernel_entry",
    FW_CFG_KERNEL_DATA: "kernel_data", FW_CFG_INITRD_DATA: "initrd_data",
    FW_CFG_CMDLINE_ADDR: "cmdline_addr", FW_CFG_CMDLINE_SIZE: "cmdline_size",
    FW_CFG_CMDLINE_DATA: "cmdline_data", FW_CFG_SETUP_ADDR: "setup_addr",
    FW_CFG_SETUP_SIZE: "setup_size", FW_CFG_SETUP_DATA: "setup_data",
    FW_CFG_FILE_DIR: "file_dir",
}

#: (offset, length) of a completed DMA write into the item
WriteCallback = Callable[[int, int], None]
SelectCallback = Callable[[], None]


def _owned(data: Buffer, writable: bool) -> Buffer:
    """The buffer an item keeps. A bytearray is used in place, so its owner sees the guest's
    DMA writes (as QEMU shares the item's buffer with the device that added it); the guest
    cannot write other items, so their buffers are used as they are; a writable item given
    as bytes gets its own copy."""
    return data if isinstance(data, bytearray) or not writable else bytearray(data)


@dataclass(eq=False)
class FwCfgItem:
    """One item: its bytes (a bytearray when writable, so DMA writes land in place) and
    callbacks."""

    data: Buffer
    writable: bool = False
    on_write: WriteCallback | None = None
    on_select: SelectCallback | None = None
    name: str = ""


class FwCfg:
    """The device core (spec "Selector", "DMA"); front ends decode registers onto it."""

    def __init__(self, space: AddressSpace, *, dma: bool = True,
                 file_slots: int = FILE_SLOTS_DEFAULT) -> None:
        if not 0x20 <= file_slots <= FW_CFG_ENTRY_MASK - FW_CFG_FILE_FIRST + 1:
            raise ConfigError(f"fw_cfg: file_slots must be between 0x20 and "
                              f"0x{FW_CFG_ENTRY_MASK - FW_CFG_FILE_FIRST + 1:x}")
        self.space = space
        self.dma_enabled = dma
        self.file_slots = file_slots
        self.max_entry = FW_CFG_FILE_FIRST + file_slots
        self.entries: list[list[FwCfgItem | None]] = [[None] * self.max_entry,
                                                       [None] * self.max_entry]
        self.files: list[str] = []
        self.cur_entry = FW_CFG_INVALID
        self.cur_offset = 0
        #: the selected item (None: invalid or empty key), kept for the data-register path
        self.cur_item: FwCfgItem | None = None
        self.dma_addr = 0
        #: bumped on every DMA transfer (tests and benchmarks count transfers)
        self.dma_count = 0
        self._dir = bytearray(4 + FILE_ENTRY.size * file_slots)
        self.add_bytes(FW_CFG_SIGNATURE, b"QEMU")
        self.add_i32(FW_CFG_ID, FW_CFG_VERSION | (FW_CFG_VERSION_DMA if dma else 0))

    # -- building the tables (fw_cfg_add_*) ---------------------------------------------------

    def _slot(self, key: int) -> tuple[int, int]:
        arch, index = int(bool(key & FW_CFG_ARCH_LOCAL)), key & FW_CFG_ENTRY_MASK
        if index >= self.max_entry:
            raise ValueError(f"fw_cfg key 0x{key:04x} out of range")
        return arch, index

    def add_bytes(self, key: int, data: Buffer, *, writable: bool = False,
                  on_write: WriteCallback | None = None,
                  on_select: SelectCallback | None = None) -> FwCfgItem:
        """Add a numbered item (fw_cfg_add_bytes_callback); a key is set once."""
        arch, index = self._slot(key)
        if self.entries[arch][index] is not None:
            raise ValueError(f"fw_cfg key 0x{key:04x} is already set")
        item = FwCfgItem(_owned(data, writable), writable, on_write, on_select)
        self.entries[arch][index] = item
        self._refresh_selection()
        trace("fw_cfg_add_bytes", key=key, name=KEY_NAMES.get(key, "unknown"), len=len(data))
        return item

    def add_i16(self, key: int, value: int) -> FwCfgItem:
        """A little-endian 16-bit item."""
        return self.add_bytes(key, struct.pack("<H", value & 0xFFFF))

    def add_i32(self, key: int, value: int) -> FwCfgItem:
        """A little-endian 32-bit item."""
        return self.add_bytes(key, struct.pack("<I", value & 0xFFFFFFFF))

    def add_i64(self, key: int, value: int) -> FwCfgItem:
        """A little-endian 64-bit item."""
        return self.add_bytes(key, struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF))

    def add_string(self, key: int, value: str) -> FwCfgItem:
        """A NUL-terminated string item."""
        return self.add_bytes(key, value.encode() + b"\0")

    def add_file(self, name: str, data: Buffer, *, writable: bool = False,
                 on_write: WriteCallback | None = None,
                 on_select: SelectCallback | None = None) -> int:
        """Add a named file (fw_cfg_add_file_callback); returns its selector. A bytearray
        ``data`` is shared, not copied: the caller sees what the guest writes into it.

        Files are kept sorted by name (strcmp order) and numbered from 0x20 in that order, so
        adding a file renumbers the files after it, as in QEMU. ``on_write(offset, length)``
        runs after each successful DMA write into the file.
        """
        raw = name.encode()
        if len(raw) > FILE_NAME_MAX - 1:
            raise ConfigError(f"fw_cfg: file name too long (max. {FILE_NAME_MAX - 1} char): "
                              f"{name}")
        if name in self.files:
            raise ConfigError(f"duplicate fw_cfg file name: {name}")
        if len(self.files) >= self.file_slots:
            raise ConfigError(f"fw_cfg: no free file slot for {name} "
                              f"(the directory holds {self.file_slots} files)")
        index = len(self.files)
        while index > 0 and self.files[index - 1].encode() > raw:
            index -= 1
        self.files.insert(index, name)
        files = self.entries[0]
        item = FwCfgItem(_owned(data, writable), writable, on_write, on_select, name)
        files[FW_CFG_FILE_FIRST + index + 1 : FW_CFG_FILE_FIRST + len(self.files)] = \
            files[FW_CFG_FILE_FIRST + index : FW_CFG_FILE_FIRST + len(self.files) - 1]
        files[FW_CFG_FILE_FIRST + index] = item
        if self.entries[0][FW_CFG_FILE_DIR] is None:
            self.entries[0][FW_CFG_FILE_DIR] = FwCfgItem(self._dir)
        self._write_dir()
        self._refresh_selection()
        trace("fw_cfg_add_file", index=index, name=name, len=len(data))
        return FW_CFG_FILE_FIRST + index

    def _write_dir(self) -> None:
        struct.pack_into(">I", self._dir, 0, len(self.files))
        for i, name in enumerate(self.files):
            item = self.entries[0][FW_CFG_FILE_FIRST + i]
            assert item is not None
            FILE_ENTRY.pack_into(self._dir, 4 + i * FILE_ENTRY.size, len(item.data),
                                 FW_CFG_FILE_FIRST + i, 0, name.encode())

    def file(self, name: str) -> FwCfgItem | None:
        """The item of file ``name``, or None."""
        key = self.file_key(name)
        return None if key is None else self._item(key)

    def file_key(self, name: str) -> int | None:
        """The selector of file ``name``, or None."""
        return FW_CFG_FILE_FIRST + self.files.index(name) if name in self.files else None

    # -- the guest's view --------------------------------------------------------------------

    def reset(self) -> None:
        """Device reset: select the signature (fw_cfg_reset)."""
        self.select(FW_CFG_SIGNATURE)

    def _item(self, key: int) -> FwCfgItem | None:
        """The item behind a valid ``key`` (bit 0x8000 picks the arch table), or None."""
        return self.entries[int(bool(key & FW_CFG_ARCH_LOCAL))][key & FW_CFG_ENTRY_MASK]

    def _refresh_selection(self) -> None:
        """Keep ``cur_item`` right when items move (a file inserted before the selected one)."""
        if self.cur_entry != FW_CFG_INVALID:
            self.cur_item = self._item(self.cur_entry)

    def select(self, key: int) -> bool:
        """Select ``key``: offset 0; bit 0x4000 is ignored, 0x8000 picks the arch table; a key
        at or beyond 0x20 + file slots selects nothing (reads return zeros)."""
        key &= 0xFFFF
        self.cur_offset = 0
        if key & FW_CFG_ENTRY_MASK >= self.max_entry:
            self.cur_entry = FW_CFG_INVALID
            self.cur_item = None
            ok = False
        else:
            self.cur_entry = key
            ok = True
            item = self.cur_item = self._item(key)
            if item is not None and item.on_select is not None:
                item.on_select()
        if tracing.ON:
            index = key & FW_CFG_ENTRY_MASK
            trace("fw_cfg_select", key=key, ret=int(ok), name=KEY_NAMES.get(index, "unknown")
                  if index < FW_CFG_FILE_FIRST else "file")
        return ok

    def read_data(self, size: int) -> int:
        """A data-register read of ``size`` bytes (fw_cfg_data_read): the next bytes of the
        item, first byte most significant, zero-padded past the end; the offset stops there."""
        item = self.cur_item
        value = 0
        if item is not None:
            data, off = item.data, self.cur_offset
            if off < len(data):
                if size == 1:
                    value = data[off]
                    self.cur_offset = off + 1
                else:
                    n = min(size, len(data) - off)
                    value = int.from_bytes(data[off : off + n], "big") << (8 * (size - n))
                    self.cur_offset = off + n
        if tracing.ON:
            trace("fw_cfg_read", value=value)
        return value

    # -- DMA (spec "DMA", steps 1-4) -------------------------------------------------------------

    def dma_register_read(self, offset: int, size: int) -> int:
        """Reading the DMA address register returns "QEMU CFG" (fw_cfg_dma_mem_read)."""
        if offset < 0 or size < 1 or offset + size > 8:
            return 0
        shift = (8 - offset - size) * 8
        return (FW_CFG_DMA_SIGNATURE >> shift) & ((1 << (8 * size)) - 1)

    def dma_register_write(self, offset: int, size: int, value: int) -> None:
        """A write to the DMA address register (value already in host order).

        4 bytes at 0: latch the high half (replacing the whole address); 4 bytes at 4: OR in
        the low half and transfer; 8 bytes at 0: transfer at once; anything else is ignored.
        """
        if size == 4 and offset == 0:
            self.dma_addr = (value & 0xFFFFFFFF) << 32
        elif size == 4 and offset == 4:
            self.dma_addr |= value & 0xFFFFFFFF
            self.dma_transfer()
        elif size == 8 and offset == 0:
            self.dma_addr = value & 0xFFFFFFFFFFFFFFFF
            self.dma_transfer()

    def dma_transfer(self) -> None:
        """Run the transfer whose descriptor is at the latched address, synchronously."""
        space = self.space
        desc_addr, self.dma_addr = self.dma_addr, 0
        self.dma_count += 1
        raw, ok = space.dma_read(desc_addr, 16)
        if not ok:
            # QEMU's stl_be_dma: the bytes of the control word that are RAM get written
            space.write_some(desc_addr, struct.pack(">I", DMA_CTL_ERROR))
            trace("fw_cfg_dma", desc=desc_addr, result="descriptor not in RAM")
            return
        control, length, address = struct.unpack(">IIQ", raw)
        if control & DMA_CTL_SELECT:
            self.select(control >> 16)
        item = self.cur_item
        read = write = False
        if control & DMA_CTL_READ:
            read = True
        elif control & DMA_CTL_WRITE:
            write = True
        elif not control & DMA_CTL_SKIP:
            length = 0
        op = "read" if read else "write" if write else "skip" if length else "none"
        trace_length, trace_address = length, address
        status = 0
        while length > 0 and not status & DMA_CTL_ERROR:
            if item is None or self.cur_offset >= len(item.data):
                n = length
                if (read and not _zero_fill(space, address, n)) or write:
                    status |= DMA_CTL_ERROR
            else:
                off = self.cur_offset
                n = min(length, len(item.data) - off)
                if read:
                    if not space.write_some(address, memoryview(item.data)[off : off + n]):
                        status |= DMA_CTL_ERROR
                elif write:
                    if not item.writable or n != length:
                        status |= DMA_CTL_ERROR
                    else:
                        # QEMU reads straight into the item: what is not RAM or ROM arrives
                        # as zeros, and the failed transfer skips the write callback
                        src, ok = space.dma_read(address, n)
                        item.data[off : off + n] = src
                        if not ok:
                            status |= DMA_CTL_ERROR
                        elif item.on_write is not None:
                            item.on_write(off, n)
                self.cur_offset = off + n
            address = (address + n) & 0xFFFFFFFFFFFFFFFF
            length -= n
        space.write_some(desc_addr, struct.pack(">I", status))
        trace("fw_cfg_dma", desc=desc_addr, control=control, key=self.cur_entry, op=op,
              address=trace_address, length=trace_length, result="error" if status else "ok")


_ZEROS = memoryview(bytes(1 << 20))


def _zero_fill(space: AddressSpace, address: int, length: int) -> bool:
    """Zero ``length`` bytes of guest memory in bounded chunks (a guest may ask for 4 GiB)."""
    ok = True
    for pos in range(0, length, len(_ZEROS)):
        n = min(len(_ZEROS), length - pos)
        ok = space.write_some((address + pos) & 0xFFFFFFFFFFFFFFFF, _ZEROS[:n]) and ok
    return ok


class FwCfgIo:
    """x86 port front end (fw_cfg_io): the combined selector/data ports at ``iobase`` (0x510)
    and the DMA address register at ``dma_iobase`` (0x514)."""

    def __init__(self, core: FwCfg) -> None:
        self.core = core
        self.comb = Region("fwcfg", 2, _CombOps(core))
        self.dma = Region("fwcfg.dma", 8, _DmaOps(core), big_endian=True)


class FwCfgMem:
    """MMIO front end (fw_cfg_mem, data width 8): data at +0, selector at +8, DMA at +16."""

    def __init__(self, core: FwCfg) -> None:
        self.core = core
        self.data = Region("fwcfg.data", 8, _DataOps(core), big_endian=True)
        self.ctl = Region("fwcfg.ctl", 2, _CtlOps(core), big_endian=True)
        self.dma = Region("fwcfg.dma", 8, _DmaOps(core), big_endian=True)


class _CombOps:
    """Ports 0x510-0x511: 16-bit writes select (at either port), 8-bit reads return data,
    8-bit writes go to the (ignored) data register; other sizes are invalid (fw_cfg_comb_valid)
    and read as 0."""

    def __init__(self, core: FwCfg) -> None:
        self.core = core

    def read(self, offset: int, size: int) -> int:
        """``core.read_data(1)`` for 8-bit reads, done here: this is the whole device side of
        a guest's byte-by-byte ``inb 0x511`` loop (the bus's IN hook calls it directly), and
        one Python call less is about a tenth of an access (bench/README.md, "Port I/O")."""
        if size != 1:
            return 0
        core = self.core
        item = core.cur_item
        value = 0
        if item is not None:
            off = core.cur_offset
            if off < len(item.data):
                value = item.data[off]
                core.cur_offset = off + 1
        if tracing.ON:
            trace("fw_cfg_read", value=value)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 2:
            self.core.select(value)
        # size 1: a data-register write, ignored since QEMU 2.4


class _DataOps:
    """The MMIO data register. QEMU accepts accesses at offset 0 of up to 8 bytes; Unicorn hands
    an 8-byte load over as two 4-byte loads at +0 and +4, so a 4-byte read at +4 continues the
    item too (a lone read there would be refused by QEMU)."""

    def __init__(self, core: FwCfg) -> None:
        self.core = core

    def read(self, offset: int, size: int) -> int:
        if offset == 0 and size == 1:
            # core.read_data(1) done here, as _CombOps.read does it for the port: the whole
            # device side of a guest's byte-by-byte loop (bench/README.md, "Port I/O")
            core = self.core
            item = core.cur_item
            value = 0
            if item is not None:
                off = core.cur_offset
                if off < len(item.data):
                    value = item.data[off]
                    core.cur_offset = off + 1
            if tracing.ON:
                trace("fw_cfg_read", value=value)
            return value
        if offset == 0 or (offset == 4 and size == 4):
            return self.core.read_data(size)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass  # writes to the data register are ignored since QEMU 2.4


class _CtlOps:
    """The MMIO selector: only 16-bit writes are valid; reads return 0."""

    def __init__(self, core: FwCfg) -> None:
        self.core = core

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 2:
            self.core.select(value)


class _DmaOps:
    """The 8-byte, big-endian DMA address register."""

    def __init__(self, core: FwCfg) -> None:
        self.core = core

    def read(self, offset: int, size: int) -> int:
        return self.core.dma_register_read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.core.dma_register_write(offset, size, value)
