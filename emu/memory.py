"""Guest RAM and the physical address space.

RAM is a set of :class:`RamBlock` s, each an anonymous host mapping that the board maps into
the CPU engine without a copy (``mem_map_ptr``). Pages are only backed by host memory when
first written, so a 4 GiB guest that touches little costs little.

:class:`AddressSpace` is the one path to guest memory for everything that is not the CPU:
loaders, DMA engines and dumps. Every access is bounds-checked against the RAM blocks and
failure is reported as a value (``None`` / ``False``), never as an exception or an access
outside the host buffers — a DMA engine turns it into its ERROR bit (fw_cfg spec, "DMA").
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field

from emu.errors import ConfigError

PAGE_SIZE = 4096
#: Linux's MAP_NORESERVE (the same on x86_64 and aarch64); the mmap module only names it
#: from Python 3.13, and without it a mapping larger than the host's commit limit fails
MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)


#: Bytes emu hands around without copying: a bytearray (shared, writable), bytes, or a view of
#: either, such as the part of a -kernel file that a fw_cfg item publishes.
Buffer = bytes | bytearray | memoryview


def host_buffer(size: int) -> mmap.mmap:
    """``size`` bytes of zero-filled, lazily backed anonymous host memory, with transparent
    huge pages asked for (as QEMU asks for guest RAM): fewer page faults and TLB misses when
    it is filled or copied, which for a 32 MiB kernel is several times faster.

    The mapping reserves no swap (MAP_NORESERVE), so RAM of any size is only an address
    range until the guest writes to it, whatever the host's overcommit accounting."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_NORESERVE
    buf = mmap.mmap(-1, max(size, 1), flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buf.madvise(mmap.MADV_HUGEPAGE)
    return buf


@dataclass(eq=False)
class RamBlock:
    """One contiguous range of guest RAM at guest-physical ``base``.

    ``buf`` holds exactly the block's bytes: a host mapping of its own, or (for a
    :meth:`slice`) a writable view into another block's mapping, as QEMU maps aliases of one
    RAM region at several guest addresses (pc's RAM below and above 4 GiB).
    """

    name: str
    base: int
    size: int
    buf: mmap.mmap | memoryview = field(repr=False)
    #: the host mapping behind ``buf`` and where the block starts in it
    host: mmap.mmap | None = field(default=None, repr=False)
    offset: int = 0

    def __post_init__(self) -> None:
        if self.host is None:
            assert isinstance(self.buf, mmap.mmap)
            self.host = self.buf

    @classmethod
    def allocate(cls, name: str, base: int, size: int) -> RamBlock:
        """Reserve ``size`` bytes of lazily backed, zero-filled host memory. A size the host
        cannot map is a configuration error with QEMU's message."""
        if base % PAGE_SIZE or size % PAGE_SIZE or size <= 0:
            raise ValueError(f"RAM block {name}: base and size must be page aligned")
        try:
            buf = host_buffer(size)
        except (OSError, OverflowError):
            raise ConfigError(f"cannot set up guest memory '{name}': Cannot allocate "
                              "memory") from None
        return cls(name, base, size, buf)

    def slice(self, name: str, base: int, offset: int, size: int) -> RamBlock:
        """A block at guest-physical ``base`` showing ``size`` bytes of this one from
        ``offset`` (the same host memory, no copy)."""
        if offset % PAGE_SIZE or size % PAGE_SIZE or base % PAGE_SIZE or size <= 0 \
                or offset + size > self.size:
            raise ValueError(f"RAM block {name}: slice outside {self.name} or not page aligned")
        assert self.host is not None
        start = self.offset + offset
        return RamBlock(name, base, size, memoryview(self.host)[start : start + size],
                        self.host, start)

    @property
    def end(self) -> int:
        """First guest-physical address after the block."""
        return self.base + self.size

    def host_address(self) -> int:
        """The host virtual address of the block's first byte, for ``mem_map_ptr``."""
        assert self.host is not None
        return ctypes.addressof(ctypes.c_char.from_buffer(self.host)) + self.offset

    def view(self) -> memoryview:
        """A zero-copy view of the whole block."""
        return memoryview(self.buf)

    def clear(self) -> None:
        """Zero the block and give its pages back to the host (machine reset)."""
        assert self.host is not None
        self.host.madvise(mmap.MADV_DONTNEED, self.offset, self.size)


@dataclass(eq=False)
class BusRegion:
    """Memory that is not RAM but answers a bus master (a DMA engine) as QEMU's does.

    ``data``: the bytes a read returns (a ROM's or flash's contents); None reads as zeros.
    ``accepts_writes``: a write completes without error and changes nothing here (the virt
    flash, which takes it as a command; the VGA window); otherwise a write fails, as one to
    QEMU's read-only memory (pc BIOS, option-ROM space) does.
    """

    name: str
    base: int
    size: int
    data: memoryview | None = field(default=None, repr=False)
    accepts_writes: bool = False

    @property
    def end(self) -> int:
        return self.base + self.size


_ADDR_LIMIT = 1 << 64  # bus addresses wrap here


class AddressSpace:
    """Guest-physical address space: the RAM blocks and bounds-checked access to them, and
    the other memory a DMA engine can reach (:class:`BusRegion`); everything else is
    unassigned."""

    def __init__(self) -> None:
        self._blocks: list[RamBlock] = []
        self._bases: list[int] = []
        self._regions: list[BusRegion] = []
        self._region_bases: list[int] = []

    def add(self, block: RamBlock) -> None:
        """Add a RAM block; blocks may not overlap."""
        i = bisect.bisect(self._bases, block.base)
        prev = self._blocks[i - 1] if i else None
        nxt = self._blocks[i] if i < len(self._blocks) else None
        if (prev and prev.end > block.base) or (nxt and block.end > nxt.base):
            raise ValueError(f"RAM block {block.name} overlaps another block")
        self._blocks.insert(i, block)
        self._bases.insert(i, block.base)

    def add_region(self, region: BusRegion) -> None:
        """Add memory that is not RAM (see :class:`BusRegion`); it may not overlap RAM or
        another region."""
        if not self._free(region.base, region.size):
            raise ValueError(f"{region.name} at 0x{region.base:x} overlaps guest memory")
        i = bisect.bisect(self._region_bases, region.base)
        self._regions.insert(i, region)
        self._region_bases.insert(i, region.base)

    def _free(self, base: int, size: int) -> bool:
        i = bisect.bisect(self._bases, base + size - 1) - 1
        if i >= 0 and self._blocks[i].end > base:
            return False
        j = bisect.bisect(self._region_bases, base + size - 1) - 1
        return not (j >= 0 and self._regions[j].end > base)

    def _region(self, addr: int) -> BusRegion | None:
        i = bisect.bisect(self._region_bases, addr) - 1
        if i >= 0 and addr < self._regions[i].end:
            return self._regions[i]
        return None

    def _next_start(self, addr: int) -> int:
        """The first RAM block or region that starts after ``addr`` (2^64 if none)."""
        i = bisect.bisect(self._bases, addr)
        j = bisect.bisect(self._region_bases, addr)
        return min(self._bases[i] if i < len(self._bases) else _ADDR_LIMIT,
                   self._region_bases[j] if j < len(self._region_bases) else _ADDR_LIMIT)

    def _walk(self, addr: int, size: int) -> Iterator[tuple[int, int, RamBlock | BusRegion | None]]:
        """Split ``[addr, addr+size)`` into (offset in the access, length, what answers):
        a RAM block, a region, or None (unassigned). Bus addresses are 64 bits wide: an
        access that runs past 2^64 - 1 goes on at address 0, as QEMU's does."""
        pos = 0
        while pos < size:
            a = (addr + pos) % _ADDR_LIMIT
            target = self._find(a) or self._region(a)
            end = target.end if target is not None else self._next_start(a)
            n = min(size - pos, end - a)
            yield pos, n, target
            pos += n

    @property
    def blocks(self) -> list[RamBlock]:
        """RAM blocks in address order."""
        return list(self._blocks)

    @property
    def ram_size(self) -> int:
        """Total RAM in bytes, as configured: RAM that other memory hides (pc's legacy hole)
        counts, as in QEMU's ram_size."""
        hosts = {id(b.host): b.host for b in self._blocks if b.host is not None}
        return sum(len(h) for h in hosts.values())

    def _find(self, addr: int) -> RamBlock | None:
        i = bisect.bisect(self._bases, addr) - 1
        if i >= 0:
            block = self._blocks[i]
            if addr < block.end:
                return block
        return None

    def is_ram(self, addr: int, size: int) -> bool:
        """Whether ``[addr, addr+size)`` lies entirely in RAM."""
        return self._pieces(addr, size) is not None

    def _pieces(self, addr: int, size: int) -> list[tuple[RamBlock, int, int]] | None:
        """Split an access into (block, offset, length) pieces, or None if any byte is not RAM."""
        if addr < 0 or size < 0:
            return None
        pieces = []
        while size > 0:
            block = self._find(addr)
            if block is None:
                return None
            off = addr - block.base
            n = min(size, block.size - off)
            pieces.append((block, off, n))
            addr += n
            size -= n
        return pieces

    def read(self, addr: int, size: int) -> bytes | None:
        """Read ``size`` bytes at ``addr``; ``None`` if any byte is outside RAM."""
        pieces = self._pieces(addr, size)
        if pieces is None:
            return None
        if len(pieces) == 1:
            block, off, n = pieces[0]
            return bytes(block.buf[off : off + n])  # a slice's buf is a memoryview
        return b"".join(block.buf[off : off + n] for block, off, n in pieces)

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> bool:
        """Write ``data`` at ``addr``; ``False`` (nothing written) if any byte is not RAM."""
        pieces = self._pieces(addr, len(data))
        if pieces is None:
            return False
        pos = 0
        for block, off, n in pieces:
            block.buf[off : off + n] = data[pos : pos + n]
            pos += n
        return True

    def dma_read(self, addr: int, size: int) -> tuple[bytes, bool]:
        """What a bus master reads (QEMU's dma_memory_read): RAM and ROM bytes, zeros for the
        rest, and whether every byte was answered (False: the transfer's ERROR)."""
        data = self.read(addr, size)
        if data is not None:
            return data, True
        out = bytearray(size)
        ok = True
        for pos, n, target in self._walk(addr, size):
            off = (addr + pos) % _ADDR_LIMIT - (target.base if target is not None else 0)
            if isinstance(target, RamBlock):
                out[pos : pos + n] = target.buf[off : off + n]
            elif target is None:
                ok = False
            elif target.data is not None:
                out[pos : pos + n] = target.data[off : off + n]
        return bytes(out), ok

    def write_some(self, addr: int, data: bytes | bytearray | memoryview) -> bool:
        """What a bus master writes (QEMU's dma_memory_write): the bytes that land in RAM are
        stored, the others dropped; ``True`` if every byte was accepted (RAM, or a region that
        accepts writes)."""
        if self._pieces(addr, len(data)) is not None:
            return self.write(addr, data)
        view = memoryview(data)
        ok = True
        for pos, n, target in self._walk(addr, len(view)):
            if isinstance(target, RamBlock):
                off = (addr + pos) % _ADDR_LIMIT - target.base
                target.buf[off : off + n] = view[pos : pos + n]
            elif target is None or not target.accepts_writes:
                ok = False
        return ok

    def fill(self, addr: int, size: int, byte: int = 0) -> bool:
        """Set ``size`` bytes at ``addr`` to ``byte``; ``False`` if any byte is outside RAM."""
        pieces = self._pieces(addr, size)
        if pieces is None:
            return False
        for block, off, n in pieces:
            block.buf[off : off + n] = bytes([byte]) * n
        return True

    def ranges(self) -> Iterator[tuple[int, int]]:
        """(base, size) of each RAM block, in address order."""
        for b in self._blocks:
            yield b.base, b.size
