"""Guest-virtual memory mappings for paging dumps (``dump-guest-memory`` with ``paging``
true): QEMU's softmmu/memory_mapping.c (the sorted, merging mapping list and its filter) and
target/i386/arch_memory_mapping.c (the x86 page-table walks), in Python.

Each present leaf entry of the guest's page tables (a 4 KiB page, or a 2 MiB / 1 GiB / 4 MiB
large page) whose physical start is RAM becomes a mapping ``(phys, virt, length)``, added to
a list kept sorted by physical address and merged where QEMU merges: with the mapping it
continues in both address spaces, or with one it overlaps physically at the same
virtual-minus-physical offset.

Where emu departs from QEMU 7.2, on purpose:

- x86_64 addresses are canonical (bits 63:48, or 63:57 with 5-level paging, copy the top
  translated bit). QEMU ORs ``0xffff << 48`` (``0x7f << 57`` with LA57) into every address,
  so that an address in the lower half comes out non-canonical (0xffff000000100000 for
  0x100000) and debuggers do not find it; its upper-half addresses are emu's.
- aarch64: QEMU 7.2 has no page walk for dumps there (its ARM CPUs implement no
  ``get_memory_mapping``) and writes physical addresses as virtual ones. emu walks stage 1
  of EL1&0 with the 4 KiB granule, TTBR0_EL1 for the lower and TTBR1_EL1 for the upper
  range (the sizes from TCR_EL1.T0SZ / T1SZ; translation tables disabled by EPD0/EPD1 are
  skipped), with level-1 (1 GiB) and level-2 (2 MiB) blocks; another granule is refused.

- a page merged into a mapping at its start moves the mapping's physical address too
  (QEMU's mapping_merge moves only the virtual one, so that the mapping's start then
  points at the wrong physical page);
- with ``begin``/``length``, a mapping cut at its start moves its virtual address along
  with the physical one, including a mapping at virtual address 0 (QEMU leaves 0 as it is,
  0 meaning "no virtual address" in its non-paging lists).

A guest with paging off (x86 CR0.PG clear, aarch64 SCTLR_EL1.M clear) gets identity
mappings of its RAM blocks, as in QEMU.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass

from emu.dump.target import DumpError

#: bytes at a physical address (None where there is no memory)
Reader = Callable[[int, int], bytes | None]
IsRam = Callable[[int], bool]

PG_PRESENT = 1
PG_PSE = 0x80
PLM4_ADDR_MASK = 0xFFFFFFFFFF000  # bits 51:12
NX = 1 << 63


@dataclass
class MemoryMapping:
    phys_addr: int
    virt_addr: int
    length: int


class MappingList:
    """QEMU's MemoryMappingList: sorted by physical address, merging as it grows."""

    def __init__(self) -> None:
        self.mappings: list[MemoryMapping] = []
        self.last: MemoryMapping | None = None
        self._keys: list[int] = []  # phys_addr of each mapping, for the sorted insert

    def create(self, phys: int, virt: int, length: int) -> None:
        """create_new_memory_mapping: insert before the first mapping whose physical
        address is >= ``phys``."""
        m = MemoryMapping(phys, virt, length)
        i = bisect.bisect_left(self._keys, phys)
        self.mappings.insert(i, m)
        self._keys.insert(i, phys)
        self.last = m

    def add_merge_sorted(self, phys: int, virt: int, length: int) -> None:
        """memory_mapping_list_add_merge_sorted."""
        if not self.mappings:
            self.create(phys, virt, length)
            return
        last = self.last
        if last is not None and phys == last.phys_addr + last.length and \
                virt == last.virt_addr + last.length:
            last.length += length
            return
        for i, m in enumerate(self.mappings):
            if phys == m.phys_addr + m.length and virt == m.virt_addr + m.length:
                m.length += length
                self.last = m
                return
            if phys + length < m.phys_addr:
                break  # a new mapping before this one
            if not (phys + length < m.phys_addr or phys >= m.phys_addr + m.length):
                if virt - m.virt_addr != phys - m.phys_addr:
                    continue  # the same physical memory at another virtual address
                if virt < m.virt_addr:  # mapping_merge (which leaves phys_addr behind)
                    m.length += m.virt_addr - virt
                    m.phys_addr -= m.virt_addr - virt
                    m.virt_addr = virt
                    del self.mappings[i], self._keys[i]  # still sorted by phys_addr
                    j = bisect.bisect_left(self._keys, m.phys_addr)
                    self.mappings.insert(j, m)
                    self._keys.insert(j, m.phys_addr)
                if virt + length > m.virt_addr + m.length:
                    m.length = virt + length - m.virt_addr
                self.last = m
                return
        self.create(phys, virt, length)

    def filter(self, begin: int, length: int) -> None:
        """memory_mapping_filter: keep ``[begin, begin + length)`` of physical memory."""
        end = begin + length
        kept = []
        for m in self.mappings:
            if m.phys_addr >= end or m.phys_addr + m.length <= begin:
                continue
            if m.phys_addr < begin:
                m.length -= begin - m.phys_addr
                # (QEMU moves only a non-zero virt_addr, 0 meaning "none" in its
                # non-paging lists: its identity mapping of address 0 stays at 0)
                m.virt_addr += begin - m.phys_addr
                m.phys_addr = begin
            if m.phys_addr + m.length > end:
                m.length -= m.phys_addr + m.length - end
            kept.append(m)
        self.mappings = kept
        self._keys = [m.phys_addr for m in kept]
        self.last = None


def _table(read: Reader, addr: int, count: int, size: int) -> tuple[int, ...]:
    """A page table's entries (zeros where it is not in memory, as QEMU's loads of
    unassigned memory read)."""
    raw = read(addr, count * size)
    if raw is None or len(raw) < count * size:
        return (0,) * count
    return struct.unpack(f"<{count}{'Q' if size == 8 else 'I'}", raw)


def _canonical(vaddr: int, bits: int) -> int:
    """Sign-extend a ``bits``-bit virtual address to 64 bits."""
    vaddr &= (1 << bits) - 1
    return vaddr | (((1 << 64) - 1) ^ ((1 << bits) - 1)) if vaddr >> (bits - 1) else vaddr


@dataclass(frozen=True)
class X86Paging:
    """What decides an x86 walk: CR0, CR3, CR4, and whether the CPU is in long mode."""

    cr0: int
    cr3: int
    cr4: int
    long_mode: bool


CR0_PG, CR4_PSE, CR4_PAE, CR4_LA57 = 1 << 31, 1 << 4, 1 << 5, 1 << 12


def x86_mappings(regs: X86Paging, read: Reader, is_ram: IsRam, out: MappingList) -> bool:
    """x86_cpu_get_memory_mapping: False when paging is off (nothing added)."""
    if not regs.cr0 & CR0_PG:
        return False
    walker = _X86Walk(read, is_ram, out)
    if regs.cr4 & CR4_PAE:
        if regs.long_mode:
            bits = 57 if regs.cr4 & CR4_LA57 else 48
            walker.bits = bits
            if bits == 57:
                for i, e in enumerate(_table(read, regs.cr3 & PLM4_ADDR_MASK, 512, 8)):
                    if e & PG_PRESENT:
                        walker.pml4(e & PLM4_ADDR_MASK, i << 48)
            else:
                walker.pml4(regs.cr3 & PLM4_ADDR_MASK, 0)
        else:
            for i, e in enumerate(_table(read, regs.cr3 & ~0x1F & 0xFFFFFFFF, 4, 8)):
                if e & PG_PRESENT:
                    walker.pde(e & ~0xFFF & ((1 << 52) - 1), i << 30)
    else:
        walker.pde2(regs.cr3 & ~0xFFF & 0xFFFFFFFF, bool(regs.cr4 & CR4_PSE))
    return True


class _X86Walk:
    """walk_pml4e, walk_pdpe, walk_pde, walk_pte (PAE and IA-32e), walk_pde2, walk_pte2
    (32-bit paging)."""

    def __init__(self, read: Reader, is_ram: IsRam, out: MappingList) -> None:
        self.read, self.is_ram, self.out = read, is_ram, out
        self.bits = 32  # virtual-address width the addresses are made canonical to

    def add(self, phys: int, virt: int, length: int) -> None:
        if self.is_ram(phys):  # QEMU skips a page whose start is I/O
            self.out.add_merge_sorted(phys, _canonical(virt, self.bits)
                                      if self.bits > 32 else virt, length)

    def pml4(self, table: int, line: int) -> None:
        for i, e in enumerate(_table(self.read, table, 512, 8)):
            if e & PG_PRESENT:
                self.pdpe(e & PLM4_ADDR_MASK, line | i << 39)

    def pdpe(self, table: int, line: int) -> None:
        for i, e in enumerate(_table(self.read, table, 512, 8)):
            if not e & PG_PRESENT:
                continue
            addr = line | i << 30
            if e & PG_PSE:  # 1 GiB page
                self.add(e & ~0x3FFFFFFF & ~NX, addr, 1 << 30)
            else:
                self.pde(e & PLM4_ADDR_MASK, addr)

    def pde(self, table: int, line: int) -> None:
        for i, e in enumerate(_table(self.read, table, 512, 8)):
            if not e & PG_PRESENT:
                continue
            addr = line | i << 21
            if e & PG_PSE:  # 2 MiB page
                self.add(e & ~0x1FFFFF & ~NX, addr, 1 << 21)
            else:
                self.pte(e & PLM4_ADDR_MASK, addr)

    def pte(self, table: int, line: int) -> None:
        for i, e in enumerate(_table(self.read, table, 512, 8)):
            if e & PG_PRESENT:
                self.add(e & ~0xFFF & ~NX, line | i << 12, 1 << 12)

    def pde2(self, table: int, pse: bool) -> None:
        for i, e in enumerate(_table(self.read, table, 1024, 4)):
            if not e & PG_PRESENT:
                continue
            addr = i << 22
            if e & PG_PSE and pse:  # 4 MiB page: bits 39:32 from bits 20:13 of the PDE
                self.add((e & ~0x3FFFFF) | (e & 0x1FE000) << 19, addr, 1 << 22)
                continue
            for j, pte in enumerate(_table(self.read, e & ~0xFFF, 1024, 4)):
                if pte & PG_PRESENT:
                    self.add(pte & ~0xFFF, addr | j << 12, 1 << 12)


@dataclass(frozen=True)
class Arm64Paging:
    """What decides an aarch64 stage-1 EL1&0 walk."""

    sctlr: int
    tcr: int
    ttbr0: int
    ttbr1: int


def arm64_mappings(regs: Arm64Paging, read: Reader, is_ram: IsRam, out: MappingList) -> bool:
    """The 4 KiB-granule walk of both translation ranges; False when the MMU is off."""
    if not regs.sctlr & 1:
        return False
    tcr = regs.tcr
    ranges = []
    if not tcr >> 7 & 1:  # EPD0
        if tcr >> 14 & 3 != 0:  # TG0: 0b00 is 4 KiB
            raise DumpError("paging: only the 4 KiB translation granule is supported "
                            f"(TCR_EL1.TG0 is {tcr >> 14 & 3})")
        ranges.append((tcr & 0x3F, regs.ttbr0, False))
    if not tcr >> 23 & 1:  # EPD1
        if tcr >> 30 & 3 != 2:  # TG1: 0b10 is 4 KiB
            raise DumpError("paging: only the 4 KiB translation granule is supported "
                            f"(TCR_EL1.TG1 is {tcr >> 30 & 3})")
        ranges.append((tcr >> 16 & 0x3F, regs.ttbr1, True))
    for tsz, ttbr, upper in ranges:
        va_bits = 64 - tsz
        if not 25 <= va_bits <= 48:
            raise DumpError(f"paging: a {va_bits}-bit translation range is not supported")
        level = 4 - (va_bits - 12 + 8) // 9
        base = (((1 << 64) - 1) ^ ((1 << va_bits) - 1)) if upper else 0
        _arm64_level(read, is_ram, out, ttbr & 0x0000FFFFFFFFFFFE, level, va_bits, base)
    return True


def _arm64_level(read: Reader, is_ram: IsRam, out: MappingList, table: int, level: int,
                 va_bits: int, line: int, first: bool = True) -> None:
    shift = 12 + 9 * (3 - level)
    count = 1 << (va_bits - shift) if first else 512
    for i, desc in enumerate(_table(read, table, min(count, 512), 8)):
        if not desc & 1:
            continue
        addr = line | i << shift
        out_addr = desc & 0x0000FFFFFFFFF000
        if level == 3:
            if desc & 2 and is_ram(out_addr):
                out.add_merge_sorted(out_addr, addr, 1 << 12)
        elif not desc & 2:  # a block (levels 1 and 2)
            if level in (1, 2):
                phys = out_addr & ~((1 << shift) - 1)
                if is_ram(phys):
                    out.add_merge_sorted(phys, addr, 1 << shift)
        else:
            _arm64_level(read, is_ram, out, out_addr, level + 1, va_bits, addr, False)
