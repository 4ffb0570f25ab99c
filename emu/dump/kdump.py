"""The kdump-compressed writer (spec dump.md "kdump-compressed"; QEMU dump/dump.c
create_kdump_vmcore(), include/sysemu/dump.h; makedumpfile diskdump_mod.h, makedumpfile.h).

Layout, in blocks of the guest's page size (4096), as QEMU writes it:

- block 0: ``disk_dump_header`` (``"KDUMP   "``, header_version 6, utsname, timestamp,
  status = the compression's flag, block_size, sub_hdr_size, bitmap_blocks, max_mapnr,
  nr_cpus);
- block 1: ``kdump_sub_header`` (phys_base, dump_level 1, offset/size of the VMCOREINFO text,
  offset/size of the notes, max_mapnr_64), then the notes, exactly the ELF dump's;
- two identical bitmaps with one bit per page frame up to max_mapnr (the last RAM page),
  set for every page dumped (all of RAM, zero pages included);
- one 24-byte page descriptor ``{offset, size, flags, page_flags}`` per dumped page, in
  page-frame order, then the page data: first one zero page that every all-zero page shares,
  then each page compressed on its own, or raw (flags 0, size = block_size) when compression
  does not make it smaller.

Where emu differs from QEMU 7.2, on purpose:

- the utsname is the kernel's own (``init_uts_ns``, found through VMCOREINFO, as
  makedumpfile writes it), or else sysname ``Linux``, release the guest's VMCOREINFO
  ``OSRELEASE`` (when it has one), version ``unknown`` and machine ``x86_64``/``aarch64``:
  QEMU fills in only the machine, and libkdumpfile (drgn) refuses a dump whose sysname is
  not ``Linux`` or whose release, version or machine is empty;
- the timestamp is the time of the dump (QEMU leaves it 0);
- ``kdump-zstd`` (makedumpfile's ``DUMP_DH_COMPRESSED_ZSTD``), which QEMU does not have.

Two forms: the ``kdump-*`` formats are makedumpfile's *flattened* stream, as QEMU 7.2 always
writes them (a 4096-byte ``makedumpfile`` header, then ``{BE64 offset, BE64 size, data}``
records, ending with ``{-1, -1}``; ``makedumpfile -R`` turns it into the plain file), which
goes to pipes and FIFOs too; the ``kdump-raw-*`` formats (QEMU 8.2's names) are the plain
random-access file itself, which needs a seekable target.

Pages are compressed in chunks by a thread pool (the compressors release the GIL) and written
in order as they complete; at most a few chunks are in flight, so host memory stays bounded
whatever the guest's size.
"""

from __future__ import annotations

import os
import struct
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from emu.dump.codecs import CODECS, Codec, keep_freed_memory
from emu.dump.elf import MemoryRange, Progress, _signals_deferred
from emu.dump.target import DumpError, DumpTarget, open_target

KDUMP_SIGNATURE = b"KDUMP   "
HEADER_VERSION = 6
DUMP_LEVEL = 1
DISKDUMP_HEADER_BLOCKS = 1
PAGE_SIZE = 4096
#: the page sizes a VMCOREINFO PAGESIZE may set (4, 16 and 64 KiB granules)
PAGE_SIZES = (4096, 16384, 65536)
MAKEDUMPFILE_SIGNATURE = b"makedumpfile"
MAX_SIZE_MDF_HEADER = 4096
TYPE_FLAT_HEADER = 1
VERSION_FLAT_HEADER = 1
END_FLAG_FLAT_HEADER = -1

#: DiskDumpHeader64 (QEMU_PACKED; the 22-byte timestamp holds makedumpfile's 8-aligned
#: struct timeval: 6 bytes of padding, tv_sec, tv_usec)
DISK_DUMP_HEADER = struct.Struct("<8sI390s6sQQIIIIIIIIII")
KDUMP_SUB_HEADER = struct.Struct("<QIIQQQQQQQQQQQ")
PAGE_DESCRIPTOR = struct.Struct("<QIIQ")
FLAT_RECORD = struct.Struct(">qq")
UTS_FIELD = 65

#: guest memory per chunk handed to a compressing thread
CHUNK_BYTES = 1 << 20
#: chunks being compressed or waiting to be written, per thread
IN_FLIGHT_PER_WORKER = 3
#: page descriptors are written in pieces of about this size (a chunk's are 6 KiB: one
#: system call each cost more than the zero test of its MiB of guest memory)
DESCRIPTOR_BATCH = 256 << 10

KDUMP_FORMATS = {f"kdump-{name}": (name, True) for name in CODECS} | {
    f"kdump-raw-{name}": (name, False) for name in CODECS}


def kdump_format(fmt: str) -> tuple[Codec, bool] | None:
    """The codec and whether the form is flattened, for a kdump format name; None for
    any other format."""
    entry = KDUMP_FORMATS.get(fmt)
    return None if entry is None else (CODECS[entry[0]], entry[1])


def check_kdump_target(target: DumpTarget, flattened: bool) -> None:
    """The plain form is written at offsets: refuse a target that cannot seek (QEMU 8.2's
    text)."""
    if flattened:
        return
    try:
        os.lseek(target.fd, 0, os.SEEK_CUR)
    except OSError:
        raise DumpError("kdump-raw formats require a seekable file") from None


@dataclass(frozen=True)
class KdumpInfo:
    """What the headers say about the guest."""

    machine: str  # utsname machine: "x86_64" or "aarch64"
    release: str  # OSRELEASE from VMCOREINFO, or ""
    phys_base: int
    page_size: int = PAGE_SIZE
    nr_cpus: int = 1
    #: the kernel's own struct new_utsname (390 bytes), when it could be read
    uts: bytes | None = None


def utsname(info: KdumpInfo) -> bytes:
    """struct new_utsname: sysname, nodename, release, version, machine, domainname. The
    kernel's own when it was found; else "Linux", the release, "unknown" for the version
    (libkdumpfile wants none empty) and the machine."""
    if info.uts is not None and len(info.uts) == 6 * UTS_FIELD:
        return info.uts
    fields = ("Linux", "", info.release, "unknown", info.machine, "")
    return b"".join(f.encode()[: UTS_FIELD - 1].ljust(UTS_FIELD, b"\0") for f in fields)


def vmcoreinfo_location(notes: bytes) -> tuple[int, int] | None:
    """(offset in ``notes``, size) of the VMCOREINFO note's text, if there is one."""
    offset = 0
    while offset + 12 <= len(notes):
        namesz, descsz, _ = struct.unpack_from("<III", notes, offset)
        name_end = offset + 12 + namesz
        desc = offset + 12 + (namesz + 3) // 4 * 4
        if notes[offset + 12 : name_end].rstrip(b"\0") == b"VMCOREINFO":
            return desc, descsz
        offset = desc + (descsz + 3) // 4 * 4
    return None


def vmcoreinfo_value(notes: bytes, key: str) -> str | None:
    """The value of ``KEY=`` in the notes' VMCOREINFO text (None when absent)."""
    where = vmcoreinfo_location(notes)
    if where is None:
        return None
    prefix = key.encode() + b"="
    for line in notes[where[0] : where[0] + where[1]].split(b"\n"):
        if line.startswith(prefix):
            return line[len(prefix):].decode("ascii", "replace")
    return None


def vmcoreinfo_page_size(notes: bytes) -> int:
    """The guest's page size: VMCOREINFO's PAGESIZE when it is one of PAGE_SIZES, else
    4096. (QEMU 7.2 uses 64 KiB on aarch64 whatever the guest's pages, so that its block
    size disagrees with a 4 KiB-page kernel's PAGESIZE, which libkdumpfile prefers.)"""
    value = vmcoreinfo_value(notes, "PAGESIZE")
    return int(value) if value is not None and value.isdigit() and \
        int(value) in PAGE_SIZES else PAGE_SIZE


class _Sink:
    """Where the kdump file's bytes go: at offsets of a seekable file (the plain form), or
    as records of makedumpfile's flattened stream."""

    def __init__(self, target: DumpTarget, flattened: bool) -> None:
        self.target = target
        self.flattened = flattened
        self.base = 0 if flattened else os.lseek(target.fd, 0, os.SEEK_CUR)
        self.streamed = 0  # bytes of the flattened stream so far

    def begin(self) -> None:
        if self.flattened:
            head = MAKEDUMPFILE_SIGNATURE.ljust(16, b"\0") + struct.pack(
                ">qq", TYPE_FLAT_HEADER, VERSION_FLAT_HEADER)
            self.target.write(head.ljust(MAX_SIZE_MDF_HEADER, b"\0"))
            self.streamed = MAX_SIZE_MDF_HEADER

    def put(self, offset: int, *pieces: bytes) -> None:
        """Write ``pieces`` one after the other at ``offset`` (one system call for all)."""
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if not data:
            return
        if self.flattened:
            self.target.write(FLAT_RECORD.pack(offset, len(data)) + data)
            self.streamed += FLAT_RECORD.size + len(data)
            return
        pos = self.base + offset
        try:
            view = memoryview(data)
            while view:
                n = os.pwrite(self.target.fd, view, pos)
                view, pos = view[n:], pos + n
        except OSError as e:
            raise DumpError(f"could not write '{self.target.path}': {e.strerror or e}") \
                from None

    def end(self, size: int) -> int:
        """Close the stream; the number of bytes in the file."""
        if self.flattened:
            self.target.write(FLAT_RECORD.pack(END_FLAG_FLAT_HEADER, END_FLAG_FLAT_HEADER))
            return self.streamed + FLAT_RECORD.size
        return self.base + size


@dataclass(frozen=True)
class _Span:
    """Up to CHUNK_BYTES of whole pages from one range: what a thread compresses."""

    pfn: int
    pages: int
    range: MemoryRange
    page_size: int

    def view(self) -> memoryview:
        """The part of the range's memory the pages cover (not copied)."""
        r = self.range
        lo, hi = r.paddr, r.paddr + len(r.view)
        a, b = self.pfn * self.page_size, (self.pfn + self.pages) * self.page_size
        return r.view[max(a, lo) - lo : min(b, hi) - lo]

    def data(self) -> bytes:
        """The pages' bytes; a range that does not start or end on a page boundary is
        padded with zeros."""
        r = self.range
        lo, hi = r.paddr, r.paddr + len(r.view)
        a, b = self.pfn * self.page_size, (self.pfn + self.pages) * self.page_size
        data = self.view().tobytes()
        if a < lo or b > hi:
            data = bytes(max(lo - a, 0)) + data + bytes(max(b - hi, 0))
        return data


def _div_up(n: int, d: int) -> int:
    return -(-n // d)


def _set_bits(bitmap: bytearray, first: int, count: int) -> None:
    """Set bits ``first`` to ``first + count - 1`` (bit n is bit n % 8 of byte n // 8):
    whole bytes at once, the partial bytes at either end bit by bit."""
    end = first + count
    while first < end and first & 7:
        bitmap[first >> 3] |= 1 << (first & 7)
        first += 1
    whole = (end - first) >> 3
    bitmap[first >> 3 : (first >> 3) + whole] = b"\xff" * whole
    first += whole << 3
    while first < end:
        bitmap[first >> 3] |= 1 << (first & 7)
        first += 1


def _spans(ranges: list[MemoryRange], page_size: int) -> list[_Span]:
    """The dumped pages in address order, in chunks; a page already given by an earlier
    range is not given again."""
    out = []
    next_pfn = 0
    step = max(CHUNK_BYTES // page_size, 1)
    for r in ranges:
        lo, hi = r.paddr, r.paddr + len(r.view)
        first, last = max(lo // page_size, next_pfn), _div_up(hi, page_size)
        for pfn in range(first, last, step):
            out.append(_Span(pfn, min(pfn + step, last) - pfn, r, page_size))
        next_pfn = max(next_pfn, last)
    return out


#: (page size stored, descriptor flags) for each page of a chunk: size 0 is the zero page
Compressed = tuple[list[tuple[int, int]] | None, list[bytes]]
_ZERO_CHUNK = bytes(CHUNK_BYTES)


def _compress_chunk(codec: Codec, span: _Span) -> Compressed:
    """Compress each page of ``span`` as QEMU's write_dump_pages() does; (None, []) when
    all of it is zero (tested in place: bytes.startswith compares without a copy, and most
    of a guest's memory is usually zero)."""
    view = span.view()
    if len(view) <= CHUNK_BYTES and _ZERO_CHUNK.startswith(view):
        return None, []
    data = span.data()
    if len(data) > CHUNK_BYTES and data == bytes(len(data)):
        return None, []
    size = span.page_size
    zero = _ZERO_CHUNK[:size] if size <= CHUNK_BYTES else bytes(size)
    is_zero, compress, flag = zero.startswith, codec.compress, codec.flag
    entries: list[tuple[int, int]] = []
    pieces: list[bytes] = []
    view = memoryview(data)
    for pos in range(0, len(data), size):
        page = view[pos : pos + size]  # (no copy: the compressors take buffers)
        if is_zero(page):
            entries.append((0, 0))
            continue
        packed = compress(page)
        if len(packed) < size:
            entries.append((len(packed), flag))
            pieces.append(packed)
        else:
            entries.append((size, 0))
            pieces.append(bytes(page))
    return entries, pieces


def write_kdump(path: str | DumpTarget, codec: Codec, flattened: bool, info: KdumpInfo,
                notes: bytes, ranges: list[MemoryRange], progress: Progress | None = None,
                workers: int | None = None) -> int:
    """Write the kdump-compressed dump to ``path`` (or an opened target); returns the
    number of bytes written. Raises DumpError; what the dump created is removed then."""
    target = open_target(path) if isinstance(path, str) else path
    with _signals_deferred():
        try:
            check_kdump_target(target, flattened)
            return _write(target, codec, flattened, info, notes, ranges, progress,
                          workers or min(4, os.cpu_count() or 1))
        except BaseException:
            target.abort()
            raise


def _write(target: DumpTarget, codec: Codec, flattened: bool, info: KdumpInfo, notes: bytes,
           ranges: list[MemoryRange], progress: Progress | None, workers: int) -> int:
    keep_freed_memory()
    block = info.page_size
    spans = _spans(ranges, block)
    num_dumpable = sum(s.pages for s in spans)
    # as QEMU's get_max_mapnr: the page frame after the last RAM block's end
    max_mapnr = _div_up(max(r.paddr + len(r.view) for r in ranges), block)
    len_bitmap = _div_up(_div_up(max_mapnr, 8), block) * block
    bitmap_blocks = 2 * len_bitmap // block
    sub_hdr_size = _div_up(KDUMP_SUB_HEADER.size + len(notes), block)
    offset_note = DISKDUMP_HEADER_BLOCKS * block + KDUMP_SUB_HEADER.size
    offset_bitmap = (DISKDUMP_HEADER_BLOCKS + sub_hdr_size) * block
    offset_page = offset_bitmap + bitmap_blocks * block
    offset_data = offset_page + PAGE_DESCRIPTOR.size * num_dumpable

    header = DISK_DUMP_HEADER.pack(
        KDUMP_SIGNATURE, HEADER_VERSION, utsname(info), bytes(6), int(time.time()), 0,
        codec.flag, block, sub_hdr_size, bitmap_blocks, min(max_mapnr, 0xFFFFFFFF),
        0, 0, 0, 0, info.nr_cpus)
    vmcoreinfo = vmcoreinfo_location(notes)
    offset_vmcoreinfo, size_vmcoreinfo = (0, 0) if vmcoreinfo is None else (
        offset_note + vmcoreinfo[0], vmcoreinfo[1])
    sub_header = KDUMP_SUB_HEADER.pack(
        info.phys_base, DUMP_LEVEL, 0, 0, 0, offset_vmcoreinfo, size_vmcoreinfo,
        offset_note, len(notes), 0, 0, 0, 0, max_mapnr)
    bitmap = bytearray(len_bitmap)
    for span in spans:
        _set_bits(bitmap, span.pfn, span.pages)

    sink = _Sink(target, flattened)
    target.start()
    sink.begin()
    sink.put(0, header)
    sink.put(DISKDUMP_HEADER_BLOCKS * block, sub_header, notes)
    sink.put(offset_bitmap, bytes(bitmap))
    sink.put(offset_bitmap + len_bitmap, bytes(bitmap))
    zero_desc = PAGE_DESCRIPTOR.pack(offset_data, block, 0, 0)
    sink.put(offset_data, bytes(block))
    data_pos = offset_data + block
    desc_pos = offset_page
    total = num_dumpable * block
    done = 0

    descs_pending = bytearray()  # page descriptors not yet written (written in batches)
    pending: deque[Future[Compressed]] = deque()
    queue = iter(spans)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emu-kdump") as pool:
        def fill() -> None:
            while len(pending) < workers * IN_FLIGHT_PER_WORKER:
                span = next(queue, None)
                if span is None:
                    return
                pending.append(pool.submit(_compress_chunk, codec, span))

        try:
            fill()
            for span in spans:
                n = span.pages
                entries, pieces = pending.popleft().result()
                fill()
                if entries is None:
                    descs = zero_desc * n
                else:
                    packed = []
                    pos = data_pos
                    for size, flags in entries:
                        if size == 0:
                            packed.append(zero_desc)
                        else:
                            packed.append(PAGE_DESCRIPTOR.pack(pos, size, flags, 0))
                            pos += size
                    descs = b"".join(packed)
                    sink.put(data_pos, *pieces)
                    data_pos = pos
                descs_pending += descs
                if len(descs_pending) >= DESCRIPTOR_BATCH:
                    sink.put(desc_pos, bytes(descs_pending))
                    desc_pos += len(descs_pending)
                    descs_pending.clear()
                done += n * block
                if progress is not None:
                    progress(done, total)
        finally:
            for fut in pending:
                fut.cancel()
    sink.put(desc_pos, bytes(descs_pending))
    size = sink.end(data_pos)
    target.finish(data_pos if not flattened else size)
    return size
