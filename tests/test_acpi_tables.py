"""emu's pc ACPI tables (emu/acpi) against QEMU 7.2's, and the firmware's loader.

- The fw_cfg files ``etc/acpi/tables``, ``etc/acpi/rsdp`` and ``etc/table-loader`` are read
  from both machines over qtest (fw_cfg DMA into guest RAM), with and without the HPET.
  FACS, MADT, HPET and WAET are compared byte for byte; the DSDT node of every device emu
  describes is byte for byte the node QEMU's device model writes (found in QEMU's DSDT by
  its name); FADT, RSDT, RSDP and the loader script field by field, with the differences
  docs/devel/acpi.md explains.
  The DSDT is compared term by term with QEMU's without ACPI PCI hotplug.
- ``iasl -d`` disassembles every table, as the loader leaves it, without an error or warning.
- The firmware's loader (firmware/pc/acpi.c): after emu's firmware ran, the RSDP named in
  the PVH start_info and the tables it points to are in guest memory with the bytes the
  loader script gives (pointers patched, checksums valid).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from test_pc_mptable import pmem
from test_qmp import Vm
from test_qtest import FwCfg, launch

from emu.acpi import aml, linker
from emu.acpi.tables import LOADER_FILE, RSDP_FILE, TABLES_FILE

FILES = (TABLES_FILE, RSDP_FILE, LOADER_FILE)
BUF, DESC = 0x100000, 0x1000
START_INFO = 0x6100
DEVICE_OP = bytes([aml.EXT_OP, aml.DEVICE_OP])


def read_blobs(kind: str, *args: str) -> dict[str, bytes]:
    """The three files, read by fw_cfg DMA (docs/specs/fw_cfg.rst) into guest RAM."""
    qt = launch(kind, "pc", *args)
    try:
        fw = FwCfg(qt, "pc")
        out = {}
        for name in FILES:
            sel, size = fw.find_file(name)
            qt.memwrite(DESC, struct.pack(">IIQ", (sel << 16) | 0x08 | 0x02, size, BUF))
            qt.outl(0x514, 0)
            qt.outl(0x518, int.from_bytes(DESC.to_bytes(4, "big"), "little"))
            out[name] = qt.b64read(BUF, size)
        return out
    finally:
        qt.close()


def split_tables(blob: bytes) -> dict[bytes, tuple[int, bytes]]:
    """signature -> (offset, table) for the tables laid end to end in the blob."""
    out, off = {}, 0
    while off + 8 <= len(blob) and blob[off:off + 4] != bytes(4):
        length = struct.unpack_from("<I", blob, off + 4)[0]
        out[blob[off:off + 4]] = (off, blob[off:off + length])
        off += length
    return out


def device_node(dsdt: bytes, name: str) -> bytes:
    """The encoded Device (NAME) term in a DSDT: its DeviceOp, PkgLength and name segment."""
    seg = name.ljust(4, "_").encode()
    pos = 0
    while (pos := dsdt.find(DEVICE_OP, pos)) >= 0:
        lead = dsdt[pos + 2]
        nbytes = (lead >> 6) + 1
        length = lead & 0x3F if nbytes == 1 else (
            (lead & 0xF) | int.from_bytes(dsdt[pos + 3:pos + 2 + nbytes], "little") << 4)
        if dsdt[pos + 2 + nbytes:pos + 6 + nbytes] == seg:
            return dsdt[pos:pos + 2 + length]
        pos += 2
    raise AssertionError(f"no Device ({name})")


CASES = {
    "nodefaults": (),
    "serial-pvpanic": ("-serial", "null", "-serial", "null", "-device", "pvpanic"),
    "no-hpet": ("-machine", "hpet=off"),
}


def table_list(case: str) -> list[bytes]:
    """QEMU's tables, in its order: the HPET's unless hpet=off."""
    hpet = [] if case == "no-hpet" else [b"HPET"]
    return [b"FACS", b"DSDT", b"FACP", b"APIC", *hpet, b"WAET", b"RSDT"]


@pytest.fixture(scope="module", params=sorted(CASES))
def blobs(request: pytest.FixtureRequest) -> tuple[str, dict[str, bytes], dict[str, bytes]]:
    args = CASES[request.param]
    return request.param, read_blobs("emu", *args), read_blobs("qemu", *args)


def test_sizes_and_facs_madt_hpet_waet_match_qemu(blobs) -> None:
    case, ours, qemu = blobs
    assert [len(ours[f]) for f in FILES] == [len(qemu[f]) for f in FILES] == [0x20000, 20, 0x1000]
    mine, theirs = split_tables(ours[TABLES_FILE]), split_tables(qemu[TABLES_FILE])
    assert list(mine) == list(theirs) == table_list(case)
    for sig in (b"FACS", b"APIC", b"HPET", b"WAET"):
        if sig in theirs:
            assert mine[sig][1] == theirs[sig][1]


#: QEMU without ACPI PCI hotplug, which emu does not model (docs/devel/acpi.md)
NO_PCI_HOTPLUG = ("-global", "PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off",
                  "-global", "PIIX4_PM.acpi-root-pci-hotplug=off")


def pkg_length(data: bytes, pos: int) -> tuple[int, int]:
    """(PkgLength, its size in bytes) at ``pos`` (ACPI 6.4 20.2.4)."""
    lead = data[pos]
    nbytes = (lead >> 6) + 1
    if nbytes == 1:
        return lead & 0x3F, 1
    return (lead & 0xF) | int.from_bytes(data[pos + 1:pos + nbytes], "little") << 4, nbytes


def top_level_terms(body: bytes) -> list[bytes]:
    """The DSDT's top-level terms: QEMU's are all Scopes and Methods."""
    terms, pos = [], 0
    while pos < len(body):
        assert body[pos] in (aml.SCOPE_OP, aml.METHOD_OP), hex(body[pos])
        length, _n = pkg_length(body, pos + 1)
        terms.append(body[pos:pos + 1 + length])
        pos += 1 + length
    return terms


def without_fdc0(term: bytes) -> bytes:
    """QEMU's last term, Scope (\\_SB) { Scope (PCI0) { S00, S08 {...} } }, re-encoded
    without the floppy controller FDC0 in S08 (emu has none)."""
    _len, n = pkg_length(term, 1)
    assert term[1 + n:1 + n + 5] == b"\\_SB_"
    inner = term[1 + n + 5:]
    ilen, inn = pkg_length(inner, 1)
    assert inner[1 + inn:1 + inn + 4] == b"PCI0" and 1 + ilen == len(inner)
    pci0_terms = inner[1 + inn + 4:]
    s08 = device_node(pci0_terms, "S08")
    _slen, sn = pkg_length(s08, 2)
    s08_terms = s08[2 + sn + 4:].replace(device_node(s08, "FDC0"), b"")
    return aml.scope("\\_SB", aml.scope("PCI0", pci0_terms.replace(
        s08, aml.device("S08", s08_terms))))


def test_dsdt_is_qemus_less_what_emu_lacks(blobs) -> None:
    """emu's DSDT is QEMU's (without ACPI PCI hotplug) term for term, less the terms of
    what emu does not have: the debug port DBUG, the CPU hotplug container and its GPE
    handler \\_GPE._E02, and the floppy controller FDC0 in S08."""
    case, ours, _qemu = blobs
    dsdt = split_tables(ours[TABLES_FILE])[b"DSDT"][1]
    theirs = split_tables(read_blobs("qemu", *CASES[case], *NO_PCI_HOTPLUG)[TABLES_FILE])[
        b"DSDT"][1]
    assert dsdt[:36] == theirs[:4] + dsdt[4:8] + theirs[8:36]  # the header but for length
    qemu_terms = top_level_terms(theirs[36:])
    left_out = [t for t in qemu_terms if any(k in t for k in (b"DBUG", b"CPUS"))
                or (t[0] == aml.METHOD_OP and b"_E02" in t)]
    assert len(left_out) == 3
    assert (b"HPET" in theirs) == (case != "no-hpet")
    expected = [t for t in qemu_terms if t not in left_out]
    expected[-1] = without_fdc0(expected[-1])
    assert top_level_terms(dsdt[36:]) == expected
    # the devices emu describes are there, under \\_SB.PCI0 and its ISA bridge S08
    names = ["PCI0", "LNKA", "LNKS", "GPE0", "FWCF", "S00", "KBD", "MOU", "RTC"]
    if case != "no-hpet":
        names += ["HPET"]
    if case == "serial-pvpanic":
        names += ["COM1", "COM2", "PEVT"]
    for name in names:
        assert device_node(dsdt, name) == device_node(theirs, name), name


def test_fadt_fields(blobs) -> None:
    _case, ours, qemu = blobs
    mine = split_tables(ours[TABLES_FILE])[b"FACP"][1]
    theirs = split_tables(qemu[TABLES_FILE])[b"FACP"][1]
    assert len(mine) == len(theirs) == 116 and mine[8] == theirs[8] == 1  # revision 1
    # PM1a event/control blocks and the PM timer: QEMU builds them from the PIIX4's PMBASE,
    # 0 until firmware programs it (SeaBIOS: 0x600, which emu's tables name)
    pm = {56: 0x600, 64: 0x604, 76: 0x608}
    for off, value in pm.items():
        assert struct.unpack_from("<I", mine, off)[0] == value
        assert struct.unpack_from("<I", theirs, off)[0] == value - 0x600
    patched = bytearray(theirs)
    for off, value in pm.items():
        struct.pack_into("<I", patched, off, value)
    # FIRMWARE_CTRL (FACS at offset 0) and DSDT (at 64) are blob offsets in both
    assert mine == bytes(patched)


def test_rsdt_rsdp_and_loader(blobs) -> None:
    case, ours, qemu = blobs
    mine, theirs = split_tables(ours[TABLES_FILE]), split_tables(qemu[TABLES_FILE])
    pointed = [s for s in table_list(case) if s not in (b"FACS", b"DSDT", b"RSDT")]
    rsdt = mine[b"RSDT"][1]
    assert rsdt[:36] == theirs[b"RSDT"][1][:36].replace(  # the header: length, checksum 0
        theirs[b"RSDT"][1][4:8], struct.pack("<I", 36 + 4 * len(pointed)), 1)
    for table in (mine, theirs):
        assert struct.unpack_from(f"<{len(pointed)}I", table[b"RSDT"][1], 36) == tuple(
            table[s][0] for s in pointed)
    # the RSDP: revision 0, the RSDT's offset, checksum left to the loader
    assert ours[RSDP_FILE][:16] == qemu[RSDP_FILE][:16]
    assert struct.unpack_from("<I", ours[RSDP_FILE], 16)[0] == mine[b"RSDT"][0]

    def shape(cmds: list[linker.Command], tables: dict) -> list[tuple]:
        at = {off: sig for sig, (off, _t) in tables.items()}
        out = []
        for c in cmds:
            if c.kind == linker.ADD_CHECKSUM and c.file == TABLES_FILE:
                out.append((c.kind, c.file, at[c.start], c.offset - c.start, c.length
                            if at[c.start] not in (b"DSDT", b"RSDT") else None))
            elif c.kind == linker.ADD_POINTER and c.file == TABLES_FILE:
                sig = next(s for o, s in sorted(at.items()) if o <= c.offset
                           and c.offset < o + len(tables[s][1]))
                out.append((c.kind, sig, c.src, c.size))
            else:
                out.append((c.kind, c.file, c.src, c.align, c.zone, c.offset, c.size, c.start,
                            c.length if c.file == RSDP_FILE else None))
        return out
    # the loader script: QEMU's commands, each table's at its own offset
    assert shape(linker.parse(ours[LOADER_FILE]), mine) == shape(
        linker.parse(qemu[LOADER_FILE]), theirs)


def run_loader(blobs: dict[str, bytes], base: dict[int, int]) -> dict[str, tuple[int, bytearray]]:
    """The script run in Python, each zone's files placed from ``base[zone]`` upwards."""
    nxt = dict(base)

    def allocate(size: int, align: int, zone: int) -> int:
        addr = (nxt[zone] + align - 1) & ~(align - 1)
        nxt[zone] = addr + size
        return addr
    return linker.run(blobs[LOADER_FILE], blobs, allocate)


@pytest.mark.skipif(shutil.which("iasl") is None, reason="iasl (acpica-tools) not installed")
def test_iasl_disassembles_every_table(blobs, tmp_path: Path) -> None:
    _case, ours, _qemu = blobs
    placed = run_loader(ours, {linker.ZONE_HIGH: 0x7FE0000, linker.ZONE_FSEG: 0x9FC10})
    tables = bytes(placed[TABLES_FILE][1])
    # iasl 20200925 takes no stand-alone RSDP ("does not contain a valid ACPI table", QEMU's
    # as well): its checksum is checked instead (ACPI 6.4 5.2.5.3)
    assert sum(placed[RSDP_FILE][1]) & 0xFF == 0
    files = {}
    for sig, (_off, data) in split_tables(tables).items():
        files[sig.decode().lower()] = data
    for name, data in files.items():
        path = tmp_path / f"{name}.dat"
        path.write_bytes(data)
        result = subprocess.run(["iasl", "-d", path.name], capture_output=True, text=True,
                                cwd=tmp_path)
        out = result.stdout + result.stderr
        assert result.returncode == 0, out
        assert "Error" not in out and "Warning" not in out, out
        assert (tmp_path / f"{name}.dsl").stat().st_size > 0
    dsl = (tmp_path / "dsdt.dsl").read_text()
    assert 'Name (_HID, "QEMU0002")' in dsl


def test_firmware_runs_the_loader(tmp_path: Path) -> None:
    """The tables in guest memory after emu's firmware ran are the script's output."""
    blobs = read_blobs("emu", "-serial", "null")
    vm = Vm("emu", "pc", "halt", tmp_path, wait_for=b"halt:")
    try:
        info = pmem(vm, tmp_path, START_INFO, 0x38)
        rsdp_addr = struct.unpack_from("<Q", info, 32)[0]  # hvm_start_info.rsdp_paddr
        assert 0x9FC00 < rsdp_addr < 0xA0000 and rsdp_addr % 16 == 0  # after the MP table
        rsdp = pmem(vm, tmp_path, rsdp_addr, 20)
        assert rsdp[:8] == b"RSD PTR " and sum(rsdp) & 0xFF == 0
        rsdt_addr = struct.unpack_from("<I", rsdp, 16)[0]
        tables = split_tables(blobs[TABLES_FILE])
        base = rsdt_addr - tables[b"RSDT"][0]
        assert base % 64 == 0 and base + 0x20000 <= 128 << 20  # the top of RAM
        placed = run_loader(blobs, {linker.ZONE_HIGH: base, linker.ZONE_FSEG: rsdp_addr})
        assert placed[TABLES_FILE][0] == base and placed[RSDP_FILE][0] == rsdp_addr
        assert rsdp == bytes(placed[RSDP_FILE][1])
        memory = pmem(vm, tmp_path, base, 0x20000)
        assert memory == bytes(placed[TABLES_FILE][1])
        for sig, (_off, data) in split_tables(memory).items():
            if sig != b"FACS":
                assert sum(data) & 0xFF == 0, sig
        rsdt = split_tables(memory)[b"RSDT"][1]
        fadt_addr, madt_addr = struct.unpack_from("<2I", rsdt, 36)
        assert memory[fadt_addr - base:fadt_addr - base + 4] == b"FACP"
        assert memory[madt_addr - base:madt_addr - base + 4] == b"APIC"
        facs, dsdt = struct.unpack_from("<2I", memory, fadt_addr - base + 36)
        assert (facs, dsdt) == (base, base + 64)
    finally:
        vm.cmd("quit")
        vm.close()
