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


# --------------------------------------------------------------------------- dump side

def _elf_note(name: bytes, desc: bytes, ntype: int = 0) -> bytes:
    def pad(b: bytes) -> bytes:
        return b + bytes(-len(b) % 4)
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)


def _dump_notes(g: Guest, payload: bytes, size: int, paddr: int | None = None,
                guest_format: int = 1):
    import emu_vmcoreinfo

    addr = g.base + 0x300000 if paddr is None else paddr
    if paddr is None:
        g.m.address_space.write(addr, payload)
    g.write(struct.pack("<HHIQ", 0, guest_format, size, addr))
    return emu_vmcoreinfo.guest_note(g.m, g.dev)


VMCI = b"OSRELEASE=6.1.0\nPAGESIZE=4096\nNUMBER(phys_base)=16777216\n"


def test_the_note_is_taken_with_its_own_padded_size() -> None:
    g = Guest("pc")
    note = _elf_note(b"VMCOREINFO\0", VMCI)
    got = _dump_notes(g, note + b"\xee" * 100, 4132)
    assert got.notes == note and got.warnings == []
    assert got.phys_base == 16777216  # decimal, as Linux prints it (QEMU would read it as hex)


def test_aarch64_phys_offset_is_hex() -> None:
    g = Guest("virt")
    got = _dump_notes(g, _elf_note(b"VMCOREINFO\0", b"NUMBER(PHYS_OFFSET)=0x40000000\n"), 64)
    assert got.phys_base == 0x40000000


def test_other_note_names_are_kept_without_phys_base() -> None:
    g = Guest("pc")
    note = _elf_note(b"XEN\0", b"NUMBER(phys_base)=5\n", 7)
    got = _dump_notes(g, note, 4096)
    assert got.notes == note and got.phys_base is None


def test_each_bad_registration_is_a_warning_and_no_note() -> None:
    g = Guest("pc")
    cases = [
        (dict(size=11), "guest note size is invalid: 11"),
        (dict(size=(1 << 20) + 1), "guest note size is invalid: 1048577"),
        (dict(size=64, guest_format=2), "guest note format is unsupported: 2"),
        (dict(size=64, paddr=0xDEAD0000), "is not in RAM"),
        (dict(size=64, paddr=(1 << 64) - 16), "is not in RAM"),
    ]
    for kw, message in cases:
        got = _dump_notes(g, _elf_note(b"VMCOREINFO\0", VMCI), **kw)
        assert got.notes == b"" and len(got.warnings) == 1 and message in got.warnings[0], kw
    big_desc = struct.pack("<III", 11, 5000, 0) + b"VMCOREINFO\0\0"
    got = _dump_notes(g, big_desc, 64)
    assert got.notes == b"" and got.warnings == ["Invalid guest note header"]
    got = _dump_notes(g, struct.pack("<III", (1 << 20) + 1, 0, 0), 1 << 20)
    assert got.warnings == ["Invalid guest note header"]


def test_one_mib_note_is_accepted() -> None:
    g = Guest("pc")
    desc = b"A=" + b"x" * ((1 << 20) - 40) + b"\n"
    note = _elf_note(b"VMCOREINFO\0", desc)
    assert len(note) <= 1 << 20
    assert _dump_notes(g, note, 1 << 20).notes == note


def test_unregistered_after_reset_is_a_warning() -> None:
    import emu_vmcoreinfo

    g = Guest("pc")
    g.write(note())
    g.m.reset()
    got = emu_vmcoreinfo.guest_note(g.m, g.dev)
    assert got.notes == b"" and "has not registered a note" in got.warnings[0]
