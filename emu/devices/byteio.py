"""Byte-wide register files: QEMU's ``.impl.max_access_size = 1`` contract.

The legacy PC chips (8259, 8254, MC146818, port 0x61) decode one byte at a time. QEMU's memory
core (softmmu/memory.c ``access_with_adjusted_size``) turns a wider access into byte accesses
in ascending address order, assembled little-endian; bytes past the end of the device's region
go elsewhere (here: nothing answers them, so they read as 0xff and writes to them are dropped,
as for an unassigned port).
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
            byte = self.read_byte(offset + i) & 0xFF if offset + i < self.size else 0xFF
            value |= byte << (8 * i)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 1:
            self.write_byte(offset, value & 0xFF)
            return
        for i in range(size):
            if offset + i < self.size:
                self.write_byte(offset + i, (value >> (8 * i)) & 0xFF)


def byte_region(name: str, size: int, read_byte: Callable[[int], int],
                write_byte: Callable[[int, int], None]) -> Region:
    """A :class:`~emu.bus.Region` of ``size`` ports decoded a byte at a time."""
    return Region(name, size, ByteRegion(size, read_byte, write_byte))
