"""Guest-memory core dumps (spec: shared/specs/dump.md)."""

from __future__ import annotations

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
