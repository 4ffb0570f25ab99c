"""Byte-wide register files: QEMU's ``.impl.max_access_size = 1`` contract.

The legacy PC chips (8259, 8254, MC146818, port 0x61) decode one byte at a time. QEMU's memory
core (softmmu/memory.c ``access_with_adjusted_size``) turns a wider access into byte accesses
in ascending address order, assembled little-endian. It hands the whole access to the region
its first byte falls in (``flatview_read_continue`` limits an I/O access by its alignment
within the region, never by the region's end), so bytes past the end reach the device too, at
offsets beyond its size, and the device decodes them as it decodes any offset: ``inl 0x70``
reads the RTC's index port, data port, index port, data port.
"""

from __future__ import annotations

from collections.abc import Callable

from emu.bus import Region


class ByteRegion:
    """Region ops that hand ``read_byte(offset)`` / ``write_byte(offset, value)`` one byte
    at a time."""

    __slots__ = ("read_byte", "size", "write_byte")

    def __init__(self, size: int, read_byte: Callable[[int], int],
                 write_byte: Callable[[int, int], None]) -> None:
        self.size = size
        self.read_byte = read_byte
        self.write_byte = write_byte

    def read(self, offset: int, size: int) -> int:
        if size == 1:
            return self.read_byte(offset) & 0xFF
        value = 0
        for i in range(size):
            value |= (self.read_byte(offset + i) & 0xFF) << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 1:
            self.write_byte(offset, value & 0xFF)
            return
        for i in range(size):
            self.write_byte(offset + i, (value >> (8 * i)) & 0xFF)


def byte_region(name: str, size: int, read_byte: Callable[[int], int],
                write_byte: Callable[[int, int], None]) -> Region:
    """A :class:`~emu.bus.Region` of ``size`` ports decoded a byte at a time."""
    return Region(name, size, ByteRegion(size, read_byte, write_byte))
