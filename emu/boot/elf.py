"""ELF kernel files (read with pyelftools): segments to load, entry point, notes.

Every problem with the file is a :class:`~emu.errors.ConfigError` with one line naming the
file, so ``-kernel`` mistakes never become tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from emu.errors import ConfigError

EM_NAMES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64", "EM_386": "i386",
            "EM_ARM": "arm"}


@dataclass
class Segment:
    """One PT_LOAD segment: file bytes to place at ``paddr``, zero-filled up to ``memsz``."""

    paddr: int
    data: bytes
    memsz: int


@dataclass
class KernelImage:
    """What a boot protocol needs from an ELF kernel."""

    path: str
    arch: str
    entry: int
    segments: list[Segment]
    #: (name, type) -> descriptor bytes of each note in PT_NOTE segments; the type is as
    #: pyelftools gives it (a number, or a name for the notes it knows)
    notes: dict[tuple[str, int | str], bytes] = field(default_factory=dict)


def load_elf(path: str, option: str = "-kernel") -> KernelImage:
    """Read ``path`` as an ELF executable; errors are one-line ConfigErrors."""
    try:
        with open(path, "rb") as f:
            return _parse(path, f, option)
    except OSError as e:
        raise ConfigError(f"{option} {path}: could not open: {e.strerror}") from None
    except ELFError as e:
        raise ConfigError(f"{option} {path}: not a valid ELF file ({e})") from None


def _parse(path: str, f, option: str) -> KernelImage:  # type: ignore[no-untyped-def]
    if f.read(4) != b"\x7fELF":
        raise ConfigError(f"{option} {path}: not an ELF file")
    f.seek(0)
    elf = ELFFile(f)
    arch = EM_NAMES.get(elf["e_machine"], str(elf["e_machine"]))
    if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
        raise ConfigError(f"{option} {path}: not an executable ELF file ({elf['e_type']})")
    segments: list[Segment] = []
    notes: dict[tuple[str, int | str], bytes] = {}
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_memsz"]:
            data = seg.data()
            if len(data) != seg["p_filesz"]:
                raise ConfigError(f"{option} {path}: truncated segment at 0x{seg['p_paddr']:x}")
            segments.append(Segment(seg["p_paddr"], data, seg["p_memsz"]))
        elif seg["p_type"] == "PT_NOTE":
            for note in seg.iter_notes():
                desc = note["n_descdata"]
                if isinstance(desc, str):
                    desc = desc.encode("latin-1")
                notes[(note["n_name"], note["n_type"])] = bytes(desc)
    if not segments:
        raise ConfigError(f"{option} {path}: no loadable segments")
    return KernelImage(path, arch, elf["e_entry"], segments, notes)

