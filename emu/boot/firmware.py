"""Firmware images: emu's own (``emu.firmware``) or a ``-bios FILE``, checked as QEMU
checks them before mapping (hw/i386/x86.c x86_bios_rom_init: the pc BIOS is a non-empty
multiple of 64 KiB mapped to end at 4 GiB; hw/arm/virt.c virt_firmware_init: the virt image
goes into the 64 MiB flash at address 0).

Also the other files boot reads: ``-initrd``.
"""

from __future__ import annotations

from emu.boot.elf import FileReadError, FileTooLarge, read_bounded, read_kernel, size_text
from emu.config import KiB, MiB
from emu.errors import ConfigError
from emu.firmware import default_firmware
from emu.memory import Buffer

PC_BIOS_MAX = 16 * MiB
VIRT_FLASH_BASE = 0x0
VIRT_FLASH_SIZE = 64 * MiB


def pc_bios(path: str | None) -> Buffer:
    """The pc's BIOS ROM contents: ``-bios PATH`` or emu's firmware."""
    if path is None:
        return default_firmware("pc")
    data = _read_bios(path, PC_BIOS_MAX, "could not load PC BIOS")
    if not data:
        raise ConfigError(f"-bios {path}: could not load PC BIOS: the file is empty")
    if len(data) % (64 * KiB):
        raise ConfigError(f"-bios {path}: could not load PC BIOS: its size ({len(data)} "
                          "bytes) is not a multiple of 64 KiB")
    return data


def virt_flash(path: str | None) -> Buffer:
    """The virt's flash contents from address 0: ``-bios PATH`` or emu's firmware."""
    if path is None:
        return default_firmware("virt")
    data = _read_bios(path, VIRT_FLASH_SIZE, "could not load ROM image")
    if not data:
        raise ConfigError(f"-bios {path}: could not load ROM image: the file is empty")
    return data


def _read_bios(path: str, max_size: int, failed: str) -> memoryview:
    """``-bios PATH``, read only if it fits where it goes (so /dev/zero is refused at once and
    a pipe is read no further than the ROM's size)."""
    try:
        return read_bounded(path, max_size)
    except FileTooLarge:
        where = "the 64 MiB flash" if max_size == VIRT_FLASH_SIZE else size_text(max_size)
        raise ConfigError(f"-bios {path}: {failed}: larger than {where}") from None
    except FileReadError as e:
        raise ConfigError(f"-bios {path}: {e.describe()}") from None


def read_initrd(path: str, ram_size: int) -> memoryview:
    """The ``-initrd`` file's contents (the board says whether it fits, in QEMU's words)."""
    return read_kernel(path, ram_size, "-initrd")
