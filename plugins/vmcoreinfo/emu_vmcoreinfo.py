"""``-device vmcoreinfo`` (QEMU hw/misc/vmcoreinfo.c, docs/specs/vmcoreinfo.rst).

The guest tells the host where its VMCOREINFO ELF note is by writing the 16-byte fw_cfg file
``etc/vmcoreinfo`` with one DMA write (little-endian)::

    struct FWCfgVMCoreInfo {
        uint16_t host_format;  /* formats host supports: 1 = ELF (set at reset) */
        uint16_t guest_format; /* format guest supplies: 0 = none, 1 = ELF */
        uint32_t size;         /* size of the note */
        uint64_t paddr;        /* its guest-physical address */
    };

Only a full 16-byte write at offset 0 with ``guest_format != 0`` registers a note; any other
write (a partial one, or guest_format 0) clears the registration. The values are not checked
here: a dump checks them when it reads the note (spec "vmcoreinfo device").

This module is a complete emu plugin, found through the ``emu`` entry-point group; copy it to
write another.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emu.dump import DumpNotes, vmcoreinfo_phys_base
from emu.errors import ConfigError
from emu.plugins import hookimpl
from emu.plugins.devices import DeviceType

if TYPE_CHECKING:
    from emu.machine import Machine

FILE_NAME = "etc/vmcoreinfo"
FORMAT_NONE = 0
FORMAT_ELF = 1
LAYOUT = struct.Struct("<HHIQ")


class VmCoreInfo:
    """The device's state: the 16 bytes the guest writes and whether they register a note."""

    def __init__(self) -> None:
        self.data = bytearray(LAYOUT.size)
        self.has_note = False

    def reset(self) -> None:
        """Zero the structure and offer the ELF format (vmcoreinfo_reset)."""
        self.data[:] = LAYOUT.pack(FORMAT_ELF, FORMAT_NONE, 0, 0)
        self.has_note = False

    def on_write(self, offset: int, length: int) -> None:
        """After each DMA write into the file (fw_cfg_vmci_write)."""
        self.has_note = offset == 0 and length == LAYOUT.size and self.guest_format != FORMAT_NONE

    @property
    def host_format(self) -> int:
        return LAYOUT.unpack(self.data)[0]

    @property
    def guest_format(self) -> int:
        return LAYOUT.unpack(self.data)[1]

    @property
    def size(self) -> int:
        return LAYOUT.unpack(self.data)[2]

    @property
    def paddr(self) -> int:
        return LAYOUT.unpack(self.data)[3]


def _create(machine: Machine, props: Mapping[str, Any]) -> VmCoreInfo:
    if any(isinstance(d, VmCoreInfo) for d in machine.devices):
        raise ConfigError("-device vmcoreinfo: at most one vmcoreinfo device is permitted")
    if not machine.fw_cfg.dma_enabled:
        raise ConfigError("-device vmcoreinfo: vmcoreinfo device requires fw_cfg with DMA")
    dev = VmCoreInfo()
    dev.reset()
    machine.fw_cfg.add_file(FILE_NAME, dev.data, writable=True, on_write=dev.on_write)
    return dev


@hookimpl
def emu_device_types() -> list[DeviceType]:
    return [DeviceType(
        name="vmcoreinfo",
        description="VMCOREINFO note registration through fw_cfg etc/vmcoreinfo, for dumps",
        create=_create,
    )]


@hookimpl
def emu_machine_reset(machine: Machine) -> None:
    for dev in machine.devices:
        if isinstance(dev, VmCoreInfo):
            dev.reset()


MAX_NOTE_SIZE = 1 << 20  # QEMU's MAX_GUEST_NOTE_SIZE
NOTE_HEADER = struct.Struct("<III")  # Elf64_Nhdr: namesz, descsz, type


def _up4(n: int) -> int:
    return (n + 3) & ~3


def guest_note(machine: Machine, dev: VmCoreInfo) -> DumpNotes:
    """The guest's note for a dump, checked as QEMU's dump code checks it (dump/dump.c), or a
    warning saying why there is none. Only the note's own padded size is kept."""
    if not dev.has_note:
        return DumpNotes(warnings=["vmcoreinfo: the guest has not registered a note; "
                                   "the dump has no VMCOREINFO"])
    size, paddr = dev.size, dev.paddr
    if dev.guest_format != FORMAT_ELF:
        return DumpNotes(warnings=[f"guest note format is unsupported: {dev.guest_format}"])
    if size > MAX_NOTE_SIZE or size < NOTE_HEADER.size:
        return DumpNotes(warnings=[f"guest note size is invalid: {size}"])
    raw = machine.address_space.read(paddr, size)
    if raw is None:
        return DumpNotes(warnings=[f"guest note at 0x{paddr:x} (size {size}) is not in RAM"])
    namesz, descsz, _ntype = NOTE_HEADER.unpack_from(raw)
    total = NOTE_HEADER.size + _up4(namesz) + _up4(descsz)
    if namesz > MAX_NOTE_SIZE or descsz > MAX_NOTE_SIZE or total > size:
        return DumpNotes(warnings=["Invalid guest note header"])
    note = raw[:total]
    name = note[NOTE_HEADER.size : NOTE_HEADER.size + namesz].rstrip(b"\0")
    phys_base = None
    if name == b"VMCOREINFO":
        desc = note[NOTE_HEADER.size + _up4(namesz) : NOTE_HEADER.size + _up4(namesz) + descsz]
        phys_base = vmcoreinfo_phys_base(machine.arch, desc)
    return DumpNotes(notes=note, phys_base=phys_base)


@hookimpl
def emu_dump_notes(machine: Machine) -> DumpNotes | None:
    for dev in machine.devices:
        if isinstance(dev, VmCoreInfo):
            return guest_note(machine, dev)
    return None
