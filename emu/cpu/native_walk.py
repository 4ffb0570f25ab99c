"""The TLB fill's native page walk (native/page_walk.c) and the page sets it shares.

Every TLB miss of Unicorn's virtual TLB mode asks emu for the page (emu/cpu/__init__.py
``Cpu._on_tlb_fill``). The native hook walks the common case itself: the guest's tables
and the page in RAM, no fault. It reads the CPU state QEMU keeps (x86 CR0/CR3/CR4/EFER,
CPL and the descriptor-table registers; aarch64 SCTLR_EL1, TCR_EL1, TTBR0/1_EL1 and
PSTATE.EL) at offsets of Unicorn 2.1.4's structures, which :meth:`NativeWalk.check`
compares with what Unicorn's register API returns, with marker values, before the walk
is turned on; RAM is known once the machine maps it (:meth:`NativeWalk.set_ram`). Until
then, or if a check fails, every miss goes to the Python walk, which also handles the
rest (faults, ROM, devices).

The self-modifying-code policy's page sets (``Cpu.code_pages``, ``Cpu.stored_pages``) are
:class:`PageSet` objects: a bitmap per RAM block that the native fill reads and writes, and
a Python set for the pages outside RAM.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unicorn import Uc

    from emu.cpu.engine import Engine

#: native/page_walk.h
WALK_MAX_RAM = 16
WALK_X86, WALK_ARM = 1, 2
PAGE_SHIFT = 12


class _RamBlock(ctypes.Structure):
    """``struct emu_ram_block``."""

    _fields_ = [("base", ctypes.c_uint64), ("size", ctypes.c_uint64),
                ("host", ctypes.c_void_p), ("code_pages", ctypes.c_void_p),
                ("stored_pages", ctypes.c_void_p)]


class _Walker(ctypes.Structure):
    """``struct emu_walker``."""

    _fields_ = [("enabled", ctypes.c_int32), ("arch", ctypes.c_int32),
                ("phys_bits", ctypes.c_uint32), ("ram_count", ctypes.c_uint32),
                ("ram", _RamBlock * WALK_MAX_RAM),
                ("native_fills", ctypes.c_uint64), ("python_fills", ctypes.c_uint64)]


class PageSet:
    """A set of 4 KiB page numbers: a bitmap per RAM block (shared with the native fill)
    and a Python set for the other pages."""

    def __init__(self) -> None:
        #: (first page, page count, bitmap) of each RAM block, as the native fill has them
        self._ram: list[tuple[int, int, ctypes.Array[ctypes.c_uint8]]] = []
        self._other: set[int] = set()

    def add_block(self, first_page: int, pages: int) -> ctypes.Array[ctypes.c_uint8]:
        """A bitmap for RAM pages ``first_page`` to ``first_page + pages - 1`` (pages of
        the Python set in that range move into it)."""
        bits = (ctypes.c_uint8 * ((pages + 7) // 8))()
        self._ram.append((first_page, pages, bits))
        for page in [p for p in self._other if first_page <= p < first_page + pages]:
            self._other.discard(page)
            self.add(page)
        return bits

    def _find(self, page: int) -> tuple[ctypes.Array[ctypes.c_uint8], int] | None:
        for first, count, bits in self._ram:
            if 0 <= page - first < count:
                return bits, page - first
        return None

    def __contains__(self, page: object) -> bool:
        if not isinstance(page, int):
            return False
        found = self._find(page)
        if found is None:
            return page in self._other
        bits, i = found
        return bool(bits[i >> 3] >> (i & 7) & 1)

    def add(self, page: int) -> None:
        found = self._find(page)
        if found is None:
            self._other.add(page)
        else:
            bits, i = found
            bits[i >> 3] |= 1 << (i & 7)

    def discard(self, page: int) -> None:
        found = self._find(page)
        if found is None:
            self._other.discard(page)
        else:
            bits, i = found
            bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF

    def clear(self) -> None:
        self._other.clear()
        for _first, _count, bits in self._ram:
            ctypes.memset(bits, 0, len(bits))

    def __iter__(self) -> Iterator[int]:
        for first, count, bits in self._ram:
            raw = bytes(bits)
            for byte_index, byte in enumerate(raw):
                if byte:
                    for bit in range(8):
                        if byte >> bit & 1 and byte_index * 8 + bit < count:
                            yield first + byte_index * 8 + bit
        yield from sorted(self._other)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class NativeWalk:
    """The native walk of one CPU: its state, its checks and its statistics."""

    def __init__(self, engine: Engine, uc: Uc, arch: str) -> None:
        self.engine = engine
        self.uc = uc
        self.arch = arch
        self.walker = _Walker()
        self.walker.arch = WALK_X86 if arch == "x86_64" else WALK_ARM
        self.walker.phys_bits = 40
        #: why the walk stays in Python ("" once it runs natively)
        self.why_not = "the machine's RAM is not known yet"
        self.checked = engine.available and self._check()
        if engine.available and not self.checked:
            self.why_not = "this Unicorn library's CPU-state layout is not the expected one"
        self._pages: tuple[PageSet, PageSet] | None = None
        if engine.available:
            engine.attach_walker(ctypes.addressof(self.walker))

    # -- the offsets -------------------------------------------------------------------------

    def _state(self) -> list[int]:
        out = (ctypes.c_uint64 * 16)()
        self.engine.walk_state(out)
        return list(out)

    def _check(self) -> bool:
        """Whether the native walk reads the registers Unicorn's API reads: marker values
        written through the API (then restored) must be what the native code sees."""
        return self._check_x86() if self.arch == "x86_64" else self._check_arm()

    def _check_x86(self) -> bool:
        from unicorn import x86_const as X

        uc = self.uc
        tables = (X.UC_X86_REG_GDTR, X.UC_X86_REG_IDTR, X.UC_X86_REG_LDTR, X.UC_X86_REG_TR)
        saved_tables = [uc.reg_read(r) for r in tables]
        saved_cr3, saved_cr4 = uc.reg_read(X.UC_X86_REG_CR3), uc.reg_read(X.UC_X86_REG_CR4)
        try:
            uc.reg_write(X.UC_X86_REG_CR3, 0x1234_5000)
            uc.reg_write(X.UC_X86_REG_CR4, 0x70C)  # DE, TSD, PCE, OSFXSR, OSXMMEXCPT
            for n, reg in enumerate(tables):
                sel, _base, _limit, flags = uc.reg_read(reg)
                uc.reg_write(reg, (sel, 0x5A5A_0000_1000 + n * 0x1_0000_0000, 0x1234 + n,
                                   flags))
            expected = [uc.reg_read(X.UC_X86_REG_CR0), uc.reg_read(X.UC_X86_REG_CR3),
                        uc.reg_read(X.UC_X86_REG_CR4),
                        uc.reg_read(X.UC_X86_REG_MSR, 0xC0000080)]
            values = [uc.reg_read(r) for r in tables]
            expected += [v[1] for v in values] + [v[2] for v in values]
            expected.append(uc.reg_read(X.UC_X86_REG_CS) & 3)  # CPL 0 at power-on
            ok = self._state()[:13] == expected and expected[1] == 0x1234_5000 and \
                expected[2] == 0x70C
        finally:
            uc.reg_write(X.UC_X86_REG_CR3, saved_cr3)
            uc.reg_write(X.UC_X86_REG_CR4, saved_cr4)
            for reg, value in zip(tables, saved_tables, strict=True):
                uc.reg_write(reg, value)
        return ok

    def _check_arm(self) -> bool:
        from unicorn import arm64_const as A

        uc = self.uc
        keys = [(1, 0, 3, 0, 0), (2, 0, 3, 0, 2), (2, 0, 3, 0, 0), (2, 0, 3, 0, 1)]
        markers = [0x30D0_1984, 0x0000_0034_B519_3519, 0x0001_0000_4123_4000,
                   0x0002_0000_4123_5000]  # SCTLR (MMU off), TCR, TTBR0, TTBR1
        saved = [uc.reg_read(A.UC_ARM64_REG_CP_REG, k) for k in keys]
        pstate = uc.reg_read(A.UC_ARM64_REG_PSTATE)
        ok = True
        try:
            for key, value in zip(keys, markers, strict=True):
                uc.reg_write(A.UC_ARM64_REG_CP_REG, (*key, value))
            expected = [uc.reg_read(A.UC_ARM64_REG_CP_REG, k) for k in keys]
            ok = expected == markers
            for el in (0, 1):
                uc.reg_write(A.UC_ARM64_REG_PSTATE, (pstate & ~0xC) | el << 2)
                expected_el = (uc.reg_read(A.UC_ARM64_REG_PSTATE) >> 2) & 3
                ok = ok and expected_el == el and self._state()[:5] == [*expected, el]
        finally:
            for key, value in zip(keys, saved, strict=True):
                uc.reg_write(A.UC_ARM64_REG_CP_REG, (*key, value))
            uc.reg_write(A.UC_ARM64_REG_PSTATE, pstate)
        return ok

    # -- RAM ---------------------------------------------------------------------------------

    def set_ram(self, blocks: Iterable[tuple[int, int, int]], code_pages: PageSet,
                stored_pages: PageSet) -> None:
        """The machine's RAM: (guest-physical base, size, host address) of each block, all
        mapped for the CPU as they are; the walk runs natively from now on if the checks
        passed and every block is 4 KiB aligned."""
        blocks = list(blocks)
        w = self.walker
        if len(blocks) > WALK_MAX_RAM or any((base | size) & 0xFFF for base, size, _ in blocks):
            self.why_not = "the RAM blocks are not 4 KiB aligned or too many"
            return
        for n, (base, size, host) in enumerate(blocks):
            first, pages = base >> PAGE_SHIFT, size >> PAGE_SHIFT
            code = code_pages.add_block(first, pages)
            stored = stored_pages.add_block(first, pages)
            w.ram[n] = _RamBlock(base, size, host, ctypes.addressof(code),
                                 ctypes.addressof(stored))
        w.ram_count = len(blocks)
        self._pages = (code_pages, stored_pages)
        if self.checked:
            w.enabled = 1
            self.why_not = ""

    def set_phys_bits(self, bits: int) -> None:
        self.walker.phys_bits = bits

    def disable(self) -> None:
        """Send every miss to the Python walk (tests compare the two)."""
        self.walker.enabled = 0

    def enable(self) -> None:
        if self.checked and self.walker.ram_count:
            self.walker.enabled = 1

    @property
    def enabled(self) -> bool:
        return bool(self.walker.enabled)

    @property
    def fills(self) -> tuple[int, int]:
        """(misses the native walk filled, misses it handed to the Python walk)."""
        return self.walker.native_fills, self.walker.python_fills

    def fill(self, vaddr: int, access: int, entry: object) -> bool:
        """Run the native fill for one miss, as the TLB-fill hook does (``entry``: a
        TlbEntry): True if it filled the entry, False where the Python walk would run."""
        return self.engine.native_fill(vaddr, access, entry)
