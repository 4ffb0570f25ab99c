"""ELF kernel files (read with pyelftools): segments to load, entry point, notes.

Every problem with the file is a :class:`~emu.errors.ConfigError` with one line naming the
file, so ``-kernel`` mistakes never become tracebacks.

A kernel of the kind emu boots (a little-endian ELF64 executable for a machine emu knows,
well-formed program headers and notes) is read with ``struct`` from the few header fields
that matter (:func:`_parse_plain`); importing pyelftools took about a quarter of emu's
start-up. Any other file goes to pyelftools, which gives the same result for the files the
plain reader accepts (a test compares them) and its own words for what is wrong with the
others.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from emu.config import MiB
from emu.errors import ConfigError
from emu.memory import Buffer, host_buffer

EM_NAMES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64", "EM_386": "i386",
            "EM_ARM": "arm"}


@dataclass
class Segment:
    """One PT_LOAD segment: file bytes to place at ``paddr``, zero-filled up to ``memsz``."""

    paddr: int
    data: memoryview  # a view of the file's bytes
    memsz: int
    offset: int = 0  # where ``data`` starts in the file
    index: int = 0  # its program header's number


@dataclass
class KernelImage:
    """What a boot protocol needs from an ELF kernel."""

    path: str
    arch: str
    entry: int
    segments: list[Segment]
    #: the whole file (boards hand it to fw_cfg without copying it)
    raw: memoryview
    #: (name, type) -> descriptor bytes of each note in PT_NOTE segments; the type is as
    #: pyelftools gives it (a number, or a name for the notes it knows)
    notes: dict[tuple[str, int | str], bytes] = field(default_factory=dict)


class FileReadError(Exception):
    """Why a file could not be read (one line, without the file's name)."""

    def describe(self) -> str:
        """The reason as emu's messages give it after the option and file name."""
        return str(self)


class FileOpenError(FileReadError):
    """The system refused to open or read it: the message is its strerror."""

    def describe(self) -> str:
        return f"could not open: {self}"


class FileTooLarge(FileReadError):
    """A file over the limit: ``size`` is its size, None for a pipe (which gave more)."""

    def __init__(self, limit: int, size: int | None) -> None:
        more = f"{size} bytes" if size is not None else "read from a pipe"
        super().__init__(f"larger than {size_text(limit)} ({more})")
        self.limit = limit
        self.size = size


def read_bounded(path: str, max_size: int | None = None, *,
                 stream_max: int | None = None) -> memoryview:
    """The contents of ``path``, read once into anonymous host memory (not mapped from the
    file: a file changed under a mapping could crash emu), as a view that later slices share.

    A regular file is read whole, unless it is larger than ``max_size``. A file whose size is
    not known in advance (a pipe, a socket, a /proc file) is read as it comes, but never more
    than ``max_size`` or ``stream_max`` bytes: ``-kernel /dev/stdin`` fed by ``cat`` works,
    an endless pipe ends in an error instead of filling the host's memory. Device files
    (``/dev/zero``, a terminal, a disk) are refused: they have no end or no size to trust.
    Raises :class:`FileReadError`.
    """
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode) and st.st_size > 0:
                if max_size is not None and st.st_size > max_size:
                    raise FileTooLarge(max_size, st.st_size)
                return _read_into(f, host_buffer(st.st_size), st.st_size)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISFIFO(st.st_mode)
                    or stat.S_ISSOCK(st.st_mode)):
                raise FileReadError("not a regular file or a pipe")
            limits = [n for n in (max_size, stream_max) if n is not None]
            if not limits:
                return memoryview(f.read())
            limit = min(limits)
            data = _read_into(f, host_buffer(limit + 1), limit + 1)
            if len(data) > limit:
                raise FileTooLarge(limit, None)
            return data
    except OSError as e:
        raise FileOpenError(e.strerror or str(e)) from None


def _read_into(f: BinaryIO, buf: Buffer, size: int) -> memoryview:
    """Read up to ``size`` bytes of ``f`` into ``buf``; a view of what arrived."""
    view = memoryview(buf)
    got = 0
    while got < size:
        more = f.readinto(view[got:size])
        if not more:
            break
        got += more
    return view[:got]


def size_text(size: int) -> str:
    """``size`` for a message: ``128 MiB`` when it is a whole number of MiB, else bytes."""
    if size and size % MiB == 0:
        return f"{size // MiB} MiB"
    return f"{size} bytes"


def read_file(path: str, option: str, max_size: int | None = None, *,
              stream_max: int | None = None) -> memoryview:
    """:func:`read_bounded`, its errors as one-line ConfigErrors naming the option and file."""
    try:
        return read_bounded(path, max_size, stream_max=stream_max)
    except FileReadError as e:
        raise ConfigError(f"{option} {path}: {e.describe()}") from None


def read_kernel(path: str, ram_size: int, option: str = "-kernel") -> memoryview:
    """A file to load into guest RAM (``-kernel``, ``-initrd``). A regular file may be of any
    size (an ELF kernel's debug sections need not fit in RAM; the board checks what it
    loads); a pipe may not give more than the guest's RAM holds."""
    try:
        return read_bounded(path, stream_max=ram_size)
    except FileTooLarge:
        raise ConfigError(f"{option} {path}: a pipe giving more than the guest's "
                          f"{size_text(ram_size)} of RAM") from None
    except FileReadError as e:
        raise ConfigError(f"{option} {path}: {e.describe()}") from None


class _ViewReader(io.RawIOBase):
    """A seekable stream over bytes already read, for pyelftools (which parses headers
    through a file object), so the file is read once, and can be a pipe."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = max(0, min(len(buffer), len(self._view) - self._pos))
        buffer[:n] = self._view[self._pos:self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos


def load_elf(path: str, option: str = "-kernel", raw: memoryview | None = None) -> KernelImage:
    """Read ``path`` as an ELF executable; errors are one-line ConfigErrors. Segment data
    are views of the file's bytes, read once: a large kernel is not copied again."""
    if raw is None:
        raw = read_file(path, option)
    if raw[:4] != b"\x7fELF":
        raise ConfigError(f"{option} {path}: not an ELF file")
    image = _parse_plain(path, raw, option)
    if image is not None:
        return image
    return load_elf_pyelftools(path, raw, option)


def load_elf_pyelftools(path: str, raw: memoryview, option: str = "-kernel") -> KernelImage:
    """:func:`load_elf` of the bytes ``raw`` through pyelftools, whatever they hold."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        return _parse(path, raw, ELFFile(_ViewReader(raw)), option)
    except ELFError as e:
        raise ConfigError(f"{option} {path}: not a valid ELF file ({e})") from None


_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
_PHDR = struct.Struct("<IIQQQQQQ")  # Elf64_Phdr
_NHDR = struct.Struct("<III")  # Elf64_Nhdr
_PT_LOAD, _PT_NOTE = 1, 4
_ET_NAMES = {2: "ET_EXEC", 3: "ET_DYN"}
_EM_NAMES = {62: "EM_X86_64", 183: "EM_AARCH64", 3: "EM_386", 40: "EM_ARM"}
#: pyelftools' names of note types (ENUM_NOTE_N_TYPE, any note name; others stay numbers)
_NOTE_TYPES: dict[int, int | str] = {1: "NT_GNU_ABI_TAG", 2: "NT_GNU_HWCAP",
                                     3: "NT_GNU_BUILD_ID", 4: "NT_GNU_GOLD_VERSION",
                                     5: "NT_GNU_PROPERTY_TYPE_0"}


def _parse_plain(path: str, raw: memoryview, option: str) -> KernelImage | None:
    """The KernelImage of a plain ELF64 little-endian executable, read with struct, or None
    when the file is anything else (then pyelftools reads it). The result is what
    :func:`_parse` makes of the same file through pyelftools."""
    if len(raw) < _EHDR.size:
        return None
    (ident, e_type, e_machine, _version, entry, phoff, _shoff, _flags, _ehsize, phentsize,
     phnum, _shentsize, _shnum, _shstrndx) = _EHDR.unpack_from(raw)
    if ident[4] != 2 or ident[5] != 1 or e_type not in _ET_NAMES or \
            e_machine not in _EM_NAMES or phentsize != _PHDR.size or phnum >= 0xFFFF or \
            phoff + phnum * _PHDR.size > len(raw):
        return None
    segments: list[Segment] = []
    notes: dict[tuple[str, int | str], bytes] = {}
    for i in range(phnum):
        p_type, _pflags, offset, _vaddr, paddr, filesz, memsz, _align = \
            _PHDR.unpack_from(raw, phoff + i * _PHDR.size)
        if p_type == _PT_LOAD and memsz:
            if offset + filesz > len(raw):
                raise ConfigError(f"{option} {path}: truncated segment at 0x{paddr:x}")
            segments.append(Segment(paddr, raw[offset:offset + filesz], memsz, offset, i))
        elif p_type == _PT_NOTE and not _read_notes(raw, offset, filesz, notes):
            return None
    if not segments:
        raise ConfigError(f"{option} {path}: no loadable segments")
    _check_overlaps(path, segments, option)
    return KernelImage(path, EM_NAMES[_EM_NAMES[e_machine]], entry, segments, raw, notes)


def _read_notes(raw: memoryview, offset: int, size: int,
                notes: dict[tuple[str, int | str], bytes]) -> bool:
    """Add the notes of a PT_NOTE segment as pyelftools' ``iter_notes`` reads them (a header,
    the name padded to 4 bytes and read up to its first NUL as latin-1, the descriptor padded to 4
    bytes; notes start while a header and more fit before the end); False where pyelftools
    could read otherwise: a note past the file, a note without a name, or a GNU ABI-tag or
    property note (whose descriptors it parses further)."""
    end = offset + size
    while offset + _NHDR.size < end:
        if offset + _NHDR.size > len(raw):
            return False
        namesz, descsz, n_type = _NHDR.unpack_from(raw, offset)
        offset += _NHDR.size
        desc = offset + ((namesz + 3) & ~3)
        if not namesz or desc + descsz > len(raw):
            return False
        padded = bytes(raw[offset:desc])
        if b"\0" not in padded:  # pyelftools' CString finds no end in the padded name
            return False
        name = padded.split(b"\0", 1)[0].decode("latin-1")
        if name == "GNU" and n_type in (1, 5):
            return False
        notes[(name, _NOTE_TYPES.get(n_type, n_type))] = bytes(raw[desc:desc + descsz])
        offset = desc + ((descsz + 3) & ~3)
    return True


def _parse(path: str, raw: memoryview, elf: Any, option: str) -> KernelImage:
    arch = EM_NAMES.get(elf["e_machine"], str(elf["e_machine"]))
    if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
        raise ConfigError(f"{option} {path}: not an executable ELF file ({elf['e_type']})")
    segments: list[Segment] = []
    notes: dict[tuple[str, int | str], bytes] = {}
    for index, seg in enumerate(elf.iter_segments()):
        if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
            offset, size = seg["p_offset"], seg["p_filesz"]
            if offset + size > len(raw):
                raise ConfigError(f"{option} {path}: truncated segment at 0x{seg['p_paddr']:x}")
            segments.append(Segment(seg["p_paddr"], raw[offset:offset + size], seg["p_memsz"],
                                    offset, index))
        elif seg["p_type"] == "PT_NOTE":
            for note in seg.iter_notes():
                desc = note["n_descdata"]
                if isinstance(desc, str):
                    desc = desc.encode("latin-1")
                notes[(note["n_name"], note["n_type"])] = bytes(desc)
    if not segments:
        raise ConfigError(f"{option} {path}: no loadable segments")
    _check_overlaps(path, segments, option)
    return KernelImage(path, arch, elf["e_entry"], segments, raw, notes)


def _check_overlaps(path: str, segments: list[Segment], option: str) -> None:
    """Refuse segments that overlap in memory, as QEMU refuses overlapping ROM regions
    (hw/core/loader.c rom_check_and_register_reset: "Some ROM regions are overlapping"), on
    every boot path: whichever were loaded last would silently win.

    QEMU's regions are the file-backed parts only (it never zero-fills a bss in RAM, which
    starts zeroed), so it loads a bss that lies over another segment's bytes; emu refuses
    that too, since its firmware, like any loader that follows the ELF specification,
    zero-fills each segment up to its memory size and would clear the other's bytes.
    """
    ordered = sorted(segments, key=lambda seg: seg.paddr)
    reach = ordered[0]  # the segment reaching highest so far
    for seg in ordered[1:]:
        if seg.paddr < reach.paddr + reach.memsz:
            first, second = sorted((reach, seg), key=lambda s: s.index)
            raise ConfigError(
                f"{option} {path}: ELF program header segments {first.index} "
                f"({_range(first)}) and {second.index} ({_range(second)}) overlap")
        if seg.paddr + seg.memsz > reach.paddr + reach.memsz:
            reach = seg


def _range(seg: Segment) -> str:
    return f"0x{seg.paddr:x}-0x{seg.paddr + seg.memsz - 1:x}"


def memory_image(image: KernelImage) -> tuple[int, int, Buffer]:
    """The kernel as one block of memory: (lowest address, size up to the highest
    p_paddr + p_memsz, contents). The contents stop at the last file-backed byte; the rest of
    the size is zeros, which fw_cfg DMA gives for reads past an item's end.

    When every segment lies in the file at the same distance from its address, and the file
    holds zeros wherever the image does between them, the contents are a view of the file,
    not a copy (what linkers usually produce). Otherwise they are assembled in a new buffer.
    """
    segments = sorted(image.segments, key=lambda seg: seg.paddr)
    low = segments[0].paddr
    high = max(seg.paddr + seg.memsz for seg in segments)
    end = max(seg.paddr + len(seg.data) for seg in segments)
    delta = segments[0].offset - low
    if all(seg.offset - seg.paddr == delta for seg in segments) and delta + end <= len(image.raw):
        view = image.raw[delta + low:delta + end]
        covered = low
        gaps_zero = True
        for seg in segments:
            gap = view[covered - low:seg.paddr - low] if seg.paddr > covered else b""
            if bytes(gap).count(0) != len(gap):
                gaps_zero = False
                break
            covered = max(covered, seg.paddr + len(seg.data))
        if gaps_zero:
            return low, high - low, view
    flat = memoryview(host_buffer(end - low))[:end - low]
    for seg in segments:
        flat[seg.paddr - low:seg.paddr - low + len(seg.data)] = seg.data
    return low, high - low, flat
