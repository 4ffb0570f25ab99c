"""The ELF core writer (spec dump.md "ELF core"; QEMU dump/dump.c, format "elf").

Layout: ELF header (e_ehsize 64, not QEMU 7.2's 8), then the program headers (PT_NOTE first,
then one PT_LOAD per guest RAM range with p_paddr = p_vaddr = guest-physical address,
p_flags 0 and p_align 0), then the notes, then guest memory. Beyond 65534 PT_LOADs the header
uses PN_XNUM with the real count in section header 0.

Memory goes from the RAM buffers to the file 1 MiB at a time (one chunk in flight), so the
dump's host memory does not grow with the guest. All-zero chunks become holes in a regular file
(sparse) and zeros on a FIFO or device. Where the dump goes and how (atomically replaced, or
written in place as QEMU does) is :mod:`emu.dump.target`'s business; on any error what the
dump created is removed and :class:`DumpError` is raised.
"""

from __future__ import annotations

import contextlib
import signal
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from emu.dump.target import DumpError, DumpTarget, open_target

ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ET_CORE = 2, 1, 1, 4
EM_X86_64, EM_AARCH64 = 62, 183
PT_LOAD, PT_NOTE = 1, 4
PN_XNUM = 0xFFFF
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
SHDR = struct.Struct("<IIQQQQIIQQ")
CHUNK = 1 << 20
_ZERO = bytes(CHUNK)


@dataclass(frozen=True)
class MemoryRange:
    """A guest-physical range to dump and the host buffer holding it."""

    paddr: int
    view: memoryview


@dataclass(frozen=True)
class Load:
    """A PT_LOAD of a paging dump: ``length`` bytes at guest-virtual ``vaddr``, mapped to
    guest-physical ``paddr`` (emu.dump.mapping)."""

    paddr: int
    vaddr: int
    length: int


__all__ = ["DumpError", "DumpTarget", "Load", "MemoryRange", "clip_ranges", "write_elf_core"]

#: progress(guest_bytes_done, guest_bytes_total): guest memory, as QEMU's query-dump counts
Progress = Callable[[int, int], None]


def clip_ranges(ranges: Iterable[tuple[int, memoryview]], begin: int | None,
                length: int | None) -> list[MemoryRange]:
    """RAM ranges, restricted to ``[begin, begin + length)`` when both are given. As QEMU
    (memory_mapping_filter), the end is computed in 64 bits and compared unsigned: with
    ``begin`` 0 a negative ``length`` reaches the top of the address space."""
    out = []
    end = None if begin is None or length is None else (begin + length) & ((1 << 64) - 1)
    for base, view in ranges:
        lo, hi = base, base + len(view)
        if begin is not None and end is not None:
            lo, hi = max(lo, begin), min(hi, end)
        if lo < hi:
            out.append(MemoryRange(lo, view[lo - base : hi - base]))
    return out


def write_elf_core(path: str | DumpTarget, machine: int, notes: bytes,
                   ranges: list[MemoryRange], progress: Progress | None = None,
                   loads: list[Load] | None = None) -> int:
    """Write the core to ``path`` (a path, or a target opened with
    :func:`emu.dump.target.open_target`); returns its size in bytes. Raises DumpError.

    The file holds ``ranges``' memory; its PT_LOADs are those ranges (p_vaddr = p_paddr),
    or with ``loads`` (a paging dump) one per mapping, pointing into that memory as QEMU's
    get_offset_range() does: p_offset where its physical start is in the file, p_filesz
    clamped to the end of that range (the rest reads as zeros), p_offset -1 and p_filesz 0
    when its start is not in the file."""
    target = open_target(path) if isinstance(path, str) else path
    with _signals_deferred():
        try:
            return _write(target, machine, notes, ranges, progress, loads)
        except BaseException:
            target.abort()
            raise


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """On the main thread (``--dump-on-exit``), SIGINT, SIGTERM and SIGHUP wait for the dump
    to finish, as QEMU finishes a dump before it exits; then they take effect: a Python
    handler runs, a default action ends the process (``SystemExit(128 + signal)``, so that
    ``finally`` blocks still clean up). Elsewhere the caller's handlers already wait for
    dumps (emu.cli)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    for sig in dict.fromkeys(caught):
        handler = previous[sig]
        if callable(handler):
            handler(sig, None)
        elif handler == signal.SIG_DFL:
            raise SystemExit(128 + sig)


def _offset_range(ranges: list[MemoryRange], mem_off: int, load: Load) -> tuple[int, int]:
    """(p_offset, p_filesz) of a paging dump's PT_LOAD (QEMU dump.c get_offset_range): where
    its physical start is in the file, and how much of it the file holds from there. The
    ranges are in the file back to back, so physically adjacent ranges (pc's RAM below 1 MiB
    and above, which emu keeps in several blocks where QEMU has one) are one run of it."""
    offset = mem_off
    for i, r in enumerate(ranges):
        size = len(r.view)
        if r.paddr <= load.paddr < r.paddr + size:
            end = r.paddr + size
            for nxt in ranges[i + 1:]:
                if nxt.paddr != end:
                    break
                end += len(nxt.view)
            return load.paddr - r.paddr + offset, min(load.length, end - load.paddr)
        offset += size
    return (1 << 64) - 1, 0


def _write(target: DumpTarget, machine: int, notes: bytes, ranges: list[MemoryRange],
           progress: Progress | None, loads: list[Load] | None) -> int:
    phnum = 1 + (len(ranges) if loads is None else len(loads))
    use_xnum = phnum >= PN_XNUM
    phoff = EHDR.size
    shoff = phoff + phnum * PHDR.size if use_xnum else 0
    note_off = phoff + phnum * PHDR.size + (SHDR.size if use_xnum else 0)
    mem_off = note_off + len(notes)
    mem_off += -mem_off % 4096  # page-aligned data makes zero pages file-system holes
    ident = b"\x7fELF" + bytes((ELFCLASS64, ELFDATA2LSB, EV_CURRENT)) + bytes(9)
    header = EHDR.pack(ident, ET_CORE, machine, EV_CURRENT, 0, phoff, shoff, 0, EHDR.size,
                       PHDR.size, PN_XNUM if use_xnum else phnum,
                       SHDR.size if use_xnum else 0, 1 if use_xnum else 0, 0)
    phdrs = [PHDR.pack(PT_NOTE, 0, note_off, 0, 0, len(notes), len(notes), 0)]
    offset = mem_off
    for r in ranges:
        if loads is None:
            phdrs.append(PHDR.pack(PT_LOAD, 0, offset, r.paddr, r.paddr, len(r.view),
                                   len(r.view), 0))
        offset += len(r.view)
    for load in loads or ():
        p_offset, filesz = _offset_range(ranges, mem_off, load)
        phdrs.append(PHDR.pack(PT_LOAD, 0, p_offset, load.vaddr, load.paddr, filesz,
                               load.length, 0))
    head = header + b"".join(phdrs)
    if use_xnum:
        head += SHDR.pack(0, 0, 0, 0, 0, 0, 0, phnum, 0, 0)
    head += notes
    guest_total = sum(len(r.view) for r in ranges)
    target.start()
    target.write(head)
    target.skip(mem_off - len(head))
    done = 0
    for r in ranges:
        view = r.view
        for pos in range(0, len(view), CHUNK):
            # memoryview comparison goes element by element (about 0.8 ms per MiB);
            # copying the chunk to bytes and comparing those is a memcmp (0.04 ms).
            chunk = view[pos : pos + CHUNK].tobytes()
            if chunk == (_ZERO if len(chunk) == CHUNK else bytes(len(chunk))):
                target.skip(len(chunk))
            else:
                target.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, guest_total)
    target.finish(offset)
    return offset
