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


class AddressSpace:
    """Guest-physical address space: the RAM blocks and bounds-checked access to them."""

    def __init__(self) -> None:
        self._blocks: list[RamBlock] = []
        self._bases: list[int] = []

    def add(self, block: RamBlock) -> None:
        """Add a RAM block; blocks may not overlap."""
        i = bisect.bisect(self._bases, block.base)
        prev = self._blocks[i - 1] if i else None
        nxt = self._blocks[i] if i < len(self._blocks) else None
        if (prev and prev.end > block.base) or (nxt and block.end > nxt.base):
            raise ValueError(f"RAM block {block.name} overlaps another block")
        self._blocks.insert(i, block)
        self._bases.insert(i, block.base)

    @property
    def blocks(self) -> list[RamBlock]:
        """RAM blocks in address order."""
        return list(self._blocks)

    @property
    def ram_size(self) -> int:
        """Total RAM in bytes."""
        return sum(b.size for b in self._blocks)

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
            return block.buf[off : off + n]
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

    def write_some(self, addr: int, data: bytes | bytearray | memoryview) -> bool:
        """Write the bytes of ``data`` that land in RAM, skip the others (as a DMA engine's
        bus writes do); ``True`` only if every byte was RAM."""
        if self._pieces(addr, len(data)) is not None:
            return self.write(addr, data)
        view = memoryview(data)
        pos = 0
        while pos < len(view):
            block = self._find(addr + pos)
            if block is None:
                nxt = self._next_base(addr + pos)
                if nxt is None or nxt >= addr + len(view):
                    break
                pos = nxt - addr
                continue
            off = addr + pos - block.base
            n = min(len(view) - pos, block.size - off)
            block.buf[off : off + n] = view[pos : pos + n]
            pos += n
        return False

    def _next_base(self, addr: int) -> int | None:
        i = bisect.bisect(self._bases, addr)
        return self._bases[i] if i < len(self._bases) else None

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
