"""``pmemsave`` and ``memsave`` (QEMU 7.2 qapi/misc.json; softmmu/cpus.c qmp_pmemsave,
qmp_memsave): save guest memory to a file.

``pmemsave`` saves physical memory. As QEMU's (``cpu_physical_memory_read``) it never fails
on an address: RAM and ROM read as their contents, everything else as zeros. emu reads no
device registers here (QEMU would dispatch the read to an MMIO device; a register read can
have side effects, and emu's device models are not written to be read from the monitor),
so a device's range reads as zeros too.

``memsave`` saves virtual memory through the CPU's current page tables (the same walk the
TLB uses, :meth:`emu.cpu.Cpu.translate`). As QEMU's ``cpu_memory_rw_debug`` it fails with
``Invalid addr 0x%016x/size %d specified`` when a page is not mapped or maps to no memory,
after writing the whole 1024-byte pieces that preceded the failing one.

Both open the file first (``Could not open 'F': <strerror>``) and answer ``An IO error has
occurred`` when a write fails; the file is written through a buffer of the file's block
size, as QEMU's stdio does, so a short save to a full device succeeds as in QEMU. A
negative ``size`` makes QEMU overrun its stack buffer (it compares a uint32 with the
int64); emu refuses it.

Both run on the machine's thread (``call_soon``): the CPU is stopped while memory is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from emu.qmp.commands import QmpError, _on_machine
from emu.qmp.qapi import Member, args, command

if TYPE_CHECKING:
    from emu.machine import Machine
    from emu.qmp.server import QmpServer

#: QEMU reads and writes in pieces of this size (the buffer on its stack)
PIECE = 1024
PAGE = 4096
U64 = (1 << 64) - 1
#: how much pmemsave reads at a time
CHUNK = 1 << 20
IO_ERROR = "An IO error has occurred"


def _open(filename: str) -> BinaryIO:
    try:
        return open(filename, "wb")
    except OSError as e:
        raise QmpError(f"Could not open '{filename}': {e.strerror}") from None


def _close(f: BinaryIO) -> None:
    """QEMU's fclose result is not checked: a failing final flush is not reported."""
    with contextlib.suppress(OSError):
        f.close()


def _write(f: BinaryIO, data: bytes) -> None:
    try:
        f.write(data)
    except OSError:
        raise QmpError(IO_ERROR) from None


def read_physical(m: Machine, addr: int, size: int) -> Iterator[bytes]:
    """``size`` bytes of guest-physical memory from ``addr`` (wrapping at 2**64), in
    pieces: RAM (read through the machine's address space) and ROM contents, zeros
    elsewhere."""
    space = m.address_space
    ram = list(space.ranges())
    roms = [(b.base, b.end, b) for b in m.roms]
    while size > 0:
        n = min(size, CHUNK, U64 + 1 - addr)
        out = bytearray(n)
        end = addr + n
        for base, length in ram:
            lo, hi = max(base, addr), min(base + length, end)
            if lo < hi:
                data = space.read(lo, hi - lo)
                assert data is not None  # inside a RAM block
                out[lo - addr : hi - addr] = data
        for base, bend, block in roms:
            lo, hi = max(base, addr), min(bend, end)
            if lo < hi:
                out[lo - addr : hi - addr] = block.view()[lo - base : hi - base]
        yield bytes(out)
        size -= n
        addr = (addr + n) & U64


def _check_size(size: int) -> None:
    if size < 0:
        raise QmpError("Parameter 'size' expects a non-negative size")


@command("pmemsave", args("pmemsave", Member("val", "int"), Member("size", "int"),
                          Member("filename", "str")))
def pmemsave(server: QmpServer, a: dict[str, Any]) -> None:
    addr, size, filename = a["val"] & U64, a["size"], a["filename"]
    _check_size(size)
    m = server.machine

    def job() -> None:
        f = _open(filename)
        try:
            for data in read_physical(m, addr, size):
                _write(f, data)
        finally:
            _close(f)

    _on_machine(server, job)


def read_virtual(m: Machine, vaddr: int, size: int,
                 pages: dict[int, int | None] | None = None) -> bytes | None:
    """``size`` bytes at guest-virtual ``vaddr`` through the CPU's page tables, or None if
    any page is unmapped or maps to no RAM or ROM (QEMU's MEMTX error). ``pages`` caches
    the walks of one stopped CPU (virtual page -> physical page)."""
    pages = {} if pages is None else pages
    out = bytearray()
    while size > 0:
        n = min(size, PAGE - vaddr % PAGE)
        page = vaddr - vaddr % PAGE
        if page not in pages:
            pages[page] = m.cpu.translate(page)
        base = pages[page]
        if base is None:
            return None
        paddr = base + vaddr % PAGE
        data = m.read_memory(paddr, n)
        if data is None:
            return None
        out += data
        vaddr = (vaddr + n) & U64
        size -= n
    return bytes(out)


@command("memsave", args("memsave", Member("val", "int"), Member("size", "int"),
                         Member("filename", "str"), Member("cpu-index", "int", True)))
def memsave(server: QmpServer, a: dict[str, Any]) -> None:
    vaddr, size, filename = a["val"] & U64, a["size"], a["filename"]
    if a.get("cpu-index", 0) != 0:  # emu emulates one CPU
        raise QmpError("Parameter 'cpu-index' expects a CPU number")
    _check_size(size)
    m = server.machine
    invalid = f"Invalid addr 0x{vaddr:016x}/size {size} specified"

    def job() -> None:
        f = _open(filename)
        try:
            addr, left = vaddr, size
            pages: dict[int, int | None] = {}
            while left:
                n = min(PIECE, left)
                data = read_virtual(m, addr, n, pages)
                if data is None:
                    raise QmpError(invalid)
                _write(f, data)
                addr, left = (addr + n) & U64, left - n
        finally:
            _close(f)

    _on_machine(server, job)


COMMANDS = [pmemsave, memsave]
