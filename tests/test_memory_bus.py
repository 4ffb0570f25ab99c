"""Guest RAM (AddressSpace, RamBlock) and the port / MMIO buses, without a CPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu.bus import MmioBus, PortBus, Region
from emu.errors import ConfigError
from emu.memory import PAGE_SIZE, AddressSpace, BusRegion, RamBlock

GiB = 1 << 30
MiB = 1 << 20


# --------------------------------------------------------------------------- helpers


class Recorder:
    """A register region that logs every access and reads back ``read_value(offset, size)``."""

    def __init__(self, read_value=None) -> None:
        self.log: list[tuple] = []
        self.read_value = read_value or (lambda offset, size: 0x5A)

    def read(self, offset: int, size: int) -> int:
        self.log.append(("r", offset, size))
        return self.read_value(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        self.log.append(("w", offset, size, value))


class Counter:
    """Each read returns the next number: a repeated delivery is visible in the value."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes: list[tuple[int, int, int]] = []

    def read(self, offset: int, size: int) -> int:
        self.reads += 1
        return self.reads

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes.append((offset, size, value))


def _pending_hook(bus):
    """Arm ``bus.pending`` with a hook that, like the machine's, clears the flag when called."""
    calls = []

    def hook() -> None:
        calls.append(1)
        bus.pending = False

    bus.on_pending = hook
    bus.pending = True
    return calls


@pytest.fixture
def space():
    """0x0000-0x1fff and 0x2000-0x2fff (adjacent), a hole, then 0x10000-0x10fff."""
    blocks = [RamBlock.allocate("lo", 0, 0x2000), RamBlock.allocate("mid", 0x2000, 0x1000),
              RamBlock.allocate("hi", 0x10000, 0x1000)]
    a = AddressSpace()
    for b in blocks:
        a.add(b)
    yield a
    for b in blocks:
        b.buf.close()


# --------------------------------------------------------------------------- AddressSpace


def test_dma_read_zero_fills_what_is_not_memory(space):
    """QEMU's dma_memory_read: RAM bytes, zeros for unassigned ones, and a failure flag."""
    space.write(0x2FF8, b"ABCDEFGH")
    assert space.dma_read(0x2FF8, 16) == (b"ABCDEFGH" + bytes(8), False)
    assert space.dma_read(0x2FF8, 8) == (b"ABCDEFGH", True)
    assert space.dma_read(0x20000, 4) == (bytes(4), False)


def test_dma_accesses_wrap_at_2_64(space):
    space.write(0, b"wxyz")
    assert space.dma_read((1 << 64) - 2, 6) == (b"\0\0wxyz", False)
    assert not space.write_some((1 << 64) - 1, b"!AB")
    assert space.read(0, 4) == b"AByz"


def test_rom_and_flash_regions_answer_dma(space):
    rom = memoryview(bytearray(b"R" * 0x1000))
    space.add_region(BusRegion("rom", 0x4000, 0x1000, rom))
    space.add_region(BusRegion("flash", 0x5000, 0x1000, memoryview(bytes(0x1000)), True))
    space.add_region(BusRegion("vga", 0x6000, 0x1000, None, True))
    assert space.dma_read(0x4FFE, 4) == (b"RR\0\0", True)
    assert space.dma_read(0x6FFE, 4) == (bytes(4), False)  # the VGA window, then nothing
    assert not space.write_some(0x4000, b"x")  # a write to ROM fails
    assert space.write_some(0x5000, b"x") and space.write_some(0x6000, b"x")
    assert rom[0:1] == b"R" and space.read(0x4000, 1) is None  # not RAM for the CPU paths
    assert space.ram_size == 0x4000
    with pytest.raises(ValueError, match="overlaps"):
        space.add_region(BusRegion("bad", 0x1000, 0x1000))


def test_slices_share_one_host_mapping():
    whole = RamBlock.allocate("pc.ram", 0, 0x10000)
    low, high = whole.slice("low", 0, 0, 0x4000), whole.slice("high", 1 << 32, 0x8000, 0x8000)
    high.view()[0:2] = b"hi"
    assert bytes(whole.view()[0x8000:0x8002]) == b"hi"
    assert high.host_address() == whole.host_address() + 0x8000
    low.view()[0] = 7
    low.clear()
    assert low.view()[0] == 0 and bytes(whole.view()[0x8000:0x8002]) == b"hi"


def test_ram_the_host_cannot_map_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot set up guest memory 'huge': Cannot allocate"):
        RamBlock.allocate("huge", 0, 1 << 62)


def test_fresh_ram_reads_zero(space):
    assert space.read(0, 16) == bytes(16)
    assert space.read(0x10FF0, 16) == bytes(16)


def test_read_write_inside_block(space):
    assert space.write(0x100, b"hello") is True
    assert space.read(0x100, 5) == b"hello"
    assert space.read(0xFF, 7) == b"\0hello\0"
    assert space.write(0x10800, b"\xaa\xbb") is True
    assert space.read(0x10800, 2) == b"\xaa\xbb"


def test_access_spanning_adjacent_blocks(space):
    assert space.write(0x1FFE, b"ABCD") is True
    assert space.read(0x1FFE, 4) == b"ABCD"
    assert space.read(0x1FFE, 2) == b"AB"
    assert space.read(0x2000, 2) == b"CD"
    assert space.is_ram(0, 0x3000)


def test_read_outside_ram_is_none(space):
    assert space.read(0x3000, 1) is None
    assert space.read(0x2FFF, 2) is None  # last byte of RAM plus one byte of hole
    assert space.read(0x0FFF0, 0x20) is None  # hole then RAM
    assert space.read(0x11000, 4) is None
    assert space.read(0x2000, 0x10000) is None  # crosses the hole
    assert not space.is_ram(0x2FFF, 2)


def test_write_partly_outside_ram_writes_nothing(space):
    assert space.write(0x2FFC, b"\x11" * 8) is False
    assert space.read(0x2FFC, 4) == bytes(4)
    assert space.write(0xFFFE, b"\x22" * 4) is False
    assert space.read(0x10000, 2) == bytes(2)
    assert space.write(0x20000, b"x") is False


def test_negative_and_overflowing_addresses(space):
    assert space.read(-1, 1) is None
    assert space.read(-4, 8) is None
    assert space.write(-1, b"\x01\x02") is False
    assert space.read(0, 2) == bytes(2)
    assert space.fill(-16, 32, 0xFF) is False
    assert space.read(0, 16) == bytes(16)
    top = (1 << 64) - 2
    assert space.read(top, 4) is None
    assert space.write(top, b"abcd") is False
    assert space.read(1 << 64, 1) is None
    assert space.read(0x10000, 1 << 64) is None


def test_fill(space):
    assert space.fill(0x1FF0, 0x20, 0xCC) is True
    assert space.read(0x1FEF, 0x22) == b"\0" + b"\xcc" * 0x20 + b"\0"
    assert space.fill(0x1FF8, 8) is True
    assert space.read(0x1FF0, 0x10) == b"\xcc" * 8 + bytes(8)
    assert space.fill(0x2FF0, 0x20, 0xEE) is False
    assert space.read(0x2FF0, 0x10) == bytes(0x10)


def test_ram_size_and_ranges(space):
    assert space.ram_size == 0x4000
    assert list(space.ranges()) == [(0, 0x2000), (0x2000, 0x1000), (0x10000, 0x1000)]


def test_overlapping_block_refused(space):
    extra = RamBlock.allocate("x", 0x2000 - PAGE_SIZE, 2 * PAGE_SIZE)
    try:
        with pytest.raises(ValueError):
            space.add(extra)
    finally:
        extra.buf.close()
    assert space.ram_size == 0x4000


def test_unaligned_block_refused():
    with pytest.raises(ValueError):
        RamBlock.allocate("odd", 0x100, PAGE_SIZE)
    with pytest.raises(ValueError):
        RamBlock.allocate("odd", 0, PAGE_SIZE + 1)
    with pytest.raises(ValueError):
        RamBlock.allocate("empty", 0, 0)


def test_clear_zeroes_block():
    block = RamBlock.allocate("r", 0, 4 * PAGE_SIZE)
    try:
        a = AddressSpace()
        a.add(block)
        a.fill(0, 4 * PAGE_SIZE, 0x77)
        block.clear()
        assert a.read(0, 4 * PAGE_SIZE) == bytes(4 * PAGE_SIZE)
    finally:
        block.buf.close()


def _rss() -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) * 1024


def test_large_ram_is_lazily_backed():
    before = _rss()
    block = RamBlock.allocate("big", 0, 4 * GiB)
    try:
        allocated = _rss()
        assert allocated - before < 64 * MiB
        a = AddressSpace()
        a.add(block)
        assert a.write(3 * GiB + 123, b"\x01") is True
        touched = _rss()
        # One page (or at most one transparent huge page) became resident.
        assert PAGE_SIZE <= touched - allocated <= 4 * MiB
        assert a.read(3 * GiB + 123, 1) == b"\x01"
        assert a.read(4 * GiB - 1, 1) == b"\0"
    finally:
        block.buf.close()


# --------------------------------------------------------------------------- PortBus


def test_port_dispatch_offset_relative_to_base():
    bus = PortBus()
    dev = Recorder(lambda off, size: 0x40 + off)
    bus.map(0x3F8, Region("uart", 8, dev))
    assert bus.port_read(0x3FD, 1) == 0x45
    bus.port_write(0x3F8, 1, 0x41)
    bus.port_write(0x3FE, 2, 0x1234)
    assert dev.log == [("r", 5, 1), ("w", 0, 1, 0x41), ("w", 6, 2, 0x1234)]


def test_unaligned_port_access_is_split_as_qemu_splits_it():
    bus = PortBus()
    dev = Recorder(lambda off, size: 0x40 + off)
    bus.map(0x3F8, Region("uart", 8, dev))
    bus.port_write(0x3FF, 2, 0x1234)  # odd port: a byte for the UART, a byte for nobody
    assert dev.log == [("w", 7, 1, 0x34)]
    assert bus.port_read(0x3FF, 2) == 0xFF47  # the UART's byte, then an unassigned 0xff


def test_port_read_value_masked_to_access_size():
    bus = PortBus()
    bus.map(0x80, Region("wide", 4, Recorder(lambda off, size: 0xDEADBEEF)))
    assert bus.port_read(0x80, 1) == 0xEF
    assert bus.port_read(0x80, 2) == 0xBEEF
    assert bus.port_read(0x80, 4) == 0xDEADBEEF


@pytest.mark.parametrize(("size", "ones"), [(1, 0xFF), (2, 0xFFFF), (4, 0xFFFFFFFF)])
def test_unassigned_port_reads_all_ones(size, ones):
    bus = PortBus()
    dev = Recorder()
    bus.map(0x60, Region("kbd", 1, dev))
    assert bus.port_read(0x61, size) == ones
    assert bus.port_read(0xFFFF, size) == ones
    bus.port_write(0x61, size, 0)
    assert dev.log == []


def test_port_overlap_refused():
    bus = PortBus()
    bus.map(0x3F8, Region("a", 8, Recorder()))
    with pytest.raises(ValueError):
        bus.map(0x3FF, Region("b", 2, Recorder()))
    with pytest.raises(ValueError):
        bus.map(0x3F0, Region("c", 0x10, Recorder()))
    bus.map(0x400, Region("d", 1, Recorder()))  # adjacent is fine


def test_port_out_of_range_refused():
    bus = PortBus()
    with pytest.raises(ValueError):
        bus.map(0xFFFF, Region("x", 2, Recorder()))


def test_frozen_port_bus_drops_writes_reads_unassigned():
    bus = PortBus()
    dev = Recorder()
    bus.map(0xF4, Region("exit", 4, dev))
    bus.frozen = True
    bus.port_write(0xF4, 1, 1)
    assert bus.port_read(0xF4, 1) == 0xFF
    assert bus.port_read(0xF4, 4) == 0xFFFFFFFF
    assert dev.log == []


def test_port_pending_hook_called_once_on_next_access():
    bus = PortBus()
    dev = Recorder()
    bus.map(0x70, Region("rtc", 2, dev))
    calls = _pending_hook(bus)
    assert calls == []
    bus.port_write(0x70, 1, 0x0A)
    assert calls == [1]
    bus.port_read(0x71, 1)
    bus.port_write(0x12, 1, 0)
    assert calls == [1]
    assert dev.log == [("w", 0, 1, 0x0A), ("r", 1, 1)]


def test_port_pending_hook_fires_on_unassigned_access():
    bus = PortBus()
    calls = _pending_hook(bus)
    assert bus.port_read(0x1234, 1) == 0xFF
    assert calls == [1]


# --------------------------------------------------------------------------- MmioBus


def test_mmio_dispatch_offset_relative_to_base():
    bus = MmioBus()
    dev = Recorder(lambda off, size: off)
    bus.map(0x0900_0000, Region("uart", 0x1000, dev))
    assert bus.mmio_read(0x0900_0018, 4) == 0x18
    bus.mmio_write(0x0900_0000, 1, 0x41)
    assert dev.log == [("r", 0x18, 4), ("w", 0, 1, 0x41)]


def test_mmio_8_byte_write_is_two_4_byte_writes():
    bus = MmioBus()
    dev = Recorder()
    bus.map(0x1000_0000, Region("dev", 0x100, dev))
    bus.mmio_write(0x1000_0010, 8, 0x1122334455667788)
    assert dev.log == [("w", 0x10, 4, 0x55667788), ("w", 0x14, 4, 0x11223344)]


def test_mmio_8_byte_read_is_two_4_byte_reads():
    bus = MmioBus()
    dev = Recorder(lambda off, size: {0x20: 0xCAFEF00D, 0x24: 0x01234567}[off])
    bus.map(0x1000_0000, Region("dev", 0x100, dev))
    assert bus.mmio_read(0x1000_0020, 8) == 0x01234567_CAFEF00D
    assert dev.log == [("r", 0x20, 4), ("r", 0x24, 4)]


def test_mmio_big_endian_region_converts_values():
    bus = MmioBus()
    dev = Recorder(lambda off, size: {4: 0x11223344, 2: 0xABCD, 1: 0x7F}[size])
    bus.map(0x0902_0000, Region("fw_cfg", 0x18, dev, big_endian=True))
    # The guest stores bytes 78 56 34 12; a big-endian device reads them as 0x78563412.
    bus.mmio_write(0x0902_0008, 4, 0x12345678)
    bus.mmio_write(0x0902_0008, 2, 0x1234)
    bus.mmio_write(0x0902_0000, 1, 0x5A)
    assert dev.log == [("w", 8, 4, 0x78563412), ("w", 8, 2, 0x3412), ("w", 0, 1, 0x5A)]
    # A big-endian register holding 0x11223344 puts bytes 11 22 33 44 in guest memory order.
    assert bus.mmio_read(0x0902_0008, 4) == 0x44332211
    assert bus.mmio_read(0x0902_0008, 2) == 0xCDAB
    assert bus.mmio_read(0x0902_0000, 1) == 0x7F


def test_mmio_little_endian_region_unchanged():
    bus = MmioBus()
    dev = Recorder(lambda off, size: 0x11223344)
    bus.map(0x2000, Region("le", 0x10, dev))
    bus.mmio_write(0x2000, 4, 0x12345678)
    assert dev.log == [("w", 0, 4, 0x12345678)]
    assert bus.mmio_read(0x2000, 4) == 0x11223344


def test_mmio_two_regions_in_one_page():
    bus = MmioBus()
    a = Recorder(lambda off, size: 0xA0 + off)
    b = Recorder(lambda off, size: 0xB0 + off)
    bus.map(0x0A00_0000, Region("a", 0x10, a))
    bus.map(0x0A00_0200, Region("b", 0x10, b))
    assert bus.mmio_read(0x0A00_0004, 4) == 0xA4
    assert bus.mmio_read(0x0A00_0208, 4) == 0xB8
    bus.mmio_write(0x0A00_020C, 4, 7)
    bus.mmio_write(0x0A00_0000, 4, 9)
    assert a.log == [("r", 4, 4), ("w", 0, 4, 9)]
    assert b.log == [("r", 8, 4), ("w", 0xC, 4, 7)]
    assert bus.covers(0x0A00_0FFF)
    assert not bus.covers(0x0A00_1000)


def test_mmio_unassigned_offset_in_window_reads_zero():
    bus = MmioBus()
    a = Recorder(lambda off, size: 0xFFFFFFFF)
    bus.map(0x0A00_0000, Region("a", 0x10, a))
    assert bus.mmio_read(0x0A00_0100, 4) == 0
    assert bus.mmio_read(0x0A00_0FFC, 4) == 0
    assert bus.mmio_read(0x0A00_0010, 1) == 0
    bus.mmio_write(0x0A00_0100, 4, 0x12345678)
    assert a.log == []


def test_mmio_overlap_refused():
    bus = MmioBus()
    bus.map(0x1000, Region("a", 0x100, Recorder()))
    with pytest.raises(ValueError):
        bus.map(0x10F0, Region("b", 0x20, Recorder()))


def test_mmio_frozen_drops_access():
    bus = MmioBus()
    dev = Recorder(lambda off, size: 0x1234)
    bus.map(0x1000, Region("a", 0x100, dev))
    bus.frozen = True
    bus.mmio_write(0x1000, 4, 1)
    assert bus.mmio_read(0x1000, 4) == 0
    assert dev.log == []


def test_mmio_replay_repeated_read_answered_from_record():
    bus = MmioBus()
    dev = Counter()
    bus.map(0x1000, Region("ctr", 0x10, dev))
    calls = _pending_hook(bus)
    assert bus.mmio_read(0x1004, 4) == 1
    assert calls == [1]
    # The CPU re-executes the same load after stopping: same value, device not called again.
    assert bus.mmio_read(0x1004, 4) == 1
    assert dev.reads == 1
    # The record is used once; the next load is a new access.
    assert bus.mmio_read(0x1004, 4) == 2
    assert dev.reads == 2
    assert calls == [1]


def test_mmio_replay_repeated_write_not_delivered_twice():
    bus = MmioBus()
    dev = Counter()
    bus.map(0x1000, Region("ctr", 0x10, dev))
    calls = _pending_hook(bus)
    bus.mmio_write(0x1008, 4, 0x55)
    bus.mmio_write(0x1008, 4, 0x55)
    assert dev.writes == [(8, 4, 0x55)]
    assert calls == [1]
    bus.mmio_write(0x1008, 4, 0x55)
    assert dev.writes == [(8, 4, 0x55), (8, 4, 0x55)]


def test_mmio_replay_different_access_delivered():
    bus = MmioBus()
    dev = Counter()
    bus.map(0x1000, Region("ctr", 0x10, dev))
    _pending_hook(bus)
    bus.mmio_write(0x1008, 4, 0x55)
    bus.mmio_write(0x1008, 4, 0x66)  # another value
    assert dev.writes == [(8, 4, 0x55), (8, 4, 0x66)]

    _pending_hook(bus)
    assert bus.mmio_read(0x1000, 4) == 1
    assert bus.mmio_read(0x1000, 2) == 2  # another size
    _pending_hook(bus)
    assert bus.mmio_read(0x1000, 4) == 3
    bus.mmio_write(0x1000, 4, 3)  # a write to the same place is not a repeat of the read
    assert dev.writes[-1] == (0, 4, 3)
    assert bus.mmio_read(0x1000, 4) == 4


def test_mmio_without_pending_no_replay():
    bus = MmioBus()
    dev = Counter()
    bus.map(0x1000, Region("ctr", 0x10, dev))
    assert [bus.mmio_read(0x1000, 4) for _ in range(3)] == [1, 2, 3]
    bus.mmio_write(0x1000, 4, 9)
    bus.mmio_write(0x1000, 4, 9)
    assert dev.writes == [(0, 4, 9), (0, 4, 9)]
