"""The pc firmware's memory map and Intel MP table, compared with what SeaBIOS 1.16 gives on
QEMU 7.2.

- The MP table is read from guest memory with QMP ``pmemsave`` on both machines, after the
  firmware ran, found as the MP specification 1.4 (section 4) says an OS finds it, and parsed
  here; its entries are compared with QEMU's. Where emu differs on purpose the test says why
  (firmware/pc/mptable.c): emu's pc has no PCI bus, so QEMU's PCI bus entry and PCI interrupt
  entries have no counterpart and emu's ISA bus is bus 0; the floating pointer lies in the
  last KiB of base memory (emu's f-segment is ROM), QEMU's in the f-segment.
- A Linux kernel boots on both: the BIOS-e820 lines for several RAM sizes, the MP table lines
  and the IO-APIC timer set-up lines must be QEMU's.
"""

from __future__ import annotations

import re
import struct
import subprocess
import time
from pathlib import Path

import pytest
from conftest import run_emu, run_qemu
from linux_boot import linux_args
from test_qmp import Vm

MP_FLOATING = struct.Struct("<4sIBBB5s")
MP_CONFIG = struct.Struct("<4sHBB8s12sIHHIHBB")
ENTRY_SIZE = {0: 20, 1: 8, 2: 8, 3: 8, 4: 8}


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def pmem(vm: Vm, tmp: Path, addr: int, size: int) -> bytes:
    path = tmp / f"mem-{addr:x}"
    reply = vm.cmd("pmemsave", val=addr, size=size, filename=str(path))
    assert "return" in reply, reply
    return path.read_bytes()


def find_floating(vm: Vm, tmp: Path) -> tuple[int, bytes] | None:
    """The MP floating pointer where the spec says to look: the last KiB of base memory and
    the BIOS ROM area 0xf0000-0xfffff (no EBDA pointer is set on either machine's BDA for
    the first KiB of an EBDA to differ from the former), on 16-byte boundaries, with its
    signature, length 1 and a zero checksum."""
    for base, size in ((0x9FC00, 0x400), (0xF0000, 0x10000)):
        data = pmem(vm, tmp, base, size)
        for off in range(0, size, 16):
            raw = data[off:off + 16]
            if raw[:4] == b"_MP_" and raw[8] == 1 and checksum(raw) == 0:
                return base + off, raw
    return None


def read_mptable(vm: Vm, tmp: Path) -> dict:
    deadline = time.monotonic() + 30
    while (found := find_floating(vm, tmp)) is None:  # QEMU: until SeaBIOS's POST wrote it
        assert time.monotonic() < deadline, "no MP floating pointer"
        time.sleep(0.2)
    addr, raw = found
    _sig, physaddr, _length, spec_rev, _sum, features = MP_FLOATING.unpack(raw)
    header = pmem(vm, tmp, physaddr, MP_CONFIG.size)
    (sig, table_len, spec, _csum, oemid, productid, oemptr, oemsize, count, lapic, ext_len,
     ext_sum, _res) = MP_CONFIG.unpack(header)
    table = pmem(vm, tmp, physaddr, table_len)
    assert sig == b"PCMP" and checksum(table) == 0
    entries = []
    off = MP_CONFIG.size
    for _ in range(count):
        kind = table[off]
        entries.append(table[off:off + ENTRY_SIZE[kind]])
        off += ENTRY_SIZE[kind]
    assert off == table_len
    return {"floating": addr, "physaddr": physaddr, "spec_rev": spec_rev, "features": features,
            "header": (spec, oemid, productid, oemptr, oemsize, lapic, ext_len, ext_sum),
            "entries": entries}


def decode(entries: list[bytes]) -> dict:
    """The entries by kind; interrupt entries with their source bus named by its type."""
    buses = {e[1]: e[2:8] for e in entries if e[0] == 1}
    out: dict = {"cpus": [], "buses": [buses[k] for k in sorted(buses)], "ioapics": [],
                 "intsrc": [], "lint": []}
    for e in entries:
        if e[0] == 0:
            _t, apicid, ver, flags, sig, feat = struct.unpack_from("<BBBBII", e)
            out["cpus"].append((apicid, ver, flags, sig, feat))
        elif e[0] == 2:
            out["ioapics"].append(struct.unpack("<BBBBI", e)[1:])
        elif e[0] in (3, 4):
            _t, irqtype, irqflag, bus, busirq, dstapic, dstirq = struct.unpack("<BBHBBBB", e)
            name = "intsrc" if e[0] == 3 else "lint"
            out[name].append((irqtype, irqflag, buses[bus], busirq, dstapic, dstirq))
    return out


def test_mp_table_entries_match_qemu(tmp_path: Path) -> None:
    tables = {}
    for binary in ("emu", "qemu"):
        vm = Vm(binary, "pc", "halt", tmp_path, wait_for=b"halt:")
        try:
            tables[binary] = read_mptable(vm, tmp_path)
        finally:
            vm.cmd("quit")
            vm.close()
    ours, theirs = tables["emu"], tables["qemu"]
    # SeaBIOS puts the configuration table right after the pointer in the f-segment; emu
    # right after it in the last KiB of base memory (0x9fc00)
    assert 0xF0000 <= theirs["floating"] < 0x100000
    assert ours["floating"] == 0x9FC00
    for t in (ours, theirs):
        assert t["physaddr"] == t["floating"] + 16
    assert ours["spec_rev"] == theirs["spec_rev"] == 4
    assert ours["features"] == theirs["features"] == bytes(5)
    assert ours["header"] == theirs["header"]
    assert theirs["header"][1:3] == (b"BOCHSCPU", b"0.1         ")

    mine, qemu = decode(ours["entries"]), decode(theirs["entries"])
    # QEMU's PCI bus (bus 0, then ISA is bus 1) and the interrupts of its PCI devices
    assert qemu["buses"] == [b"PCI   ", b"ISA   "]
    assert mine["buses"] == [b"ISA   "]
    assert ours["entries"][len(mine["cpus"])][:2] == b"\x01\x00"  # ISA is emu's bus 0
    qemu_isa = [e for e in qemu["intsrc"] if e[2] == b"ISA   "]
    assert all(e[2] == b"PCI   " for e in qemu["intsrc"][:len(qemu["intsrc"]) - len(qemu_isa)])
    assert mine["intsrc"] == qemu_isa
    assert [e[3] for e in mine["intsrc"]] == [0, 1, 3, 4, 6, 7, 8, 12, 13, 14, 15]
    assert mine["intsrc"][0][5] == 2  # IRQ0 -> pin 2
    assert mine["lint"] == qemu["lint"]
    assert mine["ioapics"] == qemu["ioapics"] == [(0, 0x11, 1, 0xFEC00000)]
    # one CPU: the BSP, enabled. Its signature and features are each machine's CPUID leaf 1
    # (emu's qemu64 reports family 6 model 6, QEMU 7.2's family 15 model 107), not compared.
    assert [c[:3] for c in mine["cpus"]] == [c[:3] for c in qemu["cpus"]] == [(0, 0x14, 3)]
    for cpus in (mine["cpus"], qemu["cpus"]):
        assert cpus[0][4] & (1 << 9)  # CPUID.1:EDX.APIC


def pc_linux_args(mem: str) -> list[str]:
    return [*linux_args("pc", "restart", memory=mem), "-no-reboot"]


def kernel_log(result: subprocess.CompletedProcess) -> list[str]:
    text = result.stdout.decode(errors="replace")
    assert "emu-linux init" in text, text[-2000:]
    return [re.sub(r"^\[ *[0-9.]+\] ", "", line) for line in text.splitlines()]


MP_LINES = ("Intel MultiProcessor", "MPTABLE:", "Processor #", "IOAPIC[", "Processors:",
            "APIC: ", "..TIMER:", "CPU: ")


@pytest.mark.parametrize("mem", ["128M", "256M", "1G", "5G"])
def test_linux_sees_qemu_memory_map_and_mp_table(mem: str) -> None:
    ours = kernel_log(run_emu(pc_linux_args(mem), timeout=300))
    theirs = kernel_log(run_qemu("pc", pc_linux_args(mem), timeout=120))
    e820 = [line for line in theirs if line.startswith("BIOS-e820:")]
    assert e820 == [line for line in ours if line.startswith("BIOS-e820:")]
    assert "BIOS-e820: [mem 0x000000000009fc00-0x00000000000fffff] reserved" in e820
    assert "BIOS-e820: [mem 0x00000000fffc0000-0x00000000ffffffff] reserved" in e820

    found = [line for line in ours if line.startswith("found SMP MP-table")]
    assert found == ["found SMP MP-table at [mem 0x0009fc00-0x0009fc0f]"]  # QEMU's: f-segment
    assert re.fullmatch(r"found SMP MP-table at \[mem 0x000f[0-9a-f]{4}-0x000f[0-9a-f]{4}\]",
                        next(line for line in theirs if line.startswith("found SMP")))

    def mp(log: list[str]) -> list[str]:
        # the CPU line differs in family/model (each machine's CPUID), not in being there
        return [re.sub(r" \(family.*", "", line) for line in log if line.startswith(MP_LINES)]
    assert mp(ours) == mp(theirs)
    assert "APIC: Switch to symmetric I/O mode setup" in mp(ours)
    assert "..TIMER: vector=0x30 apic1=0 pin1=2 apic2=-1 pin2=-1" in mp(ours)
    assert not [line for line in ours if "MP-BIOS bug" in line or "not detected" in line]

