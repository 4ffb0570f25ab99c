"""What each board publishes through fw_cfg, as QEMU's boards do (hw/i386/fw_cfg.c
fw_cfg_arch_create, hw/arm/virt.c create_fw_cfg, hw/nvram/fw_cfg.c fw_cfg_common_realize),
and the user's ``-fw_cfg`` files (softmmu/vl.c parse_fw_cfg)."""

from __future__ import annotations

import struct
import sys
from typing import TYPE_CHECKING

from emu.boot.elf import FileReadError, read_bounded
from emu.devices.fw_cfg import (
    FILE_NAME_MAX,
    FW_CFG_BOOT_MENU,
    FW_CFG_CMDLINE_ADDR,
    FW_CFG_CMDLINE_DATA,
    FW_CFG_CMDLINE_SIZE,
    FW_CFG_E820_TABLE,
    FW_CFG_HPET,
    FW_CFG_INITRD_ADDR,
    FW_CFG_INITRD_DATA,
    FW_CFG_INITRD_SIZE,
    FW_CFG_IRQ0_OVERRIDE,
    FW_CFG_KERNEL_ADDR,
    FW_CFG_KERNEL_DATA,
    FW_CFG_KERNEL_ENTRY,
    FW_CFG_KERNEL_SIZE,
    FW_CFG_MAX_CPUS,
    FW_CFG_NB_CPUS,
    FW_CFG_NOGRAPHIC,
    FW_CFG_NUMA,
    FW_CFG_RAM_SIZE,
    FW_CFG_SETUP_ADDR,
    FW_CFG_SETUP_DATA,
    FW_CFG_SETUP_SIZE,
    FW_CFG_UUID,
    FwCfg,
)
from emu.errors import ConfigError
from emu.memory import Buffer

if TYPE_CHECKING:
    from emu.boot.bzimage import LinuxSetup
    from emu.config import MachineConfig

E820_ENTRY = struct.Struct("<QQI")
#: the largest fw_cfg item: the file directory holds sizes as 32-bit numbers
FW_CFG_ITEM_MAX = 0xFFFFFFFF


def add_common_items(fw: FwCfg, cfg: MachineConfig) -> None:
    """Items every QEMU machine with fw_cfg has (fw_cfg_common_realize, fw_cfg_reboot,
    fw_cfg_bootsplash)."""
    fw.add_bytes(FW_CFG_UUID, cfg.uuid or bytes(16))
    fw.add_i16(FW_CFG_NOGRAPHIC, int(cfg.nographic))
    fw.add_i16(FW_CFG_BOOT_MENU, int(cfg.boot_menu))
    reboot = 0xFFFFFFFF if cfg.reboot_timeout is None else cfg.reboot_timeout & 0xFFFFFFFF
    fw.add_file("etc/boot-fail-wait", struct.pack("<I", reboot))
    if cfg.splash_time is not None:
        fw.add_file("etc/boot-menu-wait", struct.pack("<H", cfg.splash_time))
    # fw_cfg_machine_reset: the boot order and the legacy disk geometries, built from the
    # devices that have a bootindex or are disks. emu has neither, so both are empty, as
    # QEMU's are for a machine without them.
    fw.add_file("bootorder", b"")
    fw.add_file("bios-geometry", b"")


def add_pc_items(fw: FwCfg, cfg: MachineConfig, e820: list[tuple[int, int, int]],
                 hpet: bytes | None = None) -> None:
    """The x86 items of QEMU's pc: CPU counts, RAM size, NUMA (none), IRQ0 override, the
    legacy reserved-E820 table (empty), ``etc/e820`` with the board's memory map, and
    FW_CFG_HPET (``hpet``: the HPET's ``hpet_fw_config``; without one, QEMU's initial
    ``{.count = UINT8_MAX}``).

    The board adds the ACPI files and the PIIX4's ``etc/system-states`` itself
    (emu/boards/pc.py). What QEMU's pc also publishes and emu leaves out, because it would
    describe hardware emu does not have: ``etc/tpm/log``, SMBIOS (``etc/smbios/*``) and the
    kvmvapic option ROM."""
    add_common_items(fw, cfg)
    fw.add_i16(FW_CFG_NB_CPUS, cfg.smp)
    fw.add_i16(FW_CFG_MAX_CPUS, cfg.max_cpus)
    fw.add_i64(FW_CFG_RAM_SIZE, cfg.ram_size)
    fw.add_bytes(FW_CFG_NUMA, bytes(8 * (1 + cfg.max_cpus)))
    fw.add_i32(FW_CFG_IRQ0_OVERRIDE, 1)
    fw.add_bytes(FW_CFG_E820_TABLE, struct.pack("<I", 0) + bytes(E820_ENTRY.size * 128))
    fw.add_file("etc/e820", b"".join(E820_ENTRY.pack(*entry) for entry in e820))
    fw.add_bytes(FW_CFG_HPET, hpet if hpet is not None else bytes([0xFF]) + bytes(15 * 8))


def add_virt_items(fw: FwCfg, cfg: MachineConfig) -> None:
    """The items of QEMU's virt: the CPU count and the common ones."""
    add_common_items(fw, cfg)
    fw.add_i16(FW_CFG_NB_CPUS, cfg.smp)


def add_cmdline(fw: FwCfg, cmdline: str) -> None:
    """FW_CFG_CMDLINE_SIZE (with the NUL) and FW_CFG_CMDLINE_DATA, as fw_cfg_add_string."""
    raw = cmdline.encode() + b"\0"
    fw.add_i32(FW_CFG_CMDLINE_SIZE, len(raw))
    fw.add_bytes(FW_CFG_CMDLINE_DATA, raw)


def add_pc_kernel_items(fw: FwCfg, *, load_addr: int, size: int, image: Buffer, entry: int,
                        header: bytes, cmdline: str, initrd: tuple[int, Buffer] | None) -> None:
    """What QEMU's pc publishes for a PVH ELF ``-kernel`` (hw/i386/x86.c x86_load_linux):
    entry, lowest load address and memory-image size, command line, the file's first 8 KiB
    as setup data, and the initrd with the address QEMU picks for it.

    emu also publishes the memory image itself as FW_CFG_KERNEL_DATA, for its firmware to
    read by DMA; QEMU copies PVH segments into RAM on its own instead. ``image`` may stop
    before ``size``: a DMA read past an item's end gives zeros, the rest of the image.
    """
    fw.add_i32(FW_CFG_KERNEL_ENTRY, entry)
    fw.add_i32(FW_CFG_KERNEL_ADDR, load_addr)
    fw.add_i32(FW_CFG_KERNEL_SIZE, size)
    fw.add_bytes(FW_CFG_KERNEL_DATA, image)
    add_cmdline(fw, cmdline)
    fw.add_i32(FW_CFG_SETUP_SIZE, len(header))
    fw.add_bytes(FW_CFG_SETUP_DATA, header)
    if initrd is not None:
        addr, data = initrd
        fw.add_i32(FW_CFG_INITRD_ADDR, addr)
        fw.add_i32(FW_CFG_INITRD_SIZE, len(data))
        fw.add_bytes(FW_CFG_INITRD_DATA, data)


def add_pc_linux_items(fw: FwCfg, *, linux: LinuxSetup, cmdline: str,
                       initrd: Buffer | None) -> None:
    """What QEMU's pc publishes for a bzImage ``-kernel`` (hw/i386/x86.c x86_load_linux,
    after the PVH branch): the command line and its address, the initrd and its address, the
    protected-mode part with its load address, and the setup sectors (with QEMU's changes to
    the setup header) with theirs. (QEMU also adds the linuxboot_dma.bin option ROM, as the
    file ``genroms/linuxboot_dma.bin``; emu's firmware does that ROM's work itself.)"""
    fw.add_i32(FW_CFG_CMDLINE_ADDR, linux.cmdline_addr)
    add_cmdline(fw, cmdline)
    if initrd is not None:
        fw.add_i32(FW_CFG_INITRD_ADDR, linux.initrd_addr)
        fw.add_i32(FW_CFG_INITRD_SIZE, len(initrd))
        fw.add_bytes(FW_CFG_INITRD_DATA, initrd)
    fw.add_i32(FW_CFG_KERNEL_ADDR, linux.prot_addr)
    fw.add_i32(FW_CFG_KERNEL_SIZE, len(linux.kernel))
    fw.add_bytes(FW_CFG_KERNEL_DATA, linux.kernel)
    fw.add_i32(FW_CFG_SETUP_ADDR, linux.real_addr)
    fw.add_i32(FW_CFG_SETUP_SIZE, len(linux.setup))
    fw.add_bytes(FW_CFG_SETUP_DATA, linux.setup)


def add_virt_kernel_items(fw: FwCfg, *, kernel_file: Buffer, cmdline: str,
                          initrd: tuple[int, Buffer] | None, initrd_addr: int) -> None:
    """What QEMU's virt publishes when firmware boots the ``-kernel``
    (hw/arm/boot.c arm_setup_firmware_boot): the files as they are, and the command line.

    emu adds FW_CFG_INITRD_ADDR, QEMU's initrd_start: where the initrd goes (the address its
    device tree gives the initrd in /chosen), and, with or without an initrd, where the
    firmware puts an arm64 Image's device tree after it (2 MiB aligned), as QEMU's
    ``-kernel`` boot does.
    """
    fw.add_i32(FW_CFG_KERNEL_SIZE, len(kernel_file))
    fw.add_bytes(FW_CFG_KERNEL_DATA, kernel_file)
    fw.add_i32(FW_CFG_INITRD_ADDR, initrd_addr)
    data = initrd[1] if initrd is not None else b""
    fw.add_i32(FW_CFG_INITRD_SIZE, len(data))
    fw.add_bytes(FW_CFG_INITRD_DATA, data)
    add_cmdline(fw, cmdline)


def add_user_files(fw: FwCfg, cfg: MachineConfig) -> None:
    """``-fw_cfg`` files: contents from a file or a string (no NUL added), with QEMU's
    warning for names outside ``opt/`` and its errors."""
    for f in cfg.fw_cfg_files:
        if not f.name or (f.file is None) == (f.string is None):
            raise ConfigError(f"-fw_cfg {f.spec}: name, plus exactly one of file, string and "
                              "gen_id, are needed")
        if len(f.name.encode()) > FILE_NAME_MAX - 1:
            raise ConfigError(f"-fw_cfg {f.spec}: name too long (max. {FILE_NAME_MAX - 1} char)")
        if not f.name.startswith("opt/"):
            print(f"emu: -fw_cfg {f.spec}: warning: externally provided fw_cfg item names "
                  'should be prefixed with "opt/"', file=sys.stderr, flush=True)
        if f.string is not None:
            data = f.string.encode()
        else:
            assert f.file is not None
            try:  # at most what a fw_cfg item can hold: its size is 32 bits
                data = read_bounded(f.file, FW_CFG_ITEM_MAX)
            except FileReadError as e:  # QEMU's words: the reason alone (strerror)
                raise ConfigError(f"-fw_cfg {f.spec}: can't load {f.file}: {e}") from None
        fw.add_file(f.name, data)
