"""Paging dumps (``dump-guest-memory`` with ``paging: true``): PT_LOADs by guest-virtual
address from the guest's page tables, merged as QEMU's memory_mapping.c merges them.

Judged by gdb (it reads a core's memory by p_vaddr) on the paging image, whose pages at
0x8000000000 hold data it computes, and by QEMU 7.2's paging dump of the vmcoreinfo image
(its x86_64 identity map of 2 MiB pages). QEMU ORs 0xffff << 48 into every x86_64 address
(lower-half ones come out non-canonical); emu's are canonical, so QEMU's are compared with
their top 16 bits cleared.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import MACHINES, boot_args, image, qmp_connect, read_until
from elftools.elf.elffile import ELFFile

from emu.config import DeviceSpec, MachineConfig
from emu.machine import Machine

GDB = {"pc": "gdb", "virt": "gdb-multiarch"}
REGION = 0x8000000000
PAGES = 256
K = 0x9E3779B97F4A7C15
M64 = (1 << 64) - 1


def expected_word(p: int, i: int) -> int:
    """Word ``i`` of page ``p`` of the paging image after its run (guest_images/README.md
    "paging"): its initial data, ``p`` in word 1 of the second half's pages, ``~p`` in
    word 2 of every 4th page of the first half."""
    half = PAGES // 2
    if i == 1 and p >= half:
        return p
    if i == 2 and p < half and p % 4 == 0:
        return ~p & M64
    return (((p << 32) | i) * K) & M64


def loads(path: Path) -> list[dict]:
    with open(path, "rb") as f:
        return [dict(s.header) for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"]


def read_virt(path: Path, vaddr: int, size: int) -> bytes:
    """Bytes at a virtual address through the PT_LOADs, as a debugger reads them."""
    for seg in loads(path):
        if seg["p_vaddr"] <= vaddr and vaddr + size <= seg["p_vaddr"] + seg["p_filesz"]:
            with open(path, "rb") as f:
                f.seek(seg["p_offset"] + vaddr - seg["p_vaddr"])
                return f.read(size)
    raise AssertionError(f"0x{vaddr:x} is in no PT_LOAD")


@pytest.fixture(scope="module")
def paging_dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The paging image run to its end on each machine, then dumped with paging."""
    work = tmp_path_factory.mktemp("paging")
    out = {}
    for machine in ("pc", "virt"):
        devices = [] if machine == "virt" else [
            DeviceSpec("isa-debug-exit,iobase=0xf4,iosize=0x04", "isa-debug-exit", {})]
        m = Machine(MachineConfig(machine=machine, kernel=image(machine, "paging"),
                                  serial=[f"file:{work / f'{machine}.txt'}"], devices=devices,
                                  cpu="cortex-a57" if machine == "virt" else None))
        assert m.run() == (1 if machine == "pc" else 0)
        assert b"checksum=0xe254d172717e8aa5" in (work / f"{machine}.txt").read_bytes()
        out[machine] = work / f"{machine}.core"
        m.dump(str(out[machine]), paging=True)
        m.close()
    return out


def test_the_demand_paged_region_is_at_its_virtual_address(paging_dumps, machine: str) -> None:
    path = paging_dumps[machine]
    for p in range(PAGES):
        raw = read_virt(path, REGION + p * 4096, 32)
        words = [int.from_bytes(raw[i * 8 : i * 8 + 8], "little") for i in range(4)]
        assert words == [expected_word(p, i) for i in range(4)], p
    region = [s for s in loads(path) if REGION <= s["p_vaddr"] < REGION + PAGES * 4096]
    # (the handler takes its pages from a pool in fault order: two runs, one per half)
    assert sum(s["p_memsz"] for s in region) == PAGES * 4096
    for s in loads(path):
        assert s["p_filesz"] <= s["p_memsz"] and s["p_align"] == 0 and s["p_flags"] == 0


def test_gdb_reads_the_region(paging_dumps, machine: str) -> None:
    addrs = [REGION, REGION + 5 * 4096, REGION + 200 * 4096 + 8]
    cmd = [GDB[machine], "-batch", "-c", str(paging_dumps[machine])]
    for a in addrs:
        cmd += ["-ex", f"x/1gx {a:#x}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    got = [int(v, 16) for v in re.findall(r"^0x[0-9a-f]+:\s+(0x[0-9a-f]+)$", run.stdout, re.M)]
    assert got == [expected_word(0, 0), expected_word(5, 0), expected_word(200, 1)], \
        run.stdout + run.stderr


def _emu_paging_dump(machine: str, path: Path, **options: int) -> None:
    m = Machine(MachineConfig(machine=machine, kernel=image(machine, "vmcoreinfo"),
                              serial=[f"file:{path}.txt"], append="halt",
                              devices=[DeviceSpec("vmcoreinfo", "vmcoreinfo", {})],
                              cpu="cortex-a57" if machine == "virt" else None))
    t = threading.Thread(target=m.run)
    t.start()
    deadline = time.monotonic() + 60
    while not m.call_soon(lambda: m.halted).result(timeout=30):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    m.call_soon(lambda: m.dump(str(path), paging=True, **options)).result(timeout=60)
    m.call_soon(lambda: m.quit(0)).result(timeout=10)
    t.join(10)
    m.close()


def _qemu_paging_dumps(path: Path, filtered: Path) -> None:
    sock = str(path) + ".qmp"
    proc = subprocess.Popen([MACHINES["pc"][1], *boot_args(
        "pc", "vmcoreinfo", "-device", "vmcoreinfo", "-append", "halt", "-qmp",
        f"unix:{sock},server=on,wait=off")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        read_until(proc, b"vmcoreinfo: done\n")
        qmp = qmp_connect(sock)
        for target, extra in ((path, {}), (filtered, {"begin": 0x100000, "length": 0x3000})):
            reply = qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
                "paging": True, "protocol": f"file:{target}", **extra}})
            assert reply == {"return": {}}, reply
        qmp.close()
    finally:
        proc.kill()
        proc.wait()


def test_x86_mappings_are_qemus(tmp_path: Path) -> None:
    """The vmcoreinfo image's identity map (2 MiB pages over the first GiBs): QEMU's list,
    its addresses made canonical, without its VGA memory (RAM emu's pc does not have)."""
    qemu, qemu_f = tmp_path / "qemu.core", tmp_path / "qemu-f.core"
    emu, emu_f = tmp_path / "emu.core", tmp_path / "emu-f.core"
    _qemu_paging_dumps(qemu, qemu_f)
    _emu_paging_dump("pc", emu)
    _emu_paging_dump("pc", emu_f, begin=0x100000, length=0x3000)

    def table(path: Path, qemu: bool) -> list[tuple[int, int, int, int]]:
        return [(s["p_vaddr"] & ((1 << 48) - 1) if qemu else s["p_vaddr"], s["p_paddr"],
                 s["p_filesz"], s["p_memsz"]) for s in loads(path)
                if not (qemu and 0xFD000000 <= s["p_paddr"] < 0xFE000000)]

    assert table(emu, False) == table(qemu, True) == [(0, 0, 0xA0000, 0x8000000)]
    assert table(emu_f, False) == table(qemu_f, True) == [(0x100000, 0x100000, 0x3000, 0x3000)]
    # the memory they point at is the physical memory's
    marker = b"emu-vmcoreinfo-marker: guest memory is readable\0"
    at = int(re.search(rb"marker at 0x([0-9a-f]+)", Path(f"{emu}.txt").read_bytes())[1], 16)
    assert read_virt(emu_f, at, len(marker)) == marker
    assert read_virt(qemu_f, at | 0xFFFF << 48, len(marker)) == marker


def test_without_paging_in_the_guest_the_mappings_are_physical(tmp_path: Path) -> None:
    """virt's vmcoreinfo image runs with the MMU off: identity mappings of RAM, as QEMU
    gives when no CPU has paging on."""
    path = tmp_path / "virt.core"
    _emu_paging_dump("virt", path)
    assert [(s["p_vaddr"], s["p_paddr"], s["p_filesz"]) for s in loads(path)] == \
        [(0x40000000, 0x40000000, 128 << 20)]


def test_the_mapping_list_merges_as_qemus() -> None:
    """memory_mapping_list_add_merge_sorted's cases (softmmu/memory_mapping.c)."""
    from emu.dump.mapping import MappingList

    def state(ml: MappingList) -> list[tuple[int, int, int]]:
        return [(m.phys_addr, m.virt_addr, m.length) for m in ml.mappings]

    ml = MappingList()
    ml.add_merge_sorted(0x5000, 0x1000, 0x1000)
    ml.add_merge_sorted(0x6000, 0x2000, 0x1000)  # continues the last one in both
    assert state(ml) == [(0x5000, 0x1000, 0x2000)]
    ml.add_merge_sorted(0x1000, 0x9000, 0x1000)  # before it: a new one, kept sorted
    assert state(ml) == [(0x1000, 0x9000, 0x1000), (0x5000, 0x1000, 0x2000)]
    ml.add_merge_sorted(0x5000, 0x7000, 0x1000)  # same physical page, another address:
    assert state(ml) == [(0x1000, 0x9000, 0x1000), (0x5000, 0x7000, 0x1000),  # before
                         (0x5000, 0x1000, 0x2000)]
    ml.add_merge_sorted(0x4000, 0x0, 0x1000)  # touches 0x5000 at the same offset: merged
    # (QEMU 7.2 would leave it at physical 0x5000: emu moves both starts)
    assert state(ml)[1] == (0x4000, 0x0, 0x3000)
    ml.filter(0x5800, 0x1000)
    assert state(ml) == [(0x5800, 0x1800, 0x1000), (0x5800, 0x7800, 0x800)]


class _Memory:
    """Page tables in a dict of 4 KiB frames, for walks without a guest."""

    def __init__(self) -> None:
        self.frames: dict[int, bytearray] = {}

    def set(self, table: int, index: int, entry: int, size: int = 8) -> None:
        frame = self.frames.setdefault(table, bytearray(4096))
        frame[index * size : (index + 1) * size] = entry.to_bytes(size, "little")

    def read(self, addr: int, size: int) -> bytes | None:
        frame = self.frames.get(addr & ~0xFFF)
        return None if frame is None else bytes(frame[addr & 0xFFF : (addr & 0xFFF) + size])


def _walk(regs, mem: _Memory, ram_below: int = 1 << 40) -> list[tuple[int, int, int]]:
    from emu.dump.mapping import MappingList, x86_mappings

    out = MappingList()
    assert x86_mappings(regs, mem.read, lambda a: a < ram_below, out)
    return [(m.virt_addr, m.phys_addr, m.length) for m in out.mappings]


def test_x86_walks_of_each_paging_mode() -> None:
    """Tables built by hand (Intel SDM vol. 3A 4.3-4.5): which leaves become which
    mappings, with canonical addresses."""
    from emu.dump.mapping import CR0_PG, CR4_LA57, CR4_PAE, CR4_PSE, X86Paging

    p, rw = 1, 2
    # 5-level: PML5[0] -> PML4[1] -> PDPT[0] -> PD[0] 2 MiB page; PML5[511] -> ... 4 KiB
    mem = _Memory()
    mem.set(0x1000, 0, 0x2000 | p | rw)
    mem.set(0x2000, 1, 0x3000 | p | rw)
    mem.set(0x3000, 0, 0x4000 | p | rw)
    mem.set(0x4000, 0, 0x200000 | p | rw | 0x80 | 1 << 63)  # NX is not an address bit
    mem.set(0x1000, 511, 0x5000 | p)
    mem.set(0x5000, 511, 0x6000 | p)
    mem.set(0x6000, 511, 0x7000 | p)
    mem.set(0x7000, 511, 0x8000 | p)
    mem.set(0x8000, 7, 0x9000 | p)
    mem.set(0x8000, 8, 0xA000 | p)  # continues 0x9000 in both spaces: merged
    mem.set(0x8000, 9, 0xFFFFF000)  # not present
    la57 = X86Paging(CR0_PG, 0x1000, CR4_PAE | CR4_LA57, True)
    # (sorted by physical address; 511 at every level, then 7: bit 56 set, so 63:57 too)
    assert _walk(la57, mem) == [(0xFFFFFFFFFFE07000, 0x9000, 0x2000),
                                (1 << 39, 0x200000, 0x200000)]
    # 4-level: the same tables from PML4 0x2000: the lower half stays low (QEMU: 0xffff...)
    four = X86Paging(CR0_PG, 0x2000, CR4_PAE, True)
    assert _walk(four, mem) == [(1 << 39, 0x200000, 0x200000)]
    # a page whose start is not RAM is left out, as QEMU's I/O check does
    assert _walk(four, mem, ram_below=0x200000) == []
    # PAE (32-bit): 4 PDPTEs, 2 MiB pages
    pae = _Memory()
    pae.set(0x1000, 3, 0x2000 | p)
    pae.set(0x2000, 511, 0x400000 | p | 0x80)
    assert _walk(X86Paging(CR0_PG, 0x1000, CR4_PAE, False), pae) == \
        [(0xFFE00000, 0x400000, 0x200000)]
    # 32-bit paging: a 4 MiB page (PSE) with PSE-36 bits 39:32 from PDE bits 20:13
    flat = _Memory()
    flat.set(0x1000, 1, 0x800000 | 1 << 13 | p | 0x80, 4)
    flat.set(0x1000, 2, 0x3000 | p, 4)
    flat.set(0x3000, 5, 0x7000 | p, 4)
    assert _walk(X86Paging(CR0_PG, 0x1000, CR4_PSE, False), flat) == \
        [(0x805000, 0x7000, 0x1000), (0x400000, 0x100800000, 0x400000)]
    # without PSE the PS bit means nothing: the entry is a page table
    flat.set(0x800000 | 1 << 13, 0, 0, 4)
    assert _walk(X86Paging(CR0_PG, 0x1000, 0, False), flat) == [(0x805000, 0x7000, 0x1000)]


def test_arm64_walks_both_ranges_with_the_4k_granule() -> None:
    """Stage 1, 4 KiB granule (Arm ARM D5.2): TTBR0 with T0SZ 25 starts at level 1,
    TTBR1 with T1SZ 16 at level 0; blocks at levels 1 and 2, pages at level 3."""
    from emu.dump.mapping import Arm64Paging, MappingList, arm64_mappings
    from emu.dump.target import DumpError

    table, block, page = 0b11, 0b01, 0b11
    mem = _Memory()
    mem.set(0x1000, 1, 0x40000000 | block)  # level 1 block: VA 1 GiB -> PA 1 GiB
    mem.set(0x1000, 2, 0x2000 | table)
    mem.set(0x2000, 3, 0x80000000 | block)  # level 2 block: VA 2 GiB + 6 MiB
    mem.set(0x5000, 511, 0x6000 | table)  # TTBR1, level 0 index 511
    mem.set(0x6000, 511, 0x7000 | table)
    mem.set(0x7000, 511, 0x8000 | table)
    mem.set(0x8000, 0, 0x41000000 | page)
    mem.set(0x8000, 1, 0x41001000 | 0b01)  # bit 1 clear at level 3: invalid
    tcr = 25 | 16 << 16 | 0b10 << 30  # T0SZ 25, T1SZ 16, TG0 4 KiB (0), TG1 4 KiB (0b10)
    regs = Arm64Paging(sctlr=1, tcr=tcr, ttbr0=0x1000, ttbr1=0x5000)
    out = MappingList()
    assert arm64_mappings(regs, mem.read, lambda a: True, out)
    assert [(m.virt_addr, m.phys_addr, m.length) for m in out.mappings] == [
        (0x40000000, 0x40000000, 1 << 30),
        (0xFFFFFFFFFFE00000, 0x41000000, 0x1000),
        (0x80000000 + (3 << 21), 0x80000000, 1 << 21)]
    # the MMU off: no mappings (the caller then maps RAM one to one)
    assert not arm64_mappings(Arm64Paging(0, tcr, 0x1000, 0x5000), mem.read, lambda a: True,
                              MappingList())
    # TTBR1 disabled (EPD1), a 64 KiB granule on TTBR0: refused
    with pytest.raises(DumpError, match="only the 4 KiB translation granule"):
        arm64_mappings(Arm64Paging(1, 25 | 0b01 << 14 | 1 << 23, 0x1000, 0), mem.read,
                       lambda a: True, MappingList())
