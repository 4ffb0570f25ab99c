"""QEMU's BIOS linker/loader script (hw/acpi/bios-linker-loader.c): the commands firmware
runs to put fw_cfg blobs into guest memory, patch the pointers between them and fix their
checksums; published as the fw_cfg file ``etc/table-loader``.

Each command is 128 bytes, little-endian (BiosLinkerLoaderEntry):

    ALLOCATE       file[56], align u32, zone u8 (1 high memory, 2 the f-segment)
    ADD_POINTER    dest_file[56], src_file[56], offset u32, size u8
    ADD_CHECKSUM   file[56], offset u32, start u32, length u32
    WRITE_POINTER  dest_file[56], src_file[56], dst_offset u32, src_offset u32, size u8

``run`` executes a script as SeaBIOS's src/fw/romfile_loader.c does; emu's ``--direct-boot``
uses it, emu's firmware has the same loader in C (firmware/pc/acpi.c).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

COMMAND_SIZE = 128
FILE_SIZE = 56
ALLOCATE, ADD_POINTER, ADD_CHECKSUM, WRITE_POINTER = 1, 2, 3, 4
ZONE_HIGH, ZONE_FSEG = 1, 2
#: the script is padded to this size (hw/i386/acpi-build.c ACPI_BUILD_ALIGN_SIZE)
ALIGN_SIZE = 0x1000


def _file(name: str) -> bytes:
    raw = name.encode()
    if len(raw) >= FILE_SIZE:
        raise ValueError(f"linker file name too long: {name}")
    return raw.ljust(FILE_SIZE, b"\0")


def _command(kind: int, body: bytes) -> bytes:
    return struct.pack("<I", kind) + body.ljust(COMMAND_SIZE - 4, b"\0")


class BiosLinker:
    """A script under construction: ALLOCATE commands go first (they are prepended, as
    bios_linker_loader_alloc does), the others in the order they are added."""

    def __init__(self) -> None:
        self.allocs: list[bytes] = []
        self.commands: list[bytes] = []

    def alloc(self, file: str, align: int, fseg: bool) -> None:
        if align & (align - 1):
            raise ValueError("alignment must be a power of two")
        zone = ZONE_FSEG if fseg else ZONE_HIGH
        self.allocs.insert(0, _command(ALLOCATE, _file(file) + struct.pack("<IB", align, zone)))

    def add_pointer(self, dest: str, offset: int, size: int, src: str) -> None:
        self.commands.append(_command(ADD_POINTER, _file(dest) + _file(src)
                                      + struct.pack("<IB", offset, size)))

    def add_checksum(self, file: str, start: int, length: int, offset: int) -> None:
        self.commands.append(_command(ADD_CHECKSUM, _file(file)
                                      + struct.pack("<III", offset, start, length)))

    def write_pointer(self, dest: str, dst_offset: int, size: int, src: str,
                      src_offset: int) -> None:
        self.commands.append(_command(WRITE_POINTER, _file(dest) + _file(src)
                                      + struct.pack("<IIB", dst_offset, src_offset, size)))

    def blob(self) -> bytes:
        """The script, padded to ALIGN_SIZE."""
        raw = b"".join(self.allocs + self.commands)
        return raw.ljust(-(-len(raw) // ALIGN_SIZE) * ALIGN_SIZE, b"\0")


@dataclass
class Command:
    """One decoded command."""

    kind: int
    file: str = ""
    src: str = ""
    align: int = 0
    zone: int = 0
    offset: int = 0
    size: int = 0
    start: int = 0
    length: int = 0
    src_offset: int = 0


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1")


def parse(script: bytes) -> list[Command]:
    """The commands of a script; unknown kinds (0: padding) are skipped, as the loader does."""
    out = []
    for pos in range(0, len(script) - COMMAND_SIZE + 1, COMMAND_SIZE):
        c = script[pos:pos + COMMAND_SIZE]
        kind = struct.unpack_from("<I", c)[0]
        a, b = _name(c[4:60]), _name(c[60:116])
        if kind == ALLOCATE:
            align, zone = struct.unpack_from("<IB", c, 60)
            out.append(Command(kind, a, align=align, zone=zone))
        elif kind == ADD_POINTER:
            offset, size = struct.unpack_from("<IB", c, 116)
            out.append(Command(kind, a, b, offset=offset, size=size))
        elif kind == ADD_CHECKSUM:
            offset, start, length = struct.unpack_from("<III", c, 60)
            out.append(Command(kind, a, offset=offset, start=start, length=length))
        elif kind == WRITE_POINTER:
            offset, src_offset, size = struct.unpack_from("<IIB", c, 116)
            out.append(Command(kind, a, b, offset=offset, size=size, src_offset=src_offset))
    return out


class LoaderError(Exception):
    """A command the loader refuses (SeaBIOS then drops the whole script)."""


def run(script: bytes, files: dict[str, bytes], allocate: Callable[[int, int, int], int],
        write_file: Callable[[str, int, bytes], None] | None = None
        ) -> dict[str, tuple[int, bytearray]]:
    """Execute ``script`` over ``files`` (fw_cfg name -> contents) with ``allocate(size,
    align, zone) -> address``; returns each allocated file's address and patched contents
    (for the caller to write to guest memory). WRITE_POINTER goes through ``write_file(name,
    offset, data)``. Raises LoaderError where romfile_loader.c gives up."""
    placed: dict[str, tuple[int, bytearray]] = {}

    def get(name: str) -> tuple[int, bytearray]:
        if name not in placed:
            raise LoaderError(f"{name} was not allocated")
        return placed[name]

    for cmd in parse(script):
        if cmd.kind == ALLOCATE:
            data = files.get(cmd.file)
            if not data:  # romfile_loader_allocate: a missing or empty file is skipped
                continue
            if cmd.align & (cmd.align - 1):
                raise LoaderError(f"bad alignment {cmd.align} for {cmd.file}")
            placed[cmd.file] = (allocate(len(data), max(cmd.align, 16), cmd.zone),
                                bytearray(data))
        elif cmd.kind == ADD_POINTER:
            _, dest = get(cmd.file)
            src_addr, _ = get(cmd.src)
            if cmd.size not in (1, 2, 4, 8) or cmd.offset + cmd.size > len(dest):
                raise LoaderError(f"bad pointer at {cmd.file}+{cmd.offset}")
            value = int.from_bytes(dest[cmd.offset:cmd.offset + cmd.size], "little")
            value = (value + src_addr) & ((1 << (8 * cmd.size)) - 1)
            dest[cmd.offset:cmd.offset + cmd.size] = value.to_bytes(cmd.size, "little")
        elif cmd.kind == ADD_CHECKSUM:
            _, data = get(cmd.file)
            if cmd.offset >= len(data) or cmd.start + cmd.length > len(data):
                raise LoaderError(f"bad checksum range in {cmd.file}")
            total = sum(data[cmd.start:cmd.start + cmd.length])
            data[cmd.offset] = (data[cmd.offset] - total) & 0xFF
        elif cmd.kind == WRITE_POINTER:
            src_addr, _ = get(cmd.src)
            if cmd.size not in (1, 2, 4, 8) or write_file is None:
                raise LoaderError(f"cannot write a pointer to {cmd.file}")
            value = (src_addr + cmd.src_offset) & ((1 << (8 * cmd.size)) - 1)
            write_file(cmd.file, cmd.offset, value.to_bytes(cmd.size, "little"))
    return placed
