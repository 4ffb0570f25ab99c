"""virt's interrupt description in the device tree, and ``gic-version=``, against QEMU 7.2.

QEMU's tree (``-M virt,dumpdtb=FILE``) has nodes for devices emu does not have; the nodes emu
writes for the GIC, the timer, the PL011 and the root's ``interrupt-parent`` must carry
QEMU's properties with QEMU's values (phandles included). QEMU's libfdt adds properties in
front of each other, so the comparison is by name, not by byte offset.
"""

from __future__ import annotations

from pathlib import Path

import libfdt
import pytest
from conftest import run_emu, run_qemu

from emu.boards.virt_fdt import build_virt_fdt

BASE = ["-cpu", "cortex-a57", "-m", "128M", "-display", "none", "-nodefaults"]


def _props(fdt: libfdt.Fdt, path: str) -> dict[str, bytes]:
    node = fdt.path_offset(path)
    out = {}
    offset = fdt.first_property_offset(node, libfdt.QUIET_NOTFOUND)
    while offset >= 0:
        prop = fdt.get_property_by_offset(offset)
        out[prop.name] = bytes(prop)
        offset = fdt.next_property_offset(offset, libfdt.QUIET_NOTFOUND)
    return out


def _subnodes(fdt: libfdt.Fdt, path: str) -> list[str]:
    node = fdt.path_offset(path)
    names = []
    child = fdt.first_subnode(node, libfdt.QUIET_NOTFOUND)
    while child >= 0:
        names.append(fdt.get_name(child))
        child = fdt.next_subnode(child, libfdt.QUIET_NOTFOUND)
    return names


def _qemu_dtb(tmp_path: Path, gic: str | None) -> libfdt.Fdt:
    dtb = tmp_path / f"qemu-{gic}.dtb"
    machine = "virt" + (f",gic-version={gic}" if gic else "") + f",dumpdtb={dtb}"
    result = run_qemu("virt", ["-M", machine, *BASE])
    assert result.returncode == 0, result.stderr
    return libfdt.Fdt(dtb.read_bytes())


def _emu_dtb(gic_version: int) -> libfdt.Fdt:
    return libfdt.Fdt(build_virt_fdt(ram_base=0x40000000, ram_size=128 << 20,
                                     cpu_model="cortex-a57", uart_base=0x09000000,
                                     fw_cfg_base=0x09020000, bootargs="",
                                     gic_version=gic_version))


@pytest.mark.parametrize("gic, version", [(None, 2), ("2", 2), ("3", 3), ("max", 3)])
def test_interrupt_nodes_match_qemu(tmp_path: Path, gic: str | None, version: int) -> None:
    qemu, emu = _qemu_dtb(tmp_path, gic), _emu_dtb(version)
    assert _props(emu, "/")["interrupt-parent"] == _props(qemu, "/")["interrupt-parent"]
    assert _props(emu, "/intc@8000000") == _props(qemu, "/intc@8000000")
    # QEMU's MSI frame (v2m / ITS) is the only child: emu has the GICv2m, not the ITS
    assert _subnodes(qemu, "/intc@8000000") == ["v2m@8020000" if version == 2
                                                  else "its@8080000"]
    if version == 2:
        assert _subnodes(emu, "/intc@8000000") == ["v2m@8020000"]
        assert _props(emu, "/intc@8000000/v2m@8020000") == \
            _props(qemu, "/intc@8000000/v2m@8020000")
    else:
        assert _subnodes(emu, "/intc@8000000") == []
    assert emu.totalsize() == qemu.totalsize() == len(emu.as_bytearray()) == 0x100000
    assert _props(emu, "/timer") == _props(qemu, "/timer")
    assert _props(emu, "/pl011@9000000") == _props(qemu, "/pl011@9000000")


def test_the_board_writes_the_gicv2_tree(tmp_path: Path) -> None:
    """The tree the virt board publishes (fw_cfg ``etc/fdt``) for the default GIC."""
    from emu.config import MachineConfig
    from emu.machine import Machine

    m = Machine(MachineConfig(machine="virt", accel="qtest"))
    try:
        tree = libfdt.Fdt(m.board.fdt)
        qemu = _qemu_dtb(tmp_path, None)
        assert _props(tree, "/intc@8000000") == _props(qemu, "/intc@8000000")
        assert _props(tree, "/intc@8000000/v2m@8020000") == \
            _props(qemu, "/intc@8000000/v2m@8020000")
        assert _props(tree, "/timer") == _props(qemu, "/timer")
    finally:
        m.close()


@pytest.mark.parametrize("value", ["bad", "", "V2", "02", "5"])
def test_bad_gic_version_is_refused_like_qemu(value: str) -> None:
    args = ["-M", f"virt,gic-version={value}", *BASE]
    emu, qemu = run_emu(args), run_qemu("virt", args)
    assert qemu.returncode == emu.returncode == 1
    assert qemu.stderr.decode() == ("qemu-system-aarch64: Invalid gic-version value\n"
                                    "Valid values are 3, 2, host, max.\n")
    assert emu.stderr.decode() == "emu: Invalid gic-version value\n" \
                                  "Valid values are 3, 2, host, max.\n"


@pytest.mark.parametrize("value", ["host", "4"])
def test_gic_versions_tcg_refuses_are_refused_like_qemu(value: str) -> None:
    args = ["-M", f"virt,gic-version={value}", *BASE]
    emu, qemu = run_emu(args), run_qemu("virt", args)
    assert qemu.returncode == emu.returncode == 1
    message = qemu.stderr.decode().removeprefix("qemu-system-aarch64: ")
    assert message in ("gic-version=host requires KVM\n",
                       "gic-version=4 requires virtualization enabled\n")
    assert emu.stderr.decode() == "emu: " + message


@pytest.mark.parametrize("value", ["3", "max"])
def test_the_board_writes_the_gicv3_tree(tmp_path: Path, value: str) -> None:
    """``gic-version=3`` and ``max`` give the board a GICv3, and its published tree
    describes it as QEMU's does (distributor and one redistributor region)."""
    from emu.config import MachineConfig
    from emu.machine import Machine

    m = Machine(MachineConfig(machine="virt", accel="qtest", gic_version=value))
    try:
        assert m.board.gic_version == 3
        tree = libfdt.Fdt(m.board.fdt)
        qemu = _qemu_dtb(tmp_path, value)
        assert _props(tree, "/intc@8000000") == _props(qemu, "/intc@8000000")
        assert _props(tree, "/timer") == _props(qemu, "/timer")
    finally:
        m.close()


def test_gic_version_is_not_a_pc_property() -> None:
    result = run_emu(["-M", "pc,gic-version=2", "-display", "none"])
    assert result.returncode == 1
    assert result.stderr.decode() == \
        "emu: Property 'pc-i440fx-7.2-machine.gic-version' not found\n"
