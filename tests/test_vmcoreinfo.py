"""The vmcoreinfo plugin: found through the entry point, QEMU's register semantics."""

from __future__ import annotations

import struct

from conftest import image, run_emu

from emu.config import DeviceSpec, MachineConfig
from emu.devices.fw_cfg import DMA_CTL_READ, DMA_CTL_SELECT, DMA_CTL_SKIP, DMA_CTL_WRITE
from emu.machine import Machine
from emu.plugins.manager import PluginManager


def test_discovered_through_the_entry_point_only() -> None:
    pm = PluginManager(autoload=True)
    assert "vmcoreinfo" in pm.device_types
    assert pm.device_types["vmcoreinfo"].source.startswith("plugin vmcoreinfo from emu-vmcoreinfo")
    assert "vmcoreinfo" not in PluginManager(autoload=False).device_types
    listing = run_emu(["-device", "help"]).stdout
    assert b'name "vmcoreinfo"' in listing and b"from plugin vmcoreinfo" in listing


def test_disabling_autoload_removes_the_device() -> None:
    result = run_emu(["-M", "pc", "-kernel", image("pc", "hello"), "-device", "vmcoreinfo"],
                     env_extra={"EMU_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.stderr == (b"emu: -device vmcoreinfo: 'vmcoreinfo' is not a valid device "
                             b"model name\n")


class Guest:
    """Drives etc/vmcoreinfo by DMA, as a guest does (no CPU)."""

    DESC = 0x200000
    BUF = 0x201000

    def __init__(self, machine: str = "virt") -> None:
        self.m = Machine(MachineConfig(machine=machine, kernel=image(machine, "hello"),
                                       serial=["none"],
                                       devices=[DeviceSpec("vmcoreinfo", "vmcoreinfo", {})]))
        self.fw = self.m.fw_cfg
        self.key = self.fw.file_key("etc/vmcoreinfo")
        self.base = self.m.address_space.blocks[0].base
        self.dev = next(d for d in self.m.devices if type(d).__name__ == "VmCoreInfo")

    def dma(self, control: int, data: bytes = b"", length: int | None = None) -> int:
        space = self.m.address_space
        n = len(data) if length is None else length
        space.write(self.base + self.BUF, data.ljust(max(n, 1), b"\xaa"))
        space.write(self.base + self.DESC, struct.pack(">IIQ", control, n,
                                                       self.base + self.BUF))
        self.fw.dma_register_write(0, 8, self.base + self.DESC)
        return struct.unpack(">I", space.read(self.base + self.DESC, 4))[0]

    def write(self, payload: bytes, skip: int = 0) -> int:
        sel = (self.key << 16) | DMA_CTL_SELECT
        if skip:
            self.dma(sel | DMA_CTL_SKIP, length=skip)
            sel = 0
        return self.dma(sel | DMA_CTL_WRITE, payload)

    def read(self) -> bytes:
        assert self.dma((self.key << 16) | DMA_CTL_SELECT | DMA_CTL_READ, length=16) == 0
        return self.m.address_space.read(self.base + self.BUF, 16)


def note(guest_format: int = 1, size: int = 4132, paddr: int = 0x1000) -> bytes:
    return struct.pack("<HHIQ", 0, guest_format, size, paddr)


def test_reset_state_offers_elf() -> None:
    g = Guest()
    assert g.read() == struct.pack("<HHIQ", 1, 0, 0, 0)
    assert not g.dev.has_note


def test_full_write_registers_and_reads_back() -> None:
    g = Guest()
    assert g.write(note()) == 0
    assert g.dev.has_note
    assert g.read() == note()
    assert (g.dev.guest_format, g.dev.size, g.dev.paddr) == (1, 4132, 0x1000)


def test_partial_writes_never_register() -> None:
    g = Guest()
    assert g.write(note()[:8]) == 0
    assert g.write(note()[8:], skip=8) == 0
    assert g.read() == note()  # the bytes are all there...
    assert not g.dev.has_note  # ...but only a whole 16-byte write counts, as in QEMU


def test_guest_format_zero_clears_and_unknown_format_is_accepted() -> None:
    g = Guest()
    g.write(note())
    g.write(note(guest_format=0))
    assert not g.dev.has_note
    g.write(note(guest_format=2))
    assert g.dev.has_note  # checked at dump time, not here


def test_write_past_the_end_is_refused() -> None:
    g = Guest()
    assert g.write(note() + b"more") == 1
    assert g.read() == struct.pack("<HHIQ", 1, 0, 0, 0)


def test_machine_reset_forgets_the_note() -> None:
    g = Guest("pc")
    g.write(note())
    g.m.reset()
    assert not g.dev.has_note
    assert g.read() == struct.pack("<HHIQ", 1, 0, 0, 0)
    g.write(note(paddr=0x2000))
    assert g.dev.has_note and g.dev.paddr == 0x2000
