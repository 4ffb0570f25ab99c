"""fw_cfg driven the way a guest drives it, through the real port and MMIO buses, with no CPU.

Every expectation comes from the reference behaviour (QEMU's hw/nvram/fw_cfg.c and
docs/specs/fw_cfg.rst, summarised in the shared fw_cfg spec): the selector and data registers,
the "QEMU CFG" DMA register, the sorted file directory and every DMA rule, plus a property test
that random guest traffic never escapes the device or scribbles outside a transfer's target.
"""

from __future__ import annotations

import io
import re
import struct
import sys
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu import trace
from emu.boards.firmware_config import add_pc_items, add_virt_items
from emu.bus import MmioBus, PortBus, Region
from emu.config import MachineConfig
from emu.devices.fw_cfg import FwCfg, FwCfgIo, FwCfgMem
from emu.errors import ConfigError
from emu.memory import AddressSpace, RamBlock

RAM_BASE = 0x100000
RAM_SIZE = 0x100000
RAM_END = RAM_BASE + RAM_SIZE

PC_SEL, PC_DATA, PC_DMA = 0x510, 0x511, 0x514  # pc: selector, data, DMA (hi at +0, lo at +4)
VIRT = 0x09020000  # virt: data at +0, selector at +8, DMA at +16

DESC = RAM_BASE + 0x1000  # where the test guest keeps its DMA descriptor
BUF = RAM_BASE + 0x2000  # and its buffer

ERROR, READ, SKIP, SELECT, WRITE = 0x01, 0x02, 0x04, 0x08, 0x10
DESC_FMT = struct.Struct(">IIQ")  # control, length, address; all big-endian
DIR_ENTRY = struct.Struct(">IHH56s")
M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def bswap16(v: int) -> int:
    return int.from_bytes(v.to_bytes(2, "little"), "big")


def bswap32(v: int) -> int:
    return int.from_bytes(v.to_bytes(4, "little"), "big")


def bswap64(v: int) -> int:
    return int.from_bytes(v.to_bytes(8, "little"), "big")


class Counting:
    """Wraps a region's ops and counts the accesses that reach the device."""

    def __init__(self, ops) -> None:
        self.ops = ops
        self.reads = 0
        self.writes = 0

    def read(self, offset: int, size: int) -> int:
        self.reads += 1
        return self.ops.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes += 1
        self.ops.write(offset, size, value)


def counted(region: Region) -> tuple[Region, Counting]:
    ops = Counting(region.ops)
    return Region(region.name, region.size, ops, region.big_endian), ops


class Machine:
    """RAM, one fw_cfg core, and both front ends mapped where pc and virt put them."""

    def __init__(self, ram_size: int = RAM_SIZE, extra: tuple[tuple[int, int], ...] = ()) -> None:
        self.space = AddressSpace()
        self.ram = RamBlock.allocate("ram", RAM_BASE, ram_size)
        self.ram_end = RAM_BASE + ram_size
        self.space.add(self.ram)
        for base, size in extra:
            self.space.add(RamBlock.allocate(f"ram@{base:x}", base, size))
        self.fw = FwCfg(self.space)
        self.ports = PortBus()
        self.mmio = MmioBus()
        io_front, mem_front = FwCfgIo(self.fw), FwCfgMem(self.fw)
        self.counts: dict[str, Counting] = {}
        for key, bus, base, region in (
            ("pc.comb", self.ports, PC_SEL, io_front.comb),
            ("pc.dma", self.ports, PC_DMA, io_front.dma),
            ("virt.data", self.mmio, VIRT, mem_front.data),
            ("virt.ctl", self.mmio, VIRT + 8, mem_front.ctl),
            ("virt.dma", self.mmio, VIRT + 16, mem_front.dma),
        ):
            region, self.counts[key] = counted(region)
            bus.map(base, region)

    def reset(self) -> None:
        self.fw.reset()

    def accesses(self) -> int:
        return sum(c.reads + c.writes for c in self.counts.values())


class Guest:
    """A little-endian guest's view of fw_cfg; subclasses pick the pc or virt registers."""

    kind = ""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.space = m.space
        self.fw = m.fw

    def select(self, key: int) -> None:
        raise NotImplementedError

    def read(self, n: int) -> bytes:
        raise NotImplementedError

    def kick(self, addr: int) -> None:
        raise NotImplementedError

    def put_desc(self, control: int, length: int, address: int, at: int = DESC) -> None:
        assert self.space.write(at, DESC_FMT.pack(control, length, address))

    def desc(self, at: int = DESC) -> tuple[int, int, int]:
        raw = self.space.read(at, 16)
        assert raw is not None
        return DESC_FMT.unpack(raw)

    def dma(self, control: int, length: int, address: int, at: int = DESC) -> int:
        """Run one transfer; returns the control word the device wrote back."""
        self.put_desc(control, length, address, at)
        self.kick(at)
        ctl, ln, ad = self.desc(at)
        assert (ln, ad) == (length, address), "length/address must stay as written"
        return ctl

    def mem(self, addr: int, n: int) -> bytes:
        raw = self.space.read(addr, n)
        assert raw is not None
        return raw

    def fill(self, addr: int, n: int, byte: int = 0xAA) -> None:
        assert self.space.write(addr, bytes([byte]) * n)


class PcGuest(Guest):
    kind = "pc"

    def select(self, key: int) -> None:
        self.m.ports.port_write(PC_SEL, 2, key)  # outw(key, 0x510)

    def read(self, n: int) -> bytes:
        return bytes(self.m.ports.port_read(PC_DATA, 1) for _ in range(n))  # inb(0x511)

    def write_data(self, value: int) -> None:
        self.m.ports.port_write(PC_DATA, 1, value & 0xFF)

    def kick(self, addr: int) -> None:
        self.kick_hi(addr >> 32)
        self.kick_lo(addr & M32)

    def kick_hi(self, hi: int) -> None:
        self.m.ports.port_write(PC_DMA, 4, bswap32(hi))  # outl(bswap32(hi), 0x514)

    def kick_lo(self, lo: int) -> None:
        self.m.ports.port_write(PC_DMA + 4, 4, bswap32(lo))  # outl(bswap32(lo), 0x518)


class VirtGuest(Guest):
    kind = "virt"

    def select(self, key: int) -> None:
        self.m.mmio.mmio_write(VIRT + 8, 2, bswap16(key))

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            left = n - len(out)
            size = 8 if left >= 8 else 4 if left >= 4 else 2 if left >= 2 else 1
            out += self.m.mmio.mmio_read(VIRT, size).to_bytes(size, "little")
        return bytes(out)

    def write_data(self, value: int) -> None:
        self.m.mmio.mmio_write(VIRT, 8, value & M64)

    def kick(self, addr: int) -> None:
        self.m.mmio.mmio_write(VIRT + 16, 8, bswap64(addr))

    def kick_hi(self, hi: int) -> None:
        self.m.mmio.mmio_write(VIRT + 16, 4, bswap32(hi))

    def kick_lo(self, lo: int) -> None:
        self.m.mmio.mmio_write(VIRT + 20, 4, bswap32(lo))


GUESTS = {"pc": PcGuest, "virt": VirtGuest}


@pytest.fixture(params=["pc", "virt"])
def guest(request: pytest.FixtureRequest) -> Guest:
    m = Machine()
    m.reset()
    return GUESTS[request.param](m)


def make_guest(kind: str, **kw) -> Guest:
    m = Machine(**kw)
    m.reset()
    return GUESTS[kind](m)


# --------------------------------------------------------------------------- registers


def test_signature_and_id(guest):
    guest.select(0x00)
    assert guest.read(4) == b"QEMU"
    guest.select(0x01)
    assert struct.unpack("<I", guest.read(4))[0] == 3  # traditional | DMA


def test_id_without_dma():
    fw = FwCfg(AddressSpace(), dma=False)
    fw.reset()
    fw.select(0x01)
    assert fw.read_data(4) == int.from_bytes(struct.pack("<I", 1), "big")


def test_reset_selects_signature(guest):
    guest.select(0x01)
    guest.read(2)
    guest.m.reset()
    assert guest.read(4) == b"QEMU"


def test_dma_register_reads_qemu_cfg_pc():
    g = make_guest("pc")
    ports = g.m.ports
    assert ports.port_read(PC_DMA, 4) == 0x554D4551
    assert ports.port_read(PC_DMA + 4, 4) == 0x47464320
    assert bytes(ports.port_read(PC_DMA + i, 1) for i in range(8)) == b"QEMU CFG"
    assert ports.port_read(PC_DMA + 2, 2).to_bytes(2, "little") == b"MU"


def test_dma_register_reads_qemu_cfg_virt():
    g = make_guest("virt")
    mmio = g.m.mmio
    assert mmio.mmio_read(VIRT + 16, 8).to_bytes(8, "little") == b"QEMU CFG"
    assert mmio.mmio_read(VIRT + 16, 4) == 0x554D4551
    assert mmio.mmio_read(VIRT + 20, 4) == 0x47464320
    assert bytes(mmio.mmio_read(VIRT + 16 + i, 1) for i in range(8)) == b"QEMU CFG"


def test_reading_dma_register_starts_nothing(guest):
    guest.put_desc(SELECT | READ | 0x01 << 16, 4, BUF)
    guest.fill(BUF, 4)
    if guest.kind == "pc":
        guest.m.ports.port_read(PC_DMA, 4)
        guest.m.ports.port_read(PC_DMA + 4, 4)
    else:
        guest.m.mmio.mmio_read(VIRT + 16, 8)
    assert guest.desc()[0] == SELECT | READ | 0x01 << 16
    assert guest.mem(BUF, 4) == b"\xaa" * 4


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_mmio_data_reads_come_out_in_address_order(size):
    g = make_guest("virt")
    g.fw.add_file("etc/seq", bytes(range(1, 41)))
    g.select(0x20)
    got = b"".join(g.m.mmio.mmio_read(VIRT, size).to_bytes(size, "little")
                   for _ in range(48 // size))
    assert got == bytes(range(1, 41)) + bytes(8)


def test_pc_data_reads_at_either_port():
    g = make_guest("pc")
    g.select(0)
    assert bytes([g.m.ports.port_read(PC_SEL, 1), g.m.ports.port_read(PC_DATA, 1)]) == b"QE"
    g.m.ports.port_write(PC_DATA - 1, 2, 0)  # 16-bit write at 0x510 selects as well
    assert g.read(4) == b"QEMU"


def test_read_past_end_gives_zeros_and_offset_stays(guest):
    guest.fw.add_file("etc/five", b"ABCDE")
    guest.select(0x20)
    assert guest.read(4) == b"ABCD"
    assert guest.read(4) == b"E\0\0\0"
    for _ in range(5):
        assert guest.read(8) == bytes(8)
    # the offset stopped at the end: a DMA read without select gets only zeros, no error
    guest.fill(BUF, 16)
    assert guest.dma(READ, 16, BUF) == 0
    assert guest.mem(BUF, 16) == bytes(16)
    guest.select(0x20)
    assert guest.read(5) == b"ABCDE"


def test_data_register_writes_are_ignored(guest):
    guest.select(0)
    assert guest.read(1) == b"Q"
    for v in (0x00, 0x41, 0xFF):
        guest.write_data(v)
    assert guest.read(3) == b"EMU"
    guest.select(0)
    assert guest.read(4) == b"QEMU"


@pytest.mark.parametrize("key,expect", [(0x4000, b"QEMU"), (0x4001, struct.pack("<I", 3)),
                                        (0x4020, b"file")])
def test_write_channel_bit_ignored(guest, key, expect):
    guest.fw.add_file("etc/f", b"file")
    guest.select(key)
    assert guest.read(len(expect)) == expect


def test_arch_local_table(guest):
    guest.fw.add_bytes(0x8003, b"arch")
    guest.select(0x8003)
    assert guest.read(4) == b"arch"
    guest.select(0x0003)  # same index in the generic table: not set
    assert guest.read(4) == bytes(4)
    guest.select(0x8000)  # arch table index 0 is not the signature
    assert guest.read(4) == bytes(4)


@pytest.mark.parametrize("key", [0x3FFF, 0xFFFF, 0x20 + 32, 0x20 + 33, 0x7FFF, 0xBFFF, 0xC040,
                                 0x05, 0x3F])
def test_invalid_and_empty_keys_read_zeros(guest, key):
    """CVE-2016-1714: keys beyond the tables must never index past them."""
    guest.select(key)
    assert guest.read(16) == bytes(16)
    guest.fill(BUF, 32)
    assert guest.dma(SELECT | READ | key << 16, 32, BUF) == 0
    assert guest.mem(BUF, 32) == bytes(32)
    assert guest.dma(SELECT | WRITE | key << 16, 4, BUF) == ERROR
    assert guest.dma(SELECT | SKIP | key << 16, 4, BUF) == 0
    guest.select(0)
    assert guest.read(4) == b"QEMU"


# --------------------------------------------------------------------------- file directory


def read_dir(g: Guest) -> list[tuple[int, int, int, bytes]]:
    g.select(0x19)
    (count,) = struct.unpack(">I", g.read(4))
    return [DIR_ENTRY.unpack(g.read(64)) for _ in range(count)]


def test_file_directory_layout(guest):
    files = {"opt/b": b"bee", "etc/z": b"zed" * 100, "opt/a": b"", "Zeta": b"\x01\x02"}
    for name, data in files.items():
        guest.fw.add_file(name, data)
    entries = read_dir(guest)
    names = sorted(files, key=str.encode)  # strcmp order
    assert [e[3].rstrip(b"\0").decode() for e in entries] == names
    for i, (size, select, reserved, raw) in enumerate(entries):
        name = names[i]
        assert size == len(files[name])
        assert select == 0x20 + i
        assert reserved == 0
        assert raw == name.encode().ljust(56, b"\0")
        guest.select(select)
        assert guest.read(size + 4) == files[name] + bytes(4)


def test_file_sort_is_strcmp():
    g = make_guest("pc")
    names = ["a0", "a/b", "a-b", "Z", "z", "caf\u00e9", "cafe", "a", "opt/x", "etc/x"]
    for n in names:
        g.fw.add_file(n, n.encode())
    got = [e[3].rstrip(b"\0") for e in read_dir(g)]
    assert got == sorted(n.encode() for n in names)
    for i, raw in enumerate(got):
        g.select(0x20 + i)
        assert g.read(len(raw)) == raw


def test_inserting_a_file_renumbers_the_later_ones(guest):
    assert guest.fw.add_file("etc/m", b"middle") == 0x20
    assert guest.fw.add_file("etc/z", b"last") == 0x21
    assert guest.fw.add_file("etc/a", b"first") == 0x20
    entries = read_dir(guest)
    assert [(e[1], e[3].rstrip(b"\0")) for e in entries] == [
        (0x20, b"etc/a"), (0x21, b"etc/m"), (0x22, b"etc/z")]
    assert [e[0] for e in entries] == [5, 6, 4]
    for key, data in ((0x20, b"first"), (0x21, b"middle"), (0x22, b"last")):
        guest.select(key)
        assert guest.read(len(data)) == data


def test_duplicate_file_name_is_a_config_error():
    fw = FwCfg(AddressSpace())
    fw.add_file("etc/dup", b"1")
    with pytest.raises(ConfigError, match=re.escape("duplicate fw_cfg file name: etc/dup")):
        fw.add_file("etc/dup", b"2")


def test_33rd_file_is_a_config_error():
    g = make_guest("virt")
    for i in range(32):
        g.fw.add_file(f"opt/f{i:02d}", bytes([i]))
    with pytest.raises(ConfigError):
        g.fw.add_file("opt/one-too-many", b"x")
    entries = read_dir(g)
    assert len(entries) == 32
    assert [e[3].rstrip(b"\0") for e in entries] == [f"opt/f{i:02d}".encode() for i in range(32)]


@pytest.mark.parametrize("board", ["pc", "virt"])
def test_board_items(board):
    g = make_guest(board)
    cfg = MachineConfig(machine=board, ram_size=64 << 20, smp=2, max_cpus=2)
    if board == "pc":
        add_pc_items(g.fw, cfg, [(0, 0xA0000, 1), (0x100000, (64 << 20) - 0x100000, 1)])
    else:
        add_virt_items(g.fw, cfg)
    names = {e[3].rstrip(b"\0"): e for e in read_dir(g)}
    size, key, _, _ = names[b"etc/boot-fail-wait"]
    assert size == 4
    g.select(key)
    assert g.read(4) == struct.pack("<I", 0xFFFFFFFF)
    g.select(0x05)
    assert g.read(2) == struct.pack("<H", 2)
    g.select(0x02)
    assert g.read(16) == bytes(16)
    if board == "pc":
        g.select(0x03)
        assert g.read(8) == struct.pack("<Q", 64 << 20)
        assert b"etc/e820" in names


# --------------------------------------------------------------------------- DMA


def first_change(before: bytes, after: bytes, allowed: list[tuple[int, int]]) -> int | None:
    """The first offset of the RAM block at RAM_BASE that changed outside the ``allowed``
    (address, length) ranges."""
    spans = []
    for addr, n in allowed:
        lo, hi = max(addr, RAM_BASE), min(addr + n, RAM_BASE + len(before))
        if lo < hi:
            spans.append((lo - RAM_BASE, hi - RAM_BASE))
    spans.sort()
    pos = 0
    for lo, hi in [*spans, (len(before), len(before))]:
        if lo > pos and before[pos:lo] != after[pos:lo]:
            return next(i for i in range(pos, lo) if before[i] != after[i])
        pos = max(pos, hi)
    return None


def test_dma_read(guest):
    guest.fill(BUF, 8)
    assert guest.dma(SELECT | READ, 4, BUF) == 0
    assert guest.mem(BUF, 8) == b"QEMU" + b"\xaa" * 4
    assert guest.dma(SELECT | READ | 0x01 << 16, 4, BUF) == 0
    assert guest.mem(BUF, 4) == struct.pack("<I", 3)


def test_dma_read_continues_from_data_register_offset(guest):
    guest.select(0)
    assert guest.read(1) == b"Q"
    assert guest.dma(READ, 3, BUF) == 0
    assert guest.mem(BUF, 3) == b"EMU"


def test_dma_read_past_end_gives_data_then_zeros(guest):
    guest.fill(BUF, 0x30)
    assert guest.dma(SELECT | READ, 0x20, BUF) == 0
    assert guest.mem(BUF, 0x30) == b"QEMU" + bytes(0x1C) + b"\xaa" * 0x10


def test_dma_skip(guest):
    guest.fw.add_file("etc/f", bytes(range(32)))
    assert guest.dma(SELECT | SKIP | 0x20 << 16, 10, BUF) == 0
    assert guest.read(2) == bytes([10, 11])
    assert guest.dma(SKIP, 5, BUF) == 0
    assert guest.dma(READ, 4, BUF) == 0
    assert guest.mem(BUF, 4) == bytes([17, 18, 19, 20])
    assert guest.dma(SKIP, 1000, BUF) == 0  # past the end: no error
    assert guest.read(4) == bytes(4)


def test_dma_select_only(guest):
    guest.select(0)
    guest.read(2)
    guest.fill(BUF, 16)
    assert guest.dma(SELECT | 0x01 << 16, 16, BUF) == 0
    assert guest.mem(BUF, 16) == b"\xaa" * 16
    assert struct.unpack("<I", guest.read(4))[0] == 3  # selected, offset 0


def test_dma_no_op(guest):
    guest.select(0)
    guest.read(1)
    guest.fill(BUF, 16)
    assert guest.dma(0x01 << 16, 16, BUF) == 0  # key bits without SELECT do nothing
    assert guest.mem(BUF, 16) == b"\xaa" * 16
    assert guest.read(3) == b"EMU"


def test_dma_read_wins_over_write_and_skip(guest):
    guest.fw.add_file("etc/rw", b"original", writable=True)
    guest.fill(BUF, 8, 0x55)
    assert guest.dma(SELECT | READ | WRITE | SKIP | 0x20 << 16, 8, BUF) == 0
    assert guest.mem(BUF, 8) == b"original"
    guest.fill(BUF, 8, 0x55)
    assert guest.dma(SELECT | WRITE | SKIP | 0x20 << 16, 8, BUF) == 0  # WRITE over SKIP
    guest.select(0x20)
    assert guest.read(8) == b"\x55" * 8


def test_dma_write_to_read_only_item_is_an_error(guest):
    guest.fw.add_file("etc/ro", b"readonly")
    assert guest.space.write(BUF, b"XXXXXXXX")
    assert guest.dma(SELECT | WRITE | 0x20 << 16, 8, BUF) == ERROR
    guest.select(0x20)
    assert guest.read(8) == b"readonly"
    assert guest.dma(SELECT | WRITE, 4, BUF) == ERROR  # the signature
    guest.select(0)
    assert guest.read(4) == b"QEMU"


def test_dma_write_past_end_is_dropped_whole(guest):
    calls = []
    guest.fw.add_file("etc/rw", b"0123456789abcdef", writable=True,
                      on_write=lambda off, n: calls.append((off, n)))
    assert guest.space.write(BUF, b"X" * 32)
    assert guest.dma(SELECT | WRITE | 0x20 << 16, 17, BUF) == ERROR
    assert guest.dma(SELECT | SKIP | 0x20 << 16, 10, BUF) == 0
    assert guest.dma(WRITE, 7, BUF) == ERROR
    assert calls == []
    guest.select(0x20)
    assert guest.read(16) == b"0123456789abcdef"


def test_dma_write_calls_callback_once(guest):
    calls = []
    guest.fw.add_file("etc/rw", bytes(16), writable=True,
                      on_write=lambda off, n: calls.append((off, n)))
    assert guest.space.write(BUF, b"ABCDEFGH")
    assert guest.dma(SELECT | SKIP | 0x20 << 16, 4, BUF) == 0
    assert guest.dma(WRITE, 8, BUF) == 0
    assert calls == [(4, 8)]
    assert guest.dma(SELECT | WRITE | 0x20 << 16, 16, BUF) == 0
    assert calls == [(4, 8), (0, 16)]
    guest.select(0x20)
    assert guest.read(16) == guest.mem(BUF, 16)
    # the whole-item write left the offset at the end: one more byte does not fit
    assert guest.dma(WRITE, 1, BUF) == ERROR
    assert len(calls) == 2


@pytest.mark.parametrize(("addr", "stored"), [
    (0, b"\0\0\0\0"), (RAM_END, b"\0\0\0\0"), (VIRT, b"\0\0\0\0"), (1 << 63, b"\0\0\0\0"),
    (M64 - 1, b"\0\0\0\0"),  # goes on at address 0, which is not RAM here
    (RAM_END - 2, b"ab\0\0"), (RAM_BASE - 2, b"\0\0ab")])
def test_dma_write_from_outside_ram_stores_zeros_and_is_an_error(guest, addr, stored):
    """QEMU's dma_memory_read fills the item: RAM bytes, zeros for the rest; ERROR, and no
    write callback (tests/test_qtest.py runs the same on QEMU)."""
    calls = []
    guest.fw.add_file("etc/rw", b"keep", writable=True,
                      on_write=lambda off, n: calls.append((off, n)))
    guest.space.write(RAM_END - 2, b"ab")
    guest.space.write(RAM_BASE, b"ab")
    assert guest.dma(SELECT | WRITE | 0x20 << 16, 4, addr) == ERROR
    assert calls == []
    guest.select(0x20)
    assert guest.read(4) == stored


def test_dma_invalid_key_write_is_an_error(guest):
    guest.fill(BUF, 4)
    for key in (0x3FFF, 0xFFFF, 0x40, 0x05):
        assert guest.dma(SELECT | WRITE | key << 16, 4, BUF) == ERROR
    assert guest.mem(BUF, 4) == b"\xaa" * 4


@pytest.mark.parametrize("addr", [0, RAM_BASE - 4, RAM_BASE - 2, RAM_END, RAM_END - 2,
                                  0x1_0000_0000, M64 - 3])
def test_dma_read_into_non_ram_is_an_error(guest, addr):
    guest.put_desc(SELECT | READ, 4, addr)
    before = bytes(guest.m.ram.buf)
    guest.kick(DESC)
    after = bytes(guest.m.ram.buf)
    assert guest.desc() == (ERROR, 4, addr)
    assert first_change(before, after, [(addr, 4), (DESC, 4)]) is None


@pytest.mark.parametrize("desc", [0, RAM_END, RAM_BASE - 16, 0x1_0000_0000, M64 - 7])
def test_descriptor_outside_ram(guest, desc):
    guest.select(0)
    guest.read(1)
    before = bytes(guest.m.ram.buf)
    guest.kick(desc)
    assert bytes(guest.m.ram.buf) == before
    assert guest.read(3) == b"EMU"  # nothing was selected or read
    guest.fill(BUF, 4)
    assert guest.dma(SELECT | READ, 4, BUF) == 0  # the next transfer works
    assert guest.mem(BUF, 4) == b"QEMU"


@pytest.mark.parametrize("back", [8, 12])
def test_descriptor_straddling_end_of_ram(guest, back):
    at = RAM_END - back
    guest.select(0)
    guest.read(1)
    assert guest.space.write(at, DESC_FMT.pack(SELECT | READ | 0x01 << 16, 4, BUF)[:back])
    guest.fill(BUF, 4)
    before = bytes(guest.m.ram.buf)
    guest.kick(at)
    after = bytes(guest.m.ram.buf)
    off = at - RAM_BASE
    assert after[off : off + 4] == struct.pack(">I", ERROR)
    assert after[:off] == before[:off] and after[off + 4 :] == before[off + 4 :]
    assert guest.read(3) == b"EMU"
    assert guest.dma(SELECT | READ, 4, BUF) == 0


def test_descriptor_straddling_start_of_ram(guest):
    before = bytes(guest.m.ram.buf)
    guest.kick(RAM_BASE - 8)
    assert bytes(guest.m.ram.buf) == before  # the control word is not RAM: nothing written
    assert guest.dma(SELECT | READ, 4, BUF) == 0


def test_control_written_back_length_and_address_unchanged(guest):
    guest.fw.add_file("etc/rw", bytes(8), writable=True)
    cases = [(SELECT | READ, 4, BUF, 0), (SELECT | READ, 0x100, BUF, 0),
             (SELECT | WRITE, 4, BUF, ERROR), (SELECT | WRITE | 0x20 << 16, 8, BUF, 0),
             (SELECT | READ, 4, 0, ERROR), (SELECT | SKIP, 0x1000, 0, 0), (0, 7, 9, 0),
             (SELECT | ERROR | READ, 4, BUF, 0), (0xFFE0 | ERROR, 3, BUF, 0)]
    for control, length, address, expect in cases:
        assert guest.dma(control, length, address) == expect  # checks length/address too


def test_high_half_replaces_latched_address(guest):
    guest.fill(BUF, 4)
    guest.put_desc(SELECT | READ, 4, BUF)
    guest.kick_hi(0x1234)
    guest.kick_hi(0)  # replaces the whole latched address
    guest.kick_lo(DESC)
    assert guest.desc()[0] == 0
    assert guest.mem(BUF, 4) == b"QEMU"


def test_low_half_ors_in_and_register_clears():
    for kind in ("pc", "virt"):
        high = 0x1_0000_0000
        g = make_guest(kind, extra=((high, 0x1000),))
        assert g.space.write(high + 0x10, DESC_FMT.pack(SELECT | READ, 4, high + 0x100))
        g.put_desc(SELECT | READ | 0x01 << 16, 4, BUF)
        g.fill(BUF, 4)
        g.kick_hi(1)
        g.kick_lo(0x10)  # ORed into the high half: the descriptor at 4 GiB + 0x10
        assert g.mem(high + 0x100, 4) == b"QEMU"
        assert g.mem(high + 0x10, 4) == bytes(4)
        assert g.mem(BUF, 4) == b"\xaa" * 4
        g.kick_lo(DESC)  # the register was cleared: this one is at DESC, below 4 GiB
        assert g.desc()[0] == 0
        assert g.mem(BUF, 4) == struct.pack("<I", 3)


def test_register_clears_without_high_ram(guest):
    guest.put_desc(SELECT | READ, 4, BUF)
    guest.fill(BUF, 4)
    guest.kick_hi(1)
    guest.kick_lo(DESC)  # 4 GiB + DESC: not RAM, nothing happens here
    assert guest.desc()[0] == SELECT | READ
    guest.kick_lo(DESC)  # low half alone: the high half was cleared
    assert guest.desc()[0] == 0
    assert guest.mem(BUF, 4) == b"QEMU"


def test_partial_width_dma_register_writes_are_ignored(guest):
    guest.put_desc(SELECT | READ, 4, BUF)
    if guest.kind == "pc":
        ports = guest.m.ports
        ports.port_write(PC_DMA, 4, 0)
        for port, size in ((PC_DMA + 4, 1), (PC_DMA + 4, 2), (PC_DMA + 6, 2), (PC_DMA + 7, 1)):
            ports.port_write(port, size, 0x10)
    else:
        mmio = guest.m.mmio
        mmio.mmio_write(VIRT + 16, 4, 0)
        for addr, size in ((VIRT + 20, 1), (VIRT + 20, 2), (VIRT + 22, 2), (VIRT + 23, 1)):
            mmio.mmio_write(addr, size, 0x10)
    assert guest.desc()[0] == SELECT | READ
    guest.kick_lo(DESC)
    assert guest.desc()[0] == 0


def test_virt_dma_as_two_halves():
    g = make_guest("virt")
    g.fill(BUF, 4)
    g.put_desc(SELECT | READ, 4, BUF)
    g.kick_hi(0)
    g.kick_lo(DESC)
    assert g.desc()[0] == 0
    assert g.mem(BUF, 4) == b"QEMU"


def test_unswapped_address_fails_cleanly(guest):
    """A little-endian guest that forgets to byte-swap the DMA address."""
    at = RAM_BASE + 0x3450  # byte-swapped, 0x50341000 / 0x5034100000000000: not RAM
    guest.put_desc(SELECT | READ, 4, BUF, at=at)
    guest.fill(BUF, 4)
    before = bytes(guest.m.ram.buf)
    if guest.kind == "pc":
        guest.m.ports.port_write(PC_DMA, 4, 0)
        guest.m.ports.port_write(PC_DMA + 4, 4, at)
    else:
        guest.m.mmio.mmio_write(VIRT + 16, 8, at)
    after = bytes(guest.m.ram.buf)
    assert after == before  # bswap(DESC) is not RAM: no effect at all


def test_unswapped_descriptor_fails_cleanly(guest):
    """The descriptor written in little-endian order."""
    guest.fw.add_file("etc/rw", b"keepkeep", writable=True)
    guest.fill(BUF, 16)
    for control in (SELECT | READ, SELECT | WRITE | 0x20 << 16, READ, SKIP | 0x20 << 16):
        raw = struct.pack("<IIQ", control, 8, BUF)
        assert guest.space.write(DESC, raw)
        before = bytes(guest.m.ram.buf)
        guest.kick(DESC)
        after = bytes(guest.m.ram.buf)
        off = DESC - RAM_BASE
        assert after[:off] == before[:off] and after[off + 4 :] == before[off + 4 :]
        assert struct.unpack(">I", after[off : off + 4])[0] in (0, ERROR)
    guest.select(0x20)
    assert guest.read(8) == b"keepkeep"


def test_dma_at_own_registers_does_not_reenter():
    g = make_guest("virt")
    g.fw.add_file("etc/rw", b"keepkeep", writable=True)
    m = g.m

    def kick_counted(desc: int) -> None:
        start = m.accesses()
        g.kick(desc)
        assert m.accesses() - start == 2  # only the guest's own two halves of the store

    for desc in (VIRT, VIRT + 8, VIRT + 16, VIRT + 0x10 - 4):
        kick_counted(desc)
    for address in (VIRT, VIRT + 8, VIRT + 16, VIRT + 20):
        for control in (SELECT | READ, SELECT | READ | 0x19 << 16, SELECT | WRITE | 0x20 << 16):
            g.put_desc(control, 24, address)
            kick_counted(DESC)
            assert g.desc()[0] == ERROR
    g.select(0x20)
    assert g.read(8) == b"keepkeep"
    assert g.dma(SELECT | READ, 4, BUF) == 0
    assert g.mem(BUF, 4) == b"QEMU"


def test_pc_dma_at_port_numbers_is_not_io():
    """Port numbers are not memory addresses: buffers at 0x510/0x514 are just non-RAM."""
    g = make_guest("pc")
    for address in (PC_SEL, PC_DMA):
        start = g.m.accesses()
        assert g.dma(SELECT | READ, 8, address) == ERROR
        assert g.m.accesses() - start == 2
    g.kick(PC_DMA)
    g.select(0)
    assert g.read(4) == b"QEMU"


@pytest.mark.parametrize("key,head", [(0x3FFF, b""), (0x0000, b"QEMU")])
def test_huge_dma_read_fills_only_ram(key, head):
    size = 0x10000
    g = make_guest("pc", ram_size=size)
    desc, target = RAM_BASE, RAM_BASE + 0x8000
    assert g.space.write(RAM_BASE, b"\xaa" * size)
    g.put_desc(SELECT | READ | key << 16, M32, target, at=desc)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        g.kick(desc)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 5
    assert peak < 64 << 20
    ram = bytes(g.m.ram.buf)
    assert ram[:4] == struct.pack(">I", ERROR)
    assert ram[4:16] == DESC_FMT.pack(0, M32, target)[4:]
    assert ram[16:0x8000] == b"\xaa" * (0x8000 - 16)
    assert ram[0x8000:] == head + bytes(0x8000 - len(head))


# --------------------------------------------------------------------------- trace


@pytest.fixture
def traced():
    out = io.StringIO()
    trace.enable("fw_cfg_*")
    trace.set_output(out)
    try:
        yield out
    finally:
        trace.reset()
        trace.set_output(sys.stderr)


def test_trace_select_and_dma(guest, traced):
    guest.select(0x01)
    assert any(line.startswith("fw_cfg_select") for line in traced.getvalue().splitlines())
    traced.seek(0)
    traced.truncate()
    control, length = SELECT | READ | 0x01 << 16, 0x13
    assert guest.dma(control, length, BUF) == 0
    lines = [line for line in traced.getvalue().splitlines() if line.startswith("fw_cfg_dma")]
    assert len(lines) == 1
    line = lines[0]
    assert f"0x{control:x}" in line and f"0x{BUF:x}" in line and f"0x{length:x}" in line
    assert "ok" in line
    traced.seek(0)
    traced.truncate()
    assert guest.dma(SELECT | WRITE, 4, BUF) == ERROR
    lines = [line for line in traced.getvalue().splitlines() if line.startswith("fw_cfg_dma")]
    assert len(lines) == 1 and "error" in lines[0]


# --------------------------------------------------------------------------- property test

P_RAM = 0x20000
P_END = RAM_BASE + P_RAM
PATTERN = bytes((i * 7 + 3) % 255 + 1 for i in range(P_RAM))
RW_SIZE = 64

KEYS = st.one_of(st.sampled_from([0x00, 0x01, 0x19, 0x20, 0x21, 0x22, 0x3F, 0x40, 0x4000, 0x4021,
                                  0x8000, 0x8003, 0x3FFF, 0xFFFF]),
                 st.integers(0, 0xFFFF))
CONTROLS = st.one_of(st.builds(lambda k, b: k << 16 | b, KEYS, st.integers(0, 0x1F)),
                     st.integers(0, M32))
LENGTHS = st.one_of(st.integers(0, 80), st.integers(0, 0x10000))
ADDRESSES = st.one_of(
    st.integers(RAM_BASE, P_END - 1),
    st.integers(P_END - 0x10000, P_END + 0x40),
    st.integers(RAM_BASE - 0x10000, RAM_BASE + 0x40),
    st.sampled_from([0, VIRT, VIRT + 8, VIRT + 16, 0x1_0000_0000 | RAM_BASE, M64 - 7, M64]),
    st.integers(0, M64),
)
DESCS = st.one_of(
    st.integers(RAM_BASE, P_END - 16),
    st.integers(P_END - 16, P_END + 4),
    st.integers(RAM_BASE - 16, RAM_BASE),
    st.sampled_from([0, VIRT, VIRT + 16, M64 - 7]),
    st.integers(0, M64),
)
OPS = st.lists(st.one_of(
    st.tuples(st.just("select"), st.booleans(), KEYS),
    st.tuples(st.just("read"), st.booleans(), st.sampled_from([1, 2, 4, 8])),
    st.tuples(st.just("write"), st.booleans(), st.sampled_from([1, 2, 4, 8]),
              st.integers(0, M64)),
    st.tuples(st.just("dma"), st.booleans(), CONTROLS, LENGTHS, ADDRESSES, DESCS),
), max_size=10)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(OPS)
def test_random_guest_traffic(ops):
    m = Machine(ram_size=P_RAM)
    m.reset()
    calls = []
    m.fw.add_file("etc/ro", bytes(range(100)))
    m.fw.add_file("etc/rw", bytes(RW_SIZE), writable=True,
                  on_write=lambda off, n: calls.append((off, n)))
    m.ram.buf[:] = PATTERN
    pc, virt = PcGuest(m), VirtGuest(m)
    for op in ops:
        g = pc if op[1] else virt
        if op[0] == "select":
            g.select(op[2])
        elif op[0] == "read":
            if op[1]:
                for i in range(op[2]):
                    assert 0 <= m.ports.port_read(PC_SEL + (i & 1), 1) <= 0xFF
                m.ports.port_read(PC_SEL, 2)  # not a valid data access; must not raise
            else:
                assert 0 <= m.mmio.mmio_read(VIRT, op[2]) < 1 << (8 * op[2])
                m.mmio.mmio_read(VIRT + 8, 2)
        elif op[0] == "write":
            if op[1]:
                m.ports.port_write(PC_DATA, 1, op[3] & 0xFF)
            else:
                m.mmio.mmio_write(VIRT, op[2], op[3] & ((1 << (8 * op[2])) - 1))
        else:
            _, _, control, length, address, desc = op
            m.space.write_some(desc, DESC_FMT.pack(control, length, address))
            before = bytes(m.ram.buf)
            g.kick(desc)
            after = bytes(m.ram.buf)
            bad = first_change(before, after, [(address, length), (desc, 4)])
            assert bad is None, f"DMA wrote RAM at 0x{RAM_BASE + bad:x}"
            if desc >= RAM_BASE and desc + 16 <= P_END:
                assert struct.unpack(">I", after[desc - RAM_BASE : desc - RAM_BASE + 4])[0] in (
                    0, ERROR)
    for off, n in calls:
        assert n > 0 and off >= 0 and off + n <= RW_SIZE
    assert pc.dma(SELECT | READ, 4, RAM_BASE + 0x100, at=RAM_BASE) == 0
    assert pc.mem(RAM_BASE + 0x100, 4) == b"QEMU"
    assert virt.dma(SELECT | READ | 0x21 << 16, 4, RAM_BASE + 0x200, at=RAM_BASE + 0x20) == 0
