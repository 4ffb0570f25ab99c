"""emu/boot/elf.py reads plain ELF64 kernels with struct (_parse_plain) and everything else
with pyelftools: for every file the plain reader accepts, both give the same KernelImage;
files it declines get pyelftools' result and errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import ROOT

from emu.boot.elf import _parse_plain, load_elf, load_elf_pyelftools
from emu.errors import ConfigError

IMAGES = sorted((ROOT / "guest_images").glob("*/*.elf"))


def _note(name: bytes, n_type: int, desc: bytes) -> bytes:
    pad = lambda b: b + bytes(-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), n_type) + pad(name) + pad(desc)


def _elf(*, machine: int = 62, e_type: int = 2, notes: bytes = b"", bss: int = 0x100,
         truncate: int = 0, phentsize: int = 56, ident: bytes = b"\x7fELF\x02\x01\x01") -> bytes:
    """An ELF64 file: one PT_LOAD of 16 bytes at 0x100000 (p_memsz 16 + bss), and a PT_NOTE
    holding ``notes`` if given."""
    phnum = 2 if notes else 1
    code_off = 64 + 56 * phnum
    note_off = code_off + 16
    out = bytearray(ident.ljust(16, b"\0") + struct.pack(
        "<HHIQQQIHHHHHH", e_type, machine, 1, 0x100000, 64, 0, 0, 64, phentsize, phnum, 0, 0,
        0))
    out += struct.pack("<IIQQQQQQ", 1, 5, code_off, 0x100000, 0x100000, 16, 16 + bss, 16)
    if notes:
        out += struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(notes), len(notes), 4)
    out += b"\xf4" * 16 + notes
    return bytes(out[:len(out) - truncate])


def _summary(image):
    return (image.arch, image.entry, image.notes,
            [(s.paddr, bytes(s.data), s.memsz, s.offset) for s in image.segments])


def _both(path: Path) -> tuple[object, object]:
    raw = memoryview(path.read_bytes())
    results = []
    for parse in (lambda: load_elf(str(path), raw=raw),
                  lambda: load_elf_pyelftools(str(path), raw)):
        try:
            results.append(_summary(parse()))
        except ConfigError as e:
            results.append(str(e))
    return results[0], results[1]


@pytest.mark.parametrize("path", IMAGES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_guest_images_read_the_same_both_ways(path: Path) -> None:
    raw = memoryview(path.read_bytes())
    plain = _parse_plain(str(path), raw, "-kernel")
    assert plain is not None
    assert _summary(plain) == _summary(load_elf_pyelftools(str(path), raw))


CASES = {
    "xen and gnu notes": (_elf(notes=_note(b"Xen", 18, struct.pack("<I", 0x100000))
                               + _note(b"GNU", 3, b"\x01\x02\x03\x04\x05")
                               + _note(b"Linux", 0x4000, b"")), True),
    "aarch64 ET_DYN": (_elf(machine=183, e_type=3), True),
    "i386 machine": (_elf(machine=3), True),
    "truncated segment": (_elf(truncate=8), True),
    "truncated note": (_elf(notes=_note(b"Xen", 18, b"\0" * 8))[:-4], False),
    "note at the segment's end": (_elf(notes=_note(b"Xen", 18, b"\1" * 4)
                                       + struct.pack("<III", 4, 0, 7)), True),
    "nameless note": (_elf(notes=_note(b"", 9, b"\1" * 4)), False),
    "gnu property note": (_elf(notes=_note(b"GNU", 5, b"\0" * 16)), False),
    "gnu build id": (_elf(notes=_note(b"GNU", 3, b"\xab" * 20)), True),
    "relocatable": (_elf(e_type=1), False),
    "unknown machine": (_elf(machine=0x1234), False),
    "odd phentsize": (_elf(phentsize=48), False),
    "big-endian": (_elf(ident=b"\x7fELF\x02\x02\x01"), False),
    "elf32": (_elf(ident=b"\x7fELF\x01\x01\x01"), False),
    "headers cut": (_elf()[:40], False),
}


@pytest.mark.parametrize("name", CASES)
def test_crafted_files_read_the_same_both_ways(name: str, tmp_path: Path) -> None:
    data, plain_reads_it = CASES[name]
    path = tmp_path / "k.elf"
    path.write_bytes(data)
    ours, pyelftools = _both(path)
    assert ours == pyelftools
    try:
        accepted = _parse_plain(str(path), memoryview(data), "-kernel") is not None
    except ConfigError:
        accepted = True  # the plain reader's own verdict (the same words as pyelftools')
    assert accepted == plain_reads_it
