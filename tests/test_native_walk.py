"""The TLB fill's native page walk (native/page_walk.c) decides as the Python walk does.

Random page tables are written into guest RAM (every level's entry for the address drawn:
random flag bits, a next table from a small pool, or a final page in RAM, ROM, a device or
unassigned space), the CPU is put in a random translation regime (x86: paging off, 32-bit
paging with and without PSE, PAE, 4- and 5-level long mode, CPL 0 or 3, WP, NXE, SMEP,
descriptor tables near the address; aarch64: the MMU on or off, EL0 or EL1, T0SZ/T1SZ,
TBI, EPD), and one TLB miss is filled both ways from the same state: by the native fill
and by ``Cpu._on_tlb_fill``. Where the native walk fills the entry, the physical address,
permissions, page size, the Accessed/Dirty bits written into the tables and the
code/stored page sets must be the Python walk's; where it declines, the Python walk must
be one the native walk leaves to it (a fault, or a page outside RAM).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unicorn import UC_MEM_FETCH, UC_MEM_READ, UC_MEM_WRITE
from unicorn import arm64_const as A
from unicorn import x86_const as X

from emu.config import MachineConfig
from emu.cpu.engine import X86_HFLAGS, TlbEntry
from emu.machine import Machine

ACCESSES = st.sampled_from([UC_MEM_READ, UC_MEM_WRITE, UC_MEM_FETCH])
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def pc() -> Iterator[Machine]:
    m = Machine(MachineConfig(machine="pc", accel="qtest"))
    yield m
    m.close()


@pytest.fixture(scope="module")
def virt() -> Iterator[Machine]:
    m = Machine(MachineConfig(machine="virt", accel="qtest"))
    yield m
    m.close()


def _fill_both(m: Machine, vaddr: int, access: int, tables: tuple[int, int]) -> None:
    """Fill one miss natively and in Python from the same state; compare."""
    cpu = m.cpu
    assert cpu.native_walk is not None and cpu.native_walk.enabled
    engine = cpu.engine
    assert engine is not None
    start, size = tables
    memory = m.address_space.read(start, size)
    assert memory is not None
    code, stored = set(cpu.code_pages), set(cpu.stored_pages)

    def restore() -> None:
        m.address_space.write(start, memory)
        for pageset, members in ((cpu.code_pages, code), (cpu.stored_pages, stored)):
            pageset.clear()
            for page in members:
                pageset.add(page)

    def run(native: bool) -> tuple[object, ...]:
        restore()
        engine.set_walk_page_size(0xDEAD)
        entry = TlbEntry(0xBAD, 0)
        if native:
            assert cpu.native_walk is not None
            ok = cpu.native_walk.fill(vaddr, access, entry)
        else:
            ok = cpu._on_tlb_fill(None, vaddr, access, entry, None)
        return (ok, entry.paddr, entry.perms, engine.walk_page_size,
                m.address_space.read(start, size), set(cpu.code_pages),
                set(cpu.stored_pages))

    native = run(True)
    try:
        python = run(False)
    except ValueError:
        # the Python walk's TxSZ outside 16-39 with TBI (a shift by a negative count),
        # which the native walk leaves to it
        assert not native[0]
        restore()
        return
    if native[0]:
        assert native == python
    else:
        # left to Python: a fault, or a page that is not RAM
        assert not python[0] or not m.address_space.is_ram(python[1], 1), (native, python)
    restore()


# -- x86 ---------------------------------------------------------------------------------------

X86_POOL = 0x100000  # twelve table pages
X86_GDT = 0x110000
X86_TARGETS = [0x0, 0x200000, 0x400000, 0x4000000, 0x40000000, 0x7FF000, 0x3000,
               0xFFFC0000, 0xFEE00000, 0xFEC00000, 0xE0000000, 0x1_0000_0000,
               0x80_0000_0000]


@st.composite
def x86_case(draw: st.DrawFn) -> dict[str, object]:
    # a third of the cases are well-formed walks (present entries, no reserved bits, the
    # rights, A/D and PS drawn), which mostly end in a mapping, the others anything
    clean = not draw(st.integers(0, 2))
    mode = draw(st.sampled_from(["off", "32", "32pse", "pae", "long4", "long5"]))
    long_mode = mode in ("long4", "long5")
    vaddr = draw(st.integers(0, (1 << 64) - 1 if long_mode else (1 << 32) - 1)) & ~0xFFF
    if long_mode and (clean or draw(st.booleans())):  # mostly canonical
        bits = 57 if mode == "long5" else 48
        vaddr &= (1 << bits) - 1
        if vaddr >> (bits - 1):
            vaddr |= ((1 << 64) - 1) ^ ((1 << bits) - 1)
    entry_size = 4 if mode in ("32", "32pse") else 8
    levels = {"32": 2, "32pse": 2, "pae": 3, "long4": 4, "long5": 5}.get(mode, 0)
    entries = []
    for level in range(levels):
        last = level == levels - 1
        if last or not draw(st.integers(0, 4 if clean else 1)):  # mostly RAM
            addr = draw(st.sampled_from(X86_TARGETS[:7] if clean or draw(st.integers(0, 2))
                                        else X86_TARGETS))
        else:  # the next level's table: pool pages 2 + 2 * level and 3 + 2 * level
            addr = X86_POOL + (2 + 2 * level + draw(st.integers(0, 1))) * 0x1000
        if clean:  # P; R/W, U/S mostly; PWT, PCD, A, D; PS at times
            flags = 1 | draw(st.integers(0, 15)) << 3
            flags |= (2 if draw(st.integers(0, 3)) else 0) | (4 if draw(st.integers(0, 3)) else 0)
            flags |= 0x80 if not draw(st.integers(0, 3)) else 0
        else:
            flags = draw(st.integers(0, 0xFFF))
            if draw(st.integers(0, 9)):
                flags |= 1  # mostly present
        high = 0
        if entry_size == 8 and clean:
            high = draw(st.sampled_from([0, 1 << 63]))
        elif entry_size == 8:
            high = draw(st.sampled_from([0, 0, 0, 1 << 63, 1 << 51, 1 << 45, 1 << 63 | 1 << 52]))
        entries.append((addr | flags | high) & ((1 << (8 * entry_size)) - 1))
    cr3_table = X86_POOL + draw(st.integers(0, 1)) * 0x1000
    return {
        "mode": mode, "vaddr": vaddr, "entries": entries, "entry_size": entry_size,
        "cr3": cr3_table | draw(st.sampled_from([0, 0x18, 0x20, 0x8])),
        "access": draw(ACCESSES), "cpl3": draw(st.booleans()), "wp": draw(st.booleans()),
        "nxe": draw(st.booleans()), "smep": draw(st.booleans()),
        "delivering": draw(st.integers(0, 5)) == 0,
        "gdt_here": draw(st.integers(0, 5)) == 0,
        "phys_bits": draw(st.sampled_from([36, 40, 46, 52])),
        "code": draw(st.booleans()), "stored": draw(st.booleans()),
    }


def _x86_indices(mode: str, vaddr: int) -> list[int]:
    if mode in ("32", "32pse"):
        return [(vaddr >> 22) & 0x3FF, (vaddr >> 12) & 0x3FF]
    if mode == "pae":
        return [(vaddr >> 30) & 3, (vaddr >> 21) & 0x1FF, (vaddr >> 12) & 0x1FF]
    shifts = [48, 39, 30, 21, 12] if mode == "long5" else [39, 30, 21, 12]
    return [(vaddr >> s) & 0x1FF for s in shifts]


@settings(SETTINGS, max_examples=1000)
@given(case=x86_case())
def test_x86_native_walk_matches_python(pc: Machine, case: dict) -> None:
    m, cpu, uc = pc, pc.cpu, pc.cpu.uc
    mode, vaddr = case["mode"], case["vaddr"]
    long_mode = mode.startswith("long")
    m.address_space.write(X86_POOL, bytes(12 * 0x1000))
    table = case["cr3"] & ~0xFFF if mode != "pae" else case["cr3"] & ~0x1F
    size = case["entry_size"]
    for index, entry in zip(_x86_indices(mode, vaddr), case["entries"], strict=False):
        if not X86_POOL <= table + index * size <= X86_POOL + 0xC000 - size:
            break
        m.address_space.write(table + index * size, entry.to_bytes(size, "little"))
        table = entry & 0x000FFFFFFFFFF000 if size == 8 else entry & 0xFFFFF000
    # the regime: from 32-bit protected mode with paging off
    cpu.reset()
    m.address_space.write(X86_GDT, bytes(8) + (0x00CF9A000000FFFF).to_bytes(8, "little") +
                          (0x00CF92000000FFFF).to_bytes(8, "little"))
    cpu.enter_protected_mode(X86_GDT, 23, 0x08, 0x10)
    cr4 = {"32pse": 1 << 4, "pae": 1 << 5, "long4": 1 << 5, "long5": 1 << 5 | 1 << 12}.get(mode, 0)
    cr4 |= (1 << 20) if case["smep"] else 0
    efer = (1 << 11 if case["nxe"] else 0) | (1 << 8 if mode.startswith("long") else 0)
    uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, efer))
    uc.reg_write(X.UC_X86_REG_CR4, cr4)
    uc.reg_write(X.UC_X86_REG_CR3, case["cr3"])
    cr0 = 0x11 | (1 << 16 if case["wp"] else 0)
    if mode != "off":
        uc.reg_write(X.UC_X86_REG_CR0, cr0 | 1 << 31)
    assert bool(uc.reg_read(X.UC_X86_REG_MSR, 0xC0000080) & 1 << 10) == long_mode
    cpu.phys_bits = case["phys_bits"]
    engine = cpu.engine
    assert engine is not None
    hflags = ctypes.c_uint32.from_address(engine.env + X86_HFLAGS)
    hflags.value = (hflags.value & ~3) | (3 if case["cpl3"] else 0)
    if case["delivering"]:
        engine.set_delivering(14)
    if case["gdt_here"]:
        uc.reg_write(X.UC_X86_REG_IDTR, (0, max(vaddr - 0x800, 0), 0xFFF, 0))
    try:
        for page in [t >> 12 for t in X86_TARGETS]:
            if case["code"]:
                cpu.code_pages.add(page)
            if case["stored"]:
                cpu.stored_pages.add(page)
        _fill_both(m, vaddr, case["access"], (X86_POOL, 0xC000))
    finally:
        engine._bridge.delivering = 0
        hflags.value &= ~3
        cpu.phys_bits = 40
        for page in [t >> 12 for t in X86_TARGETS]:
            cpu.code_pages.discard(page)
            cpu.stored_pages.discard(page)


# -- aarch64 ----------------------------------------------------------------------------------

ARM_POOL = 0x40100000
ARM_TARGETS = [0x40000000, 0x40200000, 0x40400000, 0x44000000, 0x47FFF000, 0x40003000,
               0x0, 0x09000000, 0x08000000, 0x20000000, 0x80000000, 0x1_0000_0000]


@st.composite
def arm_case(draw: st.DrawFn) -> dict[str, object]:
    # a third of the cases are well-formed walks (valid descriptors, attributes and table
    # bits drawn), which mostly end in a mapping, the others anything
    clean = not draw(st.integers(0, 2))
    upper = draw(st.booleans())
    tsz = draw(st.sampled_from([16, 25, 30, 39, 17, 33, 20, 25, 16, 25, 39, 16] if clean else
                               [16, 25, 39, 17, 33, 12, 40, draw(st.integers(0, 63))]))
    tbi = draw(st.integers(0, 1)), draw(st.integers(0, 1))  # TBI0, TBI1
    vaddr = draw(st.integers(0, (1 << 64) - 1)) & ~0x3FF
    if clean or draw(st.integers(0, 7)):  # mostly in the range of its TTBR
        va_bits = max(64 - tsz, 1)
        vaddr &= (1 << va_bits) - 1
        if upper:
            vaddr |= ((1 << 64) - 1) ^ ((1 << va_bits) - 1)
        if draw(st.integers(0, 3)) if tbi[upper] else not draw(st.integers(0, 7)):
            vaddr = (vaddr & ((1 << 56) - 1)) | draw(st.integers(0, 255)) << 56  # a tag
    entries = []
    for level in range(4):  # (the walk uses the last 4 - its start level of them)
        if level == 3 or not draw(st.integers(0, 5)):  # mostly RAM
            addr = draw(st.sampled_from(ARM_TARGETS[:6] if clean or draw(st.integers(0, 2))
                                        else ARM_TARGETS))
        else:  # the next level's table: pool pages 2 + 2 * level and 3 + 2 * level
            addr = ARM_POOL + (2 + 2 * level + draw(st.integers(0, 1))) * 0x1000
        if not clean and not draw(st.integers(0, 3)):  # any low bits
            flags = draw(st.integers(0, 0xFFF))
        else:  # a valid table, page or AF block descriptor, AP drawn
            flags = 3 | 1 << 10 | draw(st.integers(0, 3)) << 6
        if clean:  # PXN, UXN; PXNTable, UXNTable, APTable[1:0]
            bits = draw(st.integers(0, 63))
            high = (bits & 3) << 53 | (bits >> 2) << 59
        else:
            high = draw(st.integers(0, 0xFFF)) << 52 if not draw(st.integers(0, 3)) else 0
        if addr < ARM_POOL and not draw(st.integers(0, 3)):
            addr |= draw(st.integers(0, 0x1FF)) << 12  # offset bits in a block
        entries.append(addr | flags | high)
    tcr = 0
    for shift, value in ((0, tsz), (16, tsz)):
        tcr |= value << shift
    tcr |= tbi[0] << 37 | tbi[1] << 38
    if not clean and not draw(st.integers(0, 7)):
        tcr |= 1 << 7
    if not clean and not draw(st.integers(0, 7)):
        tcr |= 1 << 23
    ttbr = ARM_POOL + draw(st.integers(0, 1)) * 0x1000  # TTBR1: the other one
    ttbr |= draw(st.sampled_from([0, 0, 0, 1, 0x18])) | draw(st.integers(0, 0xFFFF)) << 48
    return {"vaddr": vaddr, "entries": entries, "tcr": tcr, "ttbr": ttbr,
            "mmu": clean or draw(st.integers(0, 7)) != 0, "el": draw(st.integers(0, 1)),
            "access": draw(ACCESSES), "code": draw(st.booleans()),
            "stored": draw(st.booleans())}


@settings(SETTINGS, max_examples=1000)  # (fewer of its walks end in a mapping)
@given(case=arm_case())
def test_arm_native_walk_matches_python(virt: Machine, case: dict) -> None:
    m, cpu, uc = virt, virt.cpu, virt.cpu.uc
    vaddr, tcr = case["vaddr"], case["tcr"]
    upper = (vaddr >> 55) & 1
    tsz = (tcr >> 16) & 0x3F if upper else tcr & 0x3F
    va_bits = 64 - tsz
    m.address_space.write(ARM_POOL, bytes(8 * 0x1000))
    table = (case["ttbr"] ^ (0x1000 if upper else 0)) & 0x0000FFFFFFFFFFFE
    level = 4 - (va_bits - 4) // 9 if 16 <= tsz <= 39 else 4  # (else: no tables)
    for lvl in range(level, 4):
        shift = 12 + 9 * (3 - lvl)
        index = (vaddr >> shift) & ((1 << (va_bits - shift)) - 1 if lvl == level else 0x1FF)
        if not ARM_POOL <= table + index * 8 <= ARM_POOL + 0x8000 - 8:
            break
        entry = case["entries"][lvl]
        m.address_space.write(table + index * 8, entry.to_bytes(8, "little"))
        table = entry & 0x0000FFFFFFFFF000
    sysregs = {(1, 0, 3, 0, 0): 0x30D00980 | (1 if case["mmu"] else 0),
               (2, 0, 3, 0, 2): tcr, (2, 0, 3, 0, 0): case["ttbr"],
               (2, 0, 3, 0, 1): case["ttbr"] ^ 0x1000}
    saved = {k: uc.reg_read(A.UC_ARM64_REG_CP_REG, k) for k in sysregs}
    pstate = uc.reg_read(A.UC_ARM64_REG_PSTATE)
    try:
        for key, value in sysregs.items():
            uc.reg_write(A.UC_ARM64_REG_CP_REG, (*key, value))
        uc.reg_write(A.UC_ARM64_REG_PSTATE, (pstate & ~0xF) | case["el"] << 2 |
                     (1 if case["el"] else 0))
        for page in [t >> 12 for t in ARM_TARGETS]:
            if case["code"]:
                cpu.code_pages.add(page)
            if case["stored"]:
                cpu.stored_pages.add(page)
        _fill_both(m, vaddr, case["access"], (ARM_POOL, 0x8000))
    finally:
        for key, value in saved.items():
            uc.reg_write(A.UC_ARM64_REG_CP_REG, (*key, value))
        uc.reg_write(A.UC_ARM64_REG_PSTATE, pstate)
        for page in [t >> 12 for t in ARM_TARGETS]:
            cpu.code_pages.discard(page)
            cpu.stored_pages.discard(page)


def test_native_walk_fills_the_common_case(pc: Machine, virt: Machine) -> None:
    """The comparisons above are not all fall-backs: a plain mapping is filled natively
    on both machines (the statistics count it), and only the Python walk sees a fault."""
    for m in (pc, virt):
        walk = m.cpu.native_walk
        assert walk is not None and walk.enabled
        m.cpu.reset()  # paging off: the identity
        before = walk.fills
        entry = TlbEntry(0, 0)
        assert walk.fill(0x3000 if m is pc else 0x40003000, UC_MEM_READ, entry)
        assert walk.fills[0] == before[0] + 1
