"""Firmware images: emu's own (``emu.firmware``) or a ``-bios FILE``, checked as QEMU
checks them before mapping (hw/i386/x86.c x86_bios_rom_init: the pc BIOS is a non-empty
multiple of 64 KiB mapped to end at 4 GiB; hw/arm/virt.c virt_firmware_init: the virt image
goes into the 64 MiB flash at address 0).

Also the other files boot reads: ``-initrd``.
"""

from __future__ import annotations

from emu.boot.elf import read_file
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
    data = read_file(path, "-bios")
    if not data:
        raise ConfigError(f"-bios {path}: could not load PC BIOS: the file is empty")
    if len(data) % (64 * KiB):
        raise ConfigError(f"-bios {path}: could not load PC BIOS: its size ({len(data)} "
                          "bytes) is not a multiple of 64 KiB")
    if len(data) > PC_BIOS_MAX:
        raise ConfigError(f"-bios {path}: could not load PC BIOS: larger than 16 MiB")
    return data


def virt_flash(path: str | None) -> Buffer:
    """The virt's flash contents from address 0: ``-bios PATH`` or emu's firmware."""
    if path is None:
        return default_firmware("virt")
    data = read_file(path, "-bios")
    if not data:
        raise ConfigError(f"-bios {path}: could not load ROM image: the file is empty")
    if len(data) > VIRT_FLASH_SIZE:
        raise ConfigError(f"-bios {path}: could not load ROM image: larger than the "
                          "64 MiB flash")
    return data


def read_initrd(path: str) -> memoryview:
    """The ``-initrd`` file's contents."""
    return read_file(path, "-initrd")
