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
