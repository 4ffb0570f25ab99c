"""What the boards publish through fw_cfg, item by item against QEMU 7.2 over qtest.

``etc/e820`` is compared byte for byte for every x86 ``-cpu`` model emu accepts (QEMU reserves
the AMD HyperTransport range first for AMD models with 40 address bits, hw/i386/pc.c
pc_memory_init), below and above 3 GiB of RAM. The file directories are compared whole: every
file emu publishes has QEMU's name, size and contents, and the files QEMU has beyond them are
exactly the ones that describe hardware emu does not model (SMBIOS, the kvmvapic ROM, and
on virt ACPI). The pc's ACPI files differ from QEMU's by the tables
emu leaves out: tests/test_acpi_tables.py compares them.
"""

from __future__ import annotations

import struct

import pytest
from test_qtest import FwCfg, launch

from emu.cpu import create_cpu

X86_MODELS = sorted(create_cpu("x86_64", "qemu64").models)
#: QEMU 7.2 files emu leaves out, and why (emu/boards/firmware_config.py add_pc_items)
NOT_MODELLED = {
    "pc": {"etc/tpm/log",  # the TPM event log (no TPM)
           "etc/smbios/smbios-anchor", "etc/smbios/smbios-tables",  # SMBIOS
           "genroms/kvmvapic.bin"},  # the vapic option ROM, for KVM's TPR patching
    "virt": {"etc/acpi/rsdp", "etc/acpi/tables", "etc/table-loader", "etc/tpm/log",
             "etc/smbios/smbios-anchor", "etc/smbios/smbios-tables"},
}


def e820(kind: str, *args: str) -> list[tuple[int, int, int]]:
    qt = launch(kind, "pc", *args)
    try:
        raw = FwCfg(qt, "pc").get_file("etc/e820")
    finally:
        qt.close()
    return list(struct.iter_unpack("<QQI", raw))


@pytest.mark.parametrize("model", X86_MODELS)
def test_e820_matches_qemu_for_each_cpu_model(model: str) -> None:
    ours, qemu = (e820(kind, "-cpu", model, "-m", "5G") for kind in ("emu", "qemu"))
    assert ours == qemu
    assert (0x100000000, 0x80000000, 1) in ours  # RAM above 4 GiB


@pytest.mark.parametrize("mem", ["128M", "3G", "3584M", "8G"])
def test_e820_matches_qemu_for_ram_sizes(mem: str) -> None:
    ours, qemu = (e820(kind, "-m", mem) for kind in ("emu", "qemu"))
    assert ours == qemu
    assert ours[0] == (0xFD00000000, 0x300000000, 2)  # qemu64: the HyperTransport range


@pytest.mark.parametrize("machine", ["pc", "virt"])
def test_file_directory_matches_qemu(machine: str) -> None:
    files: dict[str, dict[str, bytes]] = {}
    for kind in ("emu", "qemu"):
        qt = launch(kind, machine)
        try:
            fw = FwCfg(qt, machine)
            files[kind] = {name: fw.get(sel, size) if size <= 4096 else b""
                           for name, (sel, size) in fw.files().items()}
        finally:
            qt.close()
    ours, qemu = files["emu"], files["qemu"]
    ours.pop("etc/fdt", None)  # virt's device tree: compared in the device-tree tests
    qemu.pop("etc/fdt", None)
    for name in ("etc/acpi/rsdp", "etc/table-loader"):  # tests/test_acpi_tables.py
        if machine == "pc":
            assert len(ours.pop(name)) == len(qemu.pop(name))
    assert set(qemu) - set(ours) == NOT_MODELLED[machine]
    assert set(ours) <= set(qemu)
    for name, data in ours.items():
        assert data == qemu[name], name
    assert {"bootorder", "bios-geometry"} <= set(ours)
