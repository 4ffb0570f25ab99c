"""The CPU's view of memory stays coherent as the architecture promises, on emu's TLB (the
walk of emu/cpu/__init__.py and the native hooks of native/cpu_exceptions.c over Unicorn's
virtual TLB mode):

* self-modifying code: a store to code the CPU has run is seen by the next execution of
  that code, also when the store goes through another virtual alias of the page (Intel SDM
  vol. 3A 11.6; QEMU keeps every TLB entry of a page with translated code on its slow path);
* invalidating one address of a large page (x86 INVLPG in a 4 MiB page, aarch64 TLBI VAE1 in
  a 2 MiB block) invalidates the whole page's translation (SDM 4.10.4.1; Arm ARM D5.10);
* aarch64 TLBI VAE1 of a 4 KiB page invalidates all of it, although Unicorn's TLB pages are
  1 KiB.

Each guest below fails on the stale translation it provokes (a Linux boot met all three).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest
from unicorn import arm64_const as A
from unicorn import x86_const as X

from emu.config import MachineConfig
from emu.machine import Machine


@pytest.fixture()
def pc() -> Iterator[Machine]:
    m = Machine(MachineConfig(machine="pc", accel="qtest"))
    yield m
    m.close()


@pytest.fixture()
def virt() -> Iterator[Machine]:
    m = Machine(MachineConfig(machine="virt", accel="qtest"))
    yield m
    m.close()


# -- x86: 32-bit protected mode, 4 MiB pages (CR4.PSE) ------------------------------------------

GDT, PD, CODE, STACK = 0x3000, 0x5000, 0x1000, 0x9000
PDE_4M = 0x83 | 0x04  # present, writable, user, PS


def _x86_run(m: Machine, code: bytes, pdes: dict[int, int]) -> dict[str, int]:
    """Run ``code`` at CODE in flat 32-bit protected mode with paging on: the page
    directory maps 0-4 MiB to itself and the 4 MiB slots in ``pdes`` (index -> physical
    base) as 4 MiB pages."""
    gdt = bytes(8) + (0x00CF9A000000FFFF).to_bytes(8, "little") + \
        (0x00CF92000000FFFF).to_bytes(8, "little")
    m.address_space.write(GDT, gdt)
    pd = bytearray(4096)
    for index, base in {0: 0, **pdes}.items():
        pd[index * 4:index * 4 + 4] = (base | PDE_4M).to_bytes(4, "little")
    m.address_space.write(PD, bytes(pd))
    code += b"\xf4"  # (the exit address is this HLT's, so it never runs)
    m.address_space.write(CODE, code)
    cpu = m.cpu
    cpu.enter_protected_mode(GDT, len(gdt) - 1, 0x08, 0x10)
    uc = cpu.uc
    uc.reg_write(X.UC_X86_REG_CR3, PD)
    uc.reg_write(X.UC_X86_REG_CR4, 0x10)  # PSE
    uc.reg_write(X.UC_X86_REG_CR0, uc.reg_read(X.UC_X86_REG_CR0) | 0x80000000)
    uc.reg_write(X.UC_X86_REG_ESP, STACK)
    end = CODE + len(code) - 1
    uc.ctl_set_exits([end])  # (the machine runs with an empty exit list)
    uc.emu_start(CODE, end)
    return {r: uc.reg_read(getattr(X, f"UC_X86_REG_{r.upper()}")) for r in ("ebx", "ecx", "edx")}


def _call(at: int, target: int) -> bytes:
    return b"\xe8" + struct.pack("<i", target - (at + 5))


def test_x86_store_through_an_alias_reaches_translated_code(pc: Machine) -> None:
    """Code at 0x400000 and the alias 0x800000 map the same 4 MiB. The guest stores through
    the alias (so the CPU has a writable entry for it), runs the function (translated), patches
    its immediate through the alias and runs it again: the second call returns the patched
    value, as on any x86 (and QEMU)."""
    func = b"\xb8\x01\x00\x00\x00\xc3"  # mov eax, 1; ret
    pc.address_space.write(0x400000, func)
    code = bytearray()
    code += b"\xc7\x05" + struct.pack("<II", 0x800800, 0)   # mov dword [alias+0x800], 0
    code += _call(CODE + len(code), 0x400000)
    code += b"\x89\xc3"                                     # mov ebx, eax
    code += b"\xc6\x05" + struct.pack("<I", 0x800001) + b"\x02"   # mov byte [alias+1], 2
    code += _call(CODE + len(code), 0x400000)
    code += b"\x89\xc1"                                     # mov ecx, eax
    code += b"\xc6\x05" + struct.pack("<I", 0x800001) + b"\x03"   # mov byte [alias+1], 3
    code += _call(CODE + len(code), 0x400000)
    code += b"\x89\xc2"                                     # mov edx, eax
    regs = _x86_run(pc, bytes(code), {1: 0x400000, 2: 0x400000})
    assert regs == {"ebx": 1, "ecx": 2, "edx": 3}


def test_x86_invlpg_of_one_address_invalidates_the_whole_large_page(pc: Machine) -> None:
    """Two 4 KiB parts of a 4 MiB page are read; the page is remapped and INVLPG names its
    first byte; a read of the other part then sees the new frame."""
    pc.address_space.write(0x402000, (0x1111).to_bytes(4, "little"))
    pc.address_space.write(0xC02000, (0x2222).to_bytes(4, "little"))
    code = bytearray()
    code += b"\x8b\x1d" + struct.pack("<I", 0x401000)        # mov ebx, [0x401000]
    code += b"\x8b\x1d" + struct.pack("<I", 0x402000)        # mov ebx, [0x402000]
    code += b"\xc7\x05" + struct.pack("<II", PD + 4, 0xC00000 | PDE_4M)  # remap PDE[1]
    code += b"\x0f\x01\x3d" + struct.pack("<I", 0x400000)    # invlpg [0x400000]
    code += b"\x8b\x0d" + struct.pack("<I", 0x402000)        # mov ecx, [0x402000]
    regs = _x86_run(pc, bytes(code), {1: 0x400000})
    assert (regs["ebx"], regs["ecx"]) == (0x1111, 0x2222)


# -- aarch64: EL1, 4 KiB granule, 39-bit VA (level 1 tables) ------------------------------------

RAM = 0x40000000
L1, L2, L3 = RAM + 0x10000, RAM + 0x11000, RAM + 0x12000
PAGE_ATTRS = 0x403 | 0x300  # page/table, AF, inner shareable, AttrIndx 0 (normal memory)
BLOCK_ATTRS = 0x401 | 0x300


def _movz(rd: int, value: int) -> list[int]:
    """MOVZ/MOVK: a 64-bit constant in Xd."""
    words = [0xD2800000 | ((value & 0xFFFF) << 5) | rd]
    for hw in (1, 2, 3):
        part = (value >> (16 * hw)) & 0xFFFF
        if part:
            words.append(0xF2800000 | hw << 21 | part << 5 | rd)
    return words


def _ldr(rt: int, rn: int) -> int:
    return 0xF9400000 | rn << 5 | rt


def _str(rt: int, rn: int) -> int:
    return 0xF9000000 | rn << 5 | rt


TLBI_VAE1 = 0xD5088720  # SYS #0, C8, C7, #1, Xt
DSB_SY, ISB = 0xD5033F9F, 0xD5033FDF


def _arm_run(m: Machine, words: list[int], l2: dict[int, int],
             l3: dict[int, int]) -> Iterator[int]:
    """Run ``words`` at RAM with the MMU on: L2[0] points at L3, which maps the first 2 MiB
    of RAM to themselves except the entries in ``l3`` (index -> frame); ``l2`` adds 2 MiB
    blocks (index -> base). Returns X0..X3."""
    put = m.address_space.write
    put(L1, bytes(8))  # L1[0]: nothing below 1 GiB
    put(L1 + 8, (L2 | 3).to_bytes(8, "little"))  # L1[1]: 1-2 GiB
    l2_table = bytearray(4096)
    l2_table[0:8] = (L3 | 3).to_bytes(8, "little")
    for index, base in l2.items():
        l2_table[index * 8:index * 8 + 8] = (base | BLOCK_ATTRS).to_bytes(8, "little")
    put(L2, bytes(l2_table))
    l3_table = bytearray(4096)
    for index in range(512):
        frame = l3.get(index, RAM + index * 0x1000)
        l3_table[index * 8:index * 8 + 8] = (frame | PAGE_ATTRS).to_bytes(8, "little")
    put(L3, bytes(l3_table))
    code = b"".join(w.to_bytes(4, "little") for w in words)
    put(RAM, code)
    uc = m.cpu.uc
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (10, 2, 3, 0, 0, 0xFF))          # MAIR_EL1
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (2, 0, 3, 0, 2, 25 | 0x3500))   # TCR_EL1: T0SZ 25
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (2, 0, 3, 0, 0, L1))             # TTBR0_EL1
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (1, 0, 3, 0, 0, 0x30D00801))     # SCTLR_EL1: M
    end = RAM + len(code)
    uc.ctl_set_exits([end])
    uc.emu_start(RAM, end)
    return iter(uc.reg_read(getattr(A, f"UC_ARM64_REG_X{i}")) for i in range(4))


def test_arm_tlbi_of_a_4k_page_invalidates_all_of_it(virt: Machine) -> None:
    """Page 0x40100000 maps frame F1; the guest reads its second half, points the L3 entry
    at F2, runs TLBI VAE1 for the page, and reads again: the value is F2's."""
    f1, f2 = RAM + 0x200000, RAM + 0x201000
    virt.address_space.write(f1 + 0x800, (0x1111).to_bytes(8, "little"))
    virt.address_space.write(f2 + 0x800, (0x2222).to_bytes(8, "little"))
    entry = L3 + 0x100 * 8
    words = [*_movz(5, 0x40100800), _ldr(0, 5),
             *_movz(6, f2 | PAGE_ATTRS), *_movz(7, entry), _str(6, 7), DSB_SY,
             *_movz(8, 0x40100000 >> 12), TLBI_VAE1 | 8, DSB_SY, ISB,
             _ldr(1, 5)]
    x0, x1, *_ = _arm_run(virt, words, {}, {0x100: f1})
    assert (x0, x1) == (0x1111, 0x2222)


def test_arm_tlbi_of_one_address_invalidates_the_whole_block(virt: Machine) -> None:
    """A 2 MiB block at 0x40200000 maps B1; two parts of it are read, the block is pointed at
    B2, and TLBI VAE1 names the block's first page: a read of the other part sees B2."""
    b1, b2 = RAM + 0x400000, RAM + 0x600000
    virt.address_space.write(b1 + 0x10000, (0x1111).to_bytes(8, "little"))
    virt.address_space.write(b2 + 0x10000, (0x2222).to_bytes(8, "little"))
    words = [*_movz(5, 0x40210000), *_movz(4, 0x40200000), _ldr(2, 4), _ldr(0, 5),
             *_movz(6, b2 | BLOCK_ATTRS), *_movz(7, L2 + 8), _str(6, 7), DSB_SY,
             *_movz(8, 0x40200000 >> 12), TLBI_VAE1 | 8, DSB_SY, ISB,
             _ldr(1, 5)]
    x0, x1, *_ = _arm_run(virt, words, {1: b1}, {})
    assert (x0, x1) == (0x1111, 0x2222)
