"""``emu dump-info`` for kdump-compressed dumps (makedumpfile diskdump_mod.h; the files
emu's kdump-* and kdump-raw-* formats and QEMU's kdump-* write, and makedumpfile's own): the
plain file, and makedumpfile's flattened stream, read through its records without
reassembling it.

Read defensively, as emu.dump.info reads ELF cores: each offset and size is checked against
the file before it is used, and each problem is one line.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Callable
from typing import BinaryIO

from emu.dump.codecs import CODECS

#: makedumpfile's header in front of the records of a flattened dump
FLAT_HEADER_SIZE = 4096
MAX_BLOCK_SIZE = 1 << 20
UTS_FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")
SUB_HEADER = ("phys_base", "dump_level", "split", "start_pfn", "end_pfn", "offset_vmcoreinfo",
              "size_vmcoreinfo", "offset_note", "note_size", "offset_eraseinfo",
              "size_eraseinfo", "start_pfn_64", "end_pfn_64", "max_mapnr_64")
#: utsname machine -> the ELF machine name emu.dump.info's note decoder knows
MACHINES = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64", "i686": "EM_386",
            "arm": "EM_ARM"}


class Unreadable(Exception):
    """Not readable as a kdump-compressed dump; the message is one line."""


class KdumpReader:
    """Random access to a kdump file's bytes: the plain file itself, or the records of a
    flattened one (bytes no record gives read as zeros, as in the reassembled file)."""

    def __init__(self, f: BinaryIO, problems: list[str]) -> None:
        self.f = f
        self.file_size = os.fstat(f.fileno()).st_size
        f.seek(0)
        head = f.read(FLAT_HEADER_SIZE)
        self.flattened = head.startswith(b"makedumpfile\0")
        self.records: list[tuple[int, int, int]] = []  # (offset, size, position in the file)
        if self.flattened:
            self._scan(problems)
            self.size = max((o + s for o, s, _ in self.records), default=0)
        else:
            self.size = self.file_size

    def _scan(self, problems: list[str]) -> None:
        pos = FLAT_HEADER_SIZE
        self.f.seek(pos)
        while True:
            raw = self.f.read(16)
            if len(raw) < 16:
                problems.append("the flattened stream ends without its end marker (-1, -1): "
                                "truncated")
                break
            offset, size = struct.unpack(">qq", raw)
            if offset == -1 and size == -1:
                break
            if offset < 0 or size < 0 or pos + 16 + size > self.file_size:
                problems.append(f"flattened record at 0x{pos:x} (offset {offset}, size "
                                f"{size}) runs past the end of the file: the rest is not read")
                break
            self.records.append((offset, size, pos + 16))
            pos += 16 + size
            self.f.seek(pos)
        self.records.sort()
        self._starts = [o for o, _, _ in self.records]

    def read(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` of the (reassembled) file; short past its end."""
        size = max(0, min(size, self.size - offset))
        if size == 0 or offset < 0:
            return b""
        if not self.flattened:
            self.f.seek(offset)
            return self.f.read(size)
        out = bytearray(size)
        i = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        while i < len(self.records) and self.records[i][0] < offset + size:
            rec_off, rec_size, pos = self.records[i]
            lo, hi = max(offset, rec_off), min(offset + size, rec_off + rec_size)
            if lo < hi:
                self.f.seek(pos + lo - rec_off)
                out[lo - offset : hi - offset] = self.f.read(hi - lo)
            i += 1
        return bytes(out)


def is_kdump(head: bytes) -> bool:
    return head.startswith((b"KDUMP   ", b"makedumpfile\0"))


def describe_kdump(f: BinaryIO, path: str, lines: list[str], problems: list[str],
                   describe_notes: Callable[[str, bytes], str]) -> None:
    """Append the description of the kdump file ``f`` to ``lines``; ``describe_notes(
    elf_machine, notes)`` describes its ELF notes and returns its VMCOREINFO text."""
    r = KdumpReader(f, problems)
    head = r.read(0, 464)
    if len(head) < 464 or head[:8] != b"KDUMP   ":
        raise Unreadable("a makedumpfile flattened stream without a kdump header at offset 0"
                         if r.flattened else "truncated kdump header")
    version = struct.unpack_from("<I", head, 8)[0]
    uts = {name: head[12 + i * 65 : 12 + (i + 1) * 65].split(b"\0")[0].decode(
        "ascii", "backslashreplace") for i, name in enumerate(UTS_FIELDS)}
    tv_sec = struct.unpack_from("<Q", head, 408)[0]
    status, bs, sub_blocks, bitmap_blocks, max_mapnr = struct.unpack_from("<5I", head, 424)
    nr_cpus = struct.unpack_from("<I", head, 460)[0]
    compression = [c.name for c in CODECS.values() if status & c.flag] or ["none"]
    form = "flattened (makedumpfile -R reassembles it)" if r.flattened else "plain"
    lines.append(f"{path}: kdump-compressed dump, {form}, header version {version}, "
                 f"{'+'.join(compression)}, block size {bs}, {nr_cpus} CPU(s)")
    lines.append("utsname: " + ", ".join(f"{k} '{v}'" for k, v in uts.items() if v))
    if tv_sec:
        lines.append(f"timestamp: {tv_sec} (seconds since 1970)")
    if bs < 512 or bs > MAX_BLOCK_SIZE or bs & (bs - 1):
        raise Unreadable(f"block size {bs} is not a power of two from 512 to 1 MiB")
    sub = dict(zip(SUB_HEADER, struct.unpack("<QIIQQQQQQQQQQQ", r.read(bs, 104).ljust(104,
                                                                                        b"\0")),
                   strict=True))
    if version >= 6 and sub["max_mapnr_64"]:
        max_mapnr = sub["max_mapnr_64"]
    lines.append(f"sub-header: phys_base 0x{sub['phys_base']:x}, dump_level "
                 f"{sub['dump_level']}, max_mapnr {max_mapnr}")
    notes = b""
    if sub["note_size"]:
        if sub["offset_note"] + sub["note_size"] > r.size or sub["note_size"] > 64 << 20:
            problems.append(f"the notes ({sub['note_size']} bytes at 0x{sub['offset_note']:x})"
                            f" are not in the file ({r.size} bytes)")
        else:
            notes = r.read(sub["offset_note"], sub["note_size"])
    lines.append("notes:")
    vmcoreinfo = describe_notes(MACHINES.get(uts["machine"], uts["machine"]), notes)
    if sub["size_vmcoreinfo"]:
        text = r.read(sub["offset_vmcoreinfo"], min(sub["size_vmcoreinfo"], 1 << 20))
        if vmcoreinfo and text.decode(errors="replace") != vmcoreinfo:
            problems.append("the sub-header's VMCOREINFO (offset_vmcoreinfo) is not the "
                            "VMCOREINFO note's text")
    _memory(r, bs, sub_blocks, bitmap_blocks, max_mapnr, lines, problems)


def _memory(r: KdumpReader, bs: int, sub_blocks: int, bitmap_blocks: int, max_mapnr: int,
            lines: list[str], problems: list[str]) -> None:
    """The dumped ranges from the first bitmap, and what the page descriptors say."""
    bitmap_off = (1 + sub_blocks) * bs
    half = bitmap_blocks * bs // 2
    if bitmap_off + 2 * half > r.size or half > 1 << 32:
        problems.append(f"the bitmaps ({bitmap_blocks} blocks at 0x{bitmap_off:x}) are not "
                        "in the file: no memory shown")
        return
    bitmap = r.read(bitmap_off, half)
    ranges: list[list[int]] = []
    count = 0
    for i, byte in enumerate(bitmap):
        if not byte:
            continue
        for bit in range(8):
            if byte >> bit & 1:
                pfn = i * 8 + bit
                count += 1
                if ranges and ranges[-1][1] == pfn:
                    ranges[-1][1] = pfn + 1
                else:
                    ranges.append([pfn, pfn + 1])
    if r.read(bitmap_off + half, half) != bitmap:
        problems.append("the two bitmaps differ (a filtered dump): the first one is shown")
    lines.append("memory:")
    for lo, hi in ranges:
        lines.append(f"  0x{lo * bs:016x}-0x{hi * bs - 1:016x}  {hi - lo} pages")
    lines.append(f"  {count} pages ({(count * bs) >> 20} MiB) in {len(ranges)} ranges, "
                 f"max_mapnr {max_mapnr}")
    desc_off = bitmap_off + 2 * half
    stats = {"zero": 0, "raw": 0, "compressed": 0}
    zero_offset = desc_off + count * 24  # the first page of the data: QEMU's and makedumpfile's
    for start in range(0, count, 4096):
        n = min(4096, count - start)
        raw = r.read(desc_off + start * 24, n * 24)
        if len(raw) < n * 24:
            problems.append(f"the page descriptors end after {start + len(raw) // 24} of "
                            f"{count}: truncated")
            break
        for off, size, flags, _pf in struct.iter_unpack("<QIIQ", raw):
            if off == zero_offset and size == bs and flags == 0:
                stats["zero"] += 1
            elif flags:
                stats["compressed"] += 1
            else:
                stats["raw"] += 1
            if off + size > r.size:
                problems.append(f"a page's data (0x{size:x} bytes at 0x{off:x}) is past the "
                                f"end of the file ({r.size} bytes): truncated")
                return
    lines.append(f"pages: {stats['compressed']} compressed, {stats['raw']} stored raw, "
                 f"{stats['zero']} sharing the zero page")
