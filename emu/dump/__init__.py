"""Guest-memory core dumps (spec: shared/specs/dump.md)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


@dataclass
class DumpNotes:
    """What a plugin adds to a dump (hook ``emu_dump_notes``)."""

    notes: bytes = b""
    phys_base: int | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class DumpResult:
    """What a finished dump reports."""

    path: str
    size: int
    phys_base: int | None
    warnings: list[str]
    #: the kinds of its ELF notes, in file order: CPU notes by type (PRSTATUS), the others
    #: by name (QEMU, VMCOREINFO)
    notes: list[str] = field(default_factory=list)


#: NT_* types of the "CORE" notes a dump carries (include/uapi/linux/elf.h)
_CORE_NOTE_TYPES = {1: "PRSTATUS", 2: "FPREGSET"}


def note_kinds(notes: bytes) -> list[str]:
    """The kinds of the ELF notes in ``notes`` (a PT_NOTE segment's contents), each once."""
    kinds: dict[str, None] = {}
    offset = 0
    while offset + 12 <= len(notes):
        namesz, descsz, ntype = struct.unpack_from("<III", notes, offset)
        name = bytes(notes[offset + 12:offset + 12 + namesz]).rstrip(b"\0").decode(
            "ascii", "replace")
        kinds[_CORE_NOTE_TYPES.get(ntype, f"CORE type {ntype}") if name == "CORE" else name] = None
        offset += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return list(kinds)


def vmcoreinfo_phys_base(arch: str, text: bytes) -> int | None:
    """phys_base from VMCOREINFO text: ``NUMBER(phys_base)`` on x86_64 (decimal, as Linux
    prints it; QEMU 7.2 parses it as hex, a bug emu does not copy) or ``NUMBER(PHYS_OFFSET)``
    on aarch64 (printed as 0x-hex). None when absent or unreadable."""
    key, base = (b"NUMBER(phys_base)=", 10) if arch == "x86_64" else \
        (b"NUMBER(PHYS_OFFSET)=", 16)
    for line in text.split(b"\n"):
        if line.startswith(key):
            try:
                return int(line[len(key):].decode(), base)
            except ValueError:
                return None
    return None
