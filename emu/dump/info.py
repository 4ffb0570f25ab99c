"""``emu dump-info FILE``: what is in a core dump.

Prints the ELF header summary, each note (CPU registers decoded, QEMU's CPU state with its
segments, the VMCOREINFO text), the memory ranges and the phys_base the VMCOREINFO gives.
Reads the cores emu and QEMU write (target/i386/arch_dump.c, target/arm/arch_dump.c):
ELFCLASS64 or ELFCLASS32, x86_64, i386 (QEMU's EM_386 cores of a CPU outside long mode),
aarch64 and arm.

The file is read defensively, never trusting a size or an offset it gives: the ELF layouts
come from pyelftools' structures, every range is checked against the file's size before it
is read, and each problem found is one line on stderr. Exit status: 0 when the dump was read
whole, 2 when it was read but is damaged or truncated (what could be read is printed, the
problems on stderr), 1 when it cannot be read as a core dump at all or the command line is
wrong.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from elftools.elf.structs import ELFStructs

from emu.dump import vmcoreinfo_phys_base
from emu.dump.kdump_info import Unreadable as KdumpUnreadable
from emu.dump.kdump_info import describe_kdump, is_kdump

USAGE = """\
usage: emu dump-info FILE

Describe an ELF core dump written by emu or QEMU (dump-guest-memory, --dump-on-exit,
--dump-on-panic): its notes (CPU registers, QEMU's CPU state, VMCOREINFO), its memory ranges
and the guest's phys_base.

Exit status: 0 the dump was read whole; 2 it was read, but is damaged or truncated (each
problem is one line on stderr); 1 it is not a readable core dump, or the usage is wrong."""

EXIT_OK, EXIT_UNREADABLE, EXIT_DAMAGED = 0, 1, 2
PN_XNUM = 0xFFFF
#: notes larger than this are not read (QEMU's largest, a guest's VMCOREINFO, is <= 1 MiB)
MAX_NOTES = 64 << 20
ARCH_NAMES = {"EM_X86_64": "x86_64", "EM_386": "i386", "EM_AARCH64": "aarch64", "EM_ARM": "arm"}

# Register layouts of NT_PRSTATUS (struct elf_prstatus, include/uapi/linux/elfcore.h, with
# each architecture's user_regs_struct): (offset of pr_pid, offset of pr_reg, size of the
# whole descriptor, struct format of pr_reg, register names).
X86_64_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
               "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags", "rsp", "ss", "fs_base",
               "gs_base", "ds", "es", "fs", "gs")
I386_REGS = ("ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs",
             "orig_eax", "eip", "cs", "eflags", "esp", "ss")
AARCH64_REGS = (*(f"x{i}" for i in range(31)), "sp", "pc", "pstate")
ARM_REGS = (*(f"r{i}" for i in range(13)), "sp", "lr", "pc", "cpsr")


@dataclass(frozen=True)
class PrstatusLayout:
    pid_offset: int
    regs_offset: int
    size: int
    fmt: str
    names: tuple[str, ...]


PRSTATUS = {
    "EM_X86_64": PrstatusLayout(32, 112, 336, "27Q", X86_64_REGS),
    "EM_386": PrstatusLayout(24, 72, 144, "17I", I386_REGS),
    "EM_AARCH64": PrstatusLayout(32, 112, 392, "34Q", AARCH64_REGS),
    "EM_ARM": PrstatusLayout(24, 72, 148, "17I", ARM_REGS),
}
#: QEMUCPUState (target/i386/arch_dump.c): version, size, 18 registers, 10 segments, cr0-cr4;
#: QEMU 7.2 adds kernel_gs_base (440 bytes)
QEMU_STATE_REGS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10",
                   "r11", "r12", "r13", "r14", "r15", "rip", "rflags")
QEMU_STATE_SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss", "ldt", "tr", "gdt", "idt")
QEMU_STATE_MIN_SIZE = 8 + 18 * 8 + 10 * 24 + 5 * 8
CORE_NOTE_TYPES = {1: "NT_PRSTATUS", 2: "NT_FPREGSET", 3: "NT_PRPSINFO"}
LINUX_NOTE_TYPES = {0x400: "NT_ARM_VFP", 0x405: "NT_ARM_SVE", 0x411: "NT_ARM_PAC_MASK"}


class Unreadable(Exception):
    """The file cannot be read as a core dump; the message is one line."""


@dataclass
class Report:
    """What dump-info prints: the description, and the problems found on the way."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Note:
    name: str
    ntype: int
    desc: bytes
    descsz: int  # as the header says; desc holds at most MAX_NOTES of it


def _read(f: BinaryIO, offset: int, size: int) -> bytes:
    """At most ``size`` bytes at ``offset`` (fewer at the end of the file, none past it)."""
    end = f.seek(0, os.SEEK_END)
    if size <= 0 or offset >= end:
        return b""
    f.seek(offset)
    return f.read(min(size, end - offset))


def _printable(raw: bytes) -> str:
    """Text from the file, with control characters and invalid UTF-8 escaped: one line,
    nothing a terminal would act on."""
    text = raw.decode(errors="backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _size(n: int) -> str:
    if n >= 1 << 30 and n % (1 << 30) == 0:
        return f"{n >> 30} GiB"
    if n >= 1 << 20:
        return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n / (1 << 20):.1f} MiB"
    if n >= 1 << 10 and n % (1 << 10) == 0:
        return f"{n >> 10} KiB"
    return f"{n} bytes"


def _regs(names: Sequence[str], values: Sequence[int]) -> list[str]:
    pairs = [f"{n}=0x{v:x}" for n, v in zip(names, values, strict=False)]
    return ["    " + " ".join(pairs[i : i + 6]) for i in range(0, len(pairs), 6)]


class CoreFile:
    """A core dump's header, program headers and notes, read with bounds checks."""

    def __init__(self, f: BinaryIO, path: str) -> None:
        self.f, self.path = f, path
        self.file_size = os.fstat(f.fileno()).st_size
        ident = _read(f, 0, 16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF":
            raise Unreadable("not an ELF file")
        if ident[4] not in (1, 2):
            raise Unreadable(f"not a readable ELF file (EI_CLASS {ident[4]})")
        if ident[5] not in (1, 2):
            raise Unreadable(f"not a readable ELF file (EI_DATA {ident[5]})")
        self.elfclass = 32 if ident[4] == 1 else 64
        self.endian = "<" if ident[5] == 1 else ">"
        self.structs = ELFStructs(little_endian=ident[5] == 1, elfclass=self.elfclass)
        self.structs.create_basic_structs()
        raw = _read(f, 0, self.structs.Elf_Ehdr.sizeof())
        if len(raw) < self.structs.Elf_Ehdr.sizeof():
            raise Unreadable(f"truncated ELF header ({self.file_size} bytes)")
        self.header = self.structs.Elf_Ehdr.parse(raw)
        if self.header["e_type"] != "ET_CORE":
            raise Unreadable(f"not a core dump (ELF type {self.header['e_type']})")
        self.machine = self.header["e_machine"]
        self.structs.create_advanced_structs(self.header["e_type"], self.machine,
                                             self.header["e_ident"]["EI_OSABI"])
        self.phnum = self._phnum()
        self._check_phdr_table()

    def _phnum(self) -> int:
        """e_phnum, or with PN_XNUM the count in section header 0's sh_info (gABI)."""
        phnum = self.header["e_phnum"]
        if phnum != PN_XNUM:
            return phnum
        shoff, shentsize = self.header["e_shoff"], self.header["e_shentsize"]
        shdr_size = self.structs.Elf_Shdr.sizeof()
        where = ("e_phnum is PN_XNUM (0xffff), so section header 0 holds the number of "
                 "program headers, but")
        if shoff == 0:
            raise Unreadable(f"{where} there are no section headers (e_shoff 0)")
        if shentsize != shdr_size:
            raise Unreadable(f"{where} e_shentsize is {shentsize}, not {shdr_size}")
        if shoff + shdr_size > self.file_size:
            raise Unreadable(f"{where} e_shoff 0x{shoff:x} is past the end of the file "
                             f"({self.file_size} bytes)")
        return self.structs.Elf_Shdr.parse(_read(self.f, shoff, shdr_size))["sh_info"]

    def _check_phdr_table(self) -> None:
        phoff, entsize = self.header["e_phoff"], self.header["e_phentsize"]
        size = self.structs.Elf_Phdr.sizeof()
        if self.phnum == 0:
            return
        if entsize != size:
            raise Unreadable(f"e_phentsize is {entsize}, not {size} (ELF{self.elfclass})")
        if phoff + self.phnum * size > self.file_size:
            raise Unreadable(f"the program header table ({self.phnum} entries at e_phoff "
                             f"0x{phoff:x}) runs past the end of the file "
                             f"({self.file_size} bytes)")

    def segments(self) -> Iterator[dict]:  # type: ignore[type-arg]
        """The program headers, read in blocks (a dump can have millions)."""
        size = self.structs.Elf_Phdr.sizeof()
        block = 4096
        for first in range(0, self.phnum, block):
            count = min(block, self.phnum - first)
            raw = _read(self.f, self.header["e_phoff"] + first * size, count * size)
            for i in range(count):
                yield self.structs.Elf_Phdr.parse(raw[i * size : (i + 1) * size])

    def notes(self, seg: dict, problems: list[str]) -> list[Note]:  # type: ignore[type-arg]
        """The notes of a PT_NOTE segment; a note that does not fit ends the walk."""
        offset, size = seg["p_offset"], seg["p_filesz"]
        if size > MAX_NOTES:
            problems.append(f"the PT_NOTE segment claims {size} bytes (p_filesz): not read")
            return []
        if offset + size > self.file_size:
            have = max(0, self.file_size - offset)
            problems.append(f"the PT_NOTE segment (0x{size:x} bytes at file offset "
                            f"0x{offset:x}) runs past the end of the file ({self.file_size} "
                            f"bytes): truncated, {have} bytes of it read")
            size = have
        data = _read(self.f, offset, size)
        out: list[Note] = []
        pos = 0
        while pos < len(data):
            left = len(data) - pos
            if left < 12:
                if any(data[pos:]):
                    problems.append(f"note {len(out) + 1}: {left} bytes left in the PT_NOTE "
                                    "segment, too few for a note header")
                break
            namesz, descsz, ntype = struct.unpack_from(self.endian + "III", data, pos)
            name_end = pos + 12 + namesz
            if name_end > len(data):
                problems.append(f"note {len(out) + 1}: its name (namesz {namesz}) runs past "
                                f"the end of the PT_NOTE segment")
                break
            name = _printable(data[pos + 12 : name_end].rstrip(b"\0"))
            desc_start = name_end + (-namesz % 4)
            if desc_start + descsz > len(data):
                problems.append(f"note {len(out) + 1} ({name} type {ntype}): its descriptor "
                                f"(descsz {descsz}) runs past the end of the PT_NOTE segment "
                                f"({max(0, len(data) - desc_start)} bytes left)")
                break
            out.append(Note(name, ntype, data[desc_start : desc_start + descsz], descsz))
            pos = desc_start + descsz + (-descsz % 4)
        return out


def _note_type(note: Note) -> str:
    table = CORE_NOTE_TYPES if note.name == "CORE" else \
        LINUX_NOTE_TYPES if note.name == "LINUX" else {}
    return table.get(note.ntype, str(note.ntype))


class Describer:
    """Turns a :class:`CoreFile` into report lines."""

    def __init__(self, core: CoreFile, report: Report) -> None:
        self.core, self.report = core, report
        self.endian = core.endian
        self.cpu = 0
        self.vmcoreinfo = ""

    def problem(self, text: str) -> None:
        self.report.problems.append(text)

    def note(self, note: Note) -> None:
        lines = self.report.lines
        kind = _note_type(note)
        if note.name == "CORE" and note.ntype == 1:
            self.prstatus(note)
        elif note.name == "QEMU" and note.ntype == 0:
            self.qemu_state(note)
        elif note.name == "VMCOREINFO":
            self.vmcoreinfo = note.desc.decode(errors="replace")
            lines.append(f"  VMCOREINFO, {note.descsz} bytes:")
            lines += ["    " + _printable(x.encode()) for x in self.vmcoreinfo.splitlines()]
        elif note.name == "LINUX" and note.ntype == 0x405 and len(note.desc) >= 16:
            vl, max_vl, flags = struct.unpack_from(self.endian + "HHH", note.desc, 8)
            lines.append(f"  LINUX NT_ARM_SVE, {note.descsz} bytes: vector length {vl} "
                         f"bytes (max {max_vl}), flags 0x{flags:x}")
        else:
            lines.append(f"  {note.name} {kind}, {note.descsz} bytes")

    def prstatus(self, note: Note) -> None:
        self.cpu += 1
        layout = PRSTATUS.get(self.core.machine)
        head = f"  CORE NT_PRSTATUS, {note.descsz} bytes: CPU {self.cpu}"
        if layout is None:
            self.report.lines.append(head)
            return
        if len(note.desc) != layout.size:
            self.report.lines.append(head)
            self.problem(f"CPU {self.cpu}'s NT_PRSTATUS has {len(note.desc)} bytes, not the "
                         f"{layout.size} of {ARCH_NAMES[self.core.machine]}'s struct "
                         "elf_prstatus: registers not shown")
            return
        pid = struct.unpack_from(self.endian + "I", note.desc, layout.pid_offset)[0]
        values = struct.unpack_from(self.endian + layout.fmt, note.desc, layout.regs_offset)
        self.report.lines.append(f"{head}, pid {pid}")
        self.report.lines.extend(_regs(layout.names, values))

    def qemu_state(self, note: Note) -> None:
        desc, e = note.desc, self.endian
        if len(desc) < QEMU_STATE_MIN_SIZE:
            self.report.lines.append(f"  QEMU CPU state, {note.descsz} bytes")
            self.problem(f"the QEMU CPU-state note has {len(desc)} bytes, fewer than "
                         f"QEMUCPUState's {QEMU_STATE_MIN_SIZE}: not decoded")
            return
        version, size = struct.unpack_from(e + "II", desc)
        lines = self.report.lines
        lines.append(f"  QEMU CPU state, version {version}, size {size}")
        lines += _regs(QEMU_STATE_REGS, struct.unpack_from(e + "18Q", desc, 8))
        for i, name in enumerate(QEMU_STATE_SEGMENTS):
            sel, limit, flags, _pad, base = struct.unpack_from(e + "IIIIQ", desc, 152 + 24 * i)
            lines.append(f"    {name + ':':4} selector=0x{sel:x} base=0x{base:x} "
                         f"limit=0x{limit:x} flags=0x{flags:x}")
        crs = struct.unpack_from(e + "5Q", desc, 392)
        extra = []
        if len(desc) >= 440:
            extra = [("kernel_gs_base", struct.unpack_from(e + "Q", desc, 432)[0])]
        lines += _regs([f"cr{i}" for i in range(5)] + [n for n, _ in extra],
                       [*crs, *(v for _, v in extra)])


def describe(path: str) -> Report:
    """The report for ``path``; raises :class:`Unreadable` with a one-line reason."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise Unreadable(e.strerror or str(e)) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise Unreadable(os.strerror(errno.EISDIR) if stat.S_ISDIR(mode) else
                         "not a regular file (dump-info reads a core dump from a file)")
    with open(fd, "rb") as f:
        try:
            if is_kdump(_read(f, 0, 16)):
                return _describe_kdump(f, path)
            return _describe(CoreFile(f, path), path)
        except OSError as e:  # an I/O error under the file: one line, as for open()
            raise Unreadable(f"read error: {e.strerror or e}") from None


def _describe(core: CoreFile, path: str) -> Report:
    """The report on an opened core."""
    report = Report()
    machine = core.machine
    arch = ARCH_NAMES.get(machine, machine if isinstance(machine, str) else
                          f"machine {machine}")
    report.lines.append(f"{path}: ELF{core.elfclass} core dump, {arch}, {core.phnum} "
                        f"program headers, e_ehsize {core.header['e_ehsize']}")
    describer = Describer(core, report)
    loads = []
    notes_seen = False
    for seg in core.segments():
        if seg["p_type"] == "PT_LOAD":
            loads.append(seg)
        elif seg["p_type"] == "PT_NOTE":
            if not notes_seen:
                report.lines.append("notes:")
                notes_seen = True
            for note in core.notes(seg, report.problems):
                describer.note(note)
    _memory(core, loads, report)
    report.lines.append(f"phys_base: {_phys_base(arch, describer.vmcoreinfo)}")
    return report


class _NotesOnly:
    """What :class:`Describer` needs of a core, for the notes of a kdump file."""

    def __init__(self, machine: str) -> None:
        self.machine = machine
        self.endian = "<"


def _describe_kdump(f: BinaryIO, path: str) -> Report:
    """The report on a kdump-compressed file (emu.dump.kdump_info)."""
    report = Report()
    arch, text = "", ""

    def describe_notes(machine: str, notes: bytes) -> str:
        nonlocal arch, text
        arch = ARCH_NAMES.get(machine, machine)
        describer = Describer(_NotesOnly(machine), report)  # type: ignore[arg-type]
        seg = {"p_offset": 0, "p_filesz": len(notes)}
        reader = CoreFile.__new__(CoreFile)
        reader.f, reader.file_size, reader.endian = io.BytesIO(notes), len(notes), "<"
        for note in reader.notes(seg, report.problems):
            describer.note(note)
        text = describer.vmcoreinfo
        return text

    try:
        describe_kdump(f, path, report.lines, report.problems, describe_notes)
    except KdumpUnreadable as e:
        raise Unreadable(str(e)) from None
    report.lines.append(f"phys_base: {_phys_base(arch, text)}")
    return report


def _memory(core: CoreFile, loads: list[dict], report: Report) -> None:  # type: ignore[type-arg]
    report.lines.append("memory:")
    total = 0
    short = []
    for seg in loads:
        start, size = seg["p_paddr"], seg["p_memsz"]
        offset, filesz = seg["p_offset"], seg["p_filesz"]
        total += size
        line = (f"  0x{start:016x}-0x{start + max(size, 1) - 1:016x}  {_size(size):>10}  "
                f"vaddr 0x{seg['p_vaddr']:x}  file offset 0x{offset:x}")
        if offset + filesz > core.file_size:
            present = max(0, core.file_size - offset)
            line += f"  (truncated: {_size(present)} of {_size(filesz)} in the file)"
            short.append(seg)
        report.lines.append(line)
    report.lines.append(f"  {_size(total)} in {len(loads)} ranges")
    if short:
        need = max(s["p_offset"] + s["p_filesz"] for s in short)
        report.problems.append(
            f"truncated: the file has {core.file_size} bytes, its memory ranges need {need}; "
            f"{len(short)} of {len(loads)} ranges are incomplete (the missing bytes are not "
            "in the dump)")


def _phys_base(arch: str, text: str) -> str:
    key = "NUMBER(phys_base)" if arch in ("x86_64", "i386") else "NUMBER(PHYS_OFFSET)"
    if not text:
        return "unknown (no VMCOREINFO)"
    value = vmcoreinfo_phys_base("x86_64" if arch in ("x86_64", "i386") else "aarch64",
                                 text.encode())
    return f"0x{value:x} (from {key})" if value is not None else f"unknown (no readable {key})"


def main(args: Sequence[str], err: Callable[[str], None]) -> int:
    """The ``dump-info`` subcommand: see :data:`USAGE` for its exit statuses."""
    if any(a in ("-h", "--help", "-help") for a in args[:1]):
        print(USAGE)
        return EXIT_OK
    files = list(args[1:]) if args[:1] == ["--"] else list(args)
    if len(files) != 1 or (files[0].startswith("-") and args[:1] != ["--"]):
        err("usage: emu dump-info FILE (emu dump-info --help for more)")
        return EXIT_UNREADABLE
    path = files[0]
    try:
        report = describe(path)
    except Unreadable as e:
        err(f"dump-info: {path}: {e}")
        return EXIT_UNREADABLE
    try:
        print("\n".join(report.lines), flush=True)
    except BrokenPipeError:  # the reader went away (dump-info FILE | head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    for problem in report.problems:
        err(f"dump-info: {path}: {problem}")
    return EXIT_DAMAGED if report.problems else EXIT_OK
