"""Per-architecture CPU support: model names, reset state, stop reasons, register access.

Everything that knows Unicorn's register constants lives here, so the machine, the boot
code and (later) dumps and debuggers work through :class:`Cpu` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unicorn import (
    UC_HOOK_TLB_FILL,
    UC_MEM_FETCH,
    UC_MEM_READ,
    UC_MEM_WRITE,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    UC_TLB_VIRTUAL,
    Uc,
)

from emu.cpu.engine import Engine
from emu.cpu.native_walk import NativeWalk, PageSet
from emu.cpu.stop_request import StopRequest
from emu.errors import ConfigError

#: the kinds of access a TLB fill is for (Unicorn's uc_mem_type)
ACCESS_READ, ACCESS_WRITE, ACCESS_FETCH = UC_MEM_READ, UC_MEM_WRITE, UC_MEM_FETCH
_FETCH_PERMS = UC_PROT_READ | UC_PROT_EXEC
_DATA_PERMS = UC_PROT_READ | UC_PROT_WRITE

#: Reads guest-physical memory for page-table walks: (paddr, size) -> bytes or None.
PhysReader = Callable[[int, int], bytes | None]


@dataclass(frozen=True)
class Stop:
    """Why the CPU stopped on its own (not by timeout or by request)."""

    kind: str  # "halt" (HLT/WFI: wait for an interrupt), "fatal"
    reason: str = ""


class Cpu:
    """One emulated CPU: the Unicorn instance and what emu needs to know about it."""

    arch: str = ""
    #: QEMU -cpu name -> Unicorn model constant
    models: dict[str, int] = {}
    default_model: str = ""

    def __init__(self, model: str | None) -> None:
        self.model = model or self.default_model
        if self.model == "help":
            raise ConfigError("-cpu help: available models: " + ", ".join(sorted(self.models)))
        if self.model not in self.models:
            raise ConfigError(f"-cpu {self.model}: unable to find CPU model '{self.model}'")
        #: set by exception hooks when the guest did something emu cannot continue from
        self.fatal: str | None = None
        self.phys_read: PhysReader = lambda _addr, _size: None
        #: writes guest-physical memory for the walk's Accessed/Dirty updates: (paddr, bytes)
        self.phys_write: Callable[[int, bytes], object] = lambda _addr, _data: False
        #: whether a guest-physical address is read-only memory (firmware ROM, flash), and
        #: the page the machine gives stores to it (see _on_tlb_fill)
        self.is_rom: Callable[[int], bool] = lambda _paddr: False
        self.write_sink = 0
        #: whether anything (RAM, ROM, a device) answers at a guest-physical address
        self.is_backed: Callable[[int], bool] = lambda _paddr: True
        self.native_walk: NativeWalk | None = None
        #: the physical-address width (the walk's reserved bits)
        self.phys_bits = 40
        #: the fault the last refused walk found (architecture-specific tuple)
        self.fault: tuple[int, int, int | None] | None = None
        #: what the last walk found besides the address: the size of the page that maps it
        #: (0: not a large page) and whether the CPU may execute there in its current mode
        self.walk_page_size = 0
        self.walk_executable = True
        #: 4 KiB physical pages the CPU has fetched code from, and those it has been given
        #: writable data entries for (see _on_tlb_fill; bitmaps for RAM, which the native
        #: walk shares)
        self.code_pages = PageSet()
        self.stored_pages = PageSet()
        self.engine: Engine | None = None
        self.uc: Uc = self._create(self.models[self.model])
        self.engine = Engine(self.uc, self.arch)
        if self.engine.available:
            self.native_walk = NativeWalk(self.engine, self.uc, self.arch)
        self._install_tlb()
        self._install_exceptions()
        #: stops the CPU at its next block boundary, from any thread (emu/cpu/stop_request.py)
        self.stop_request = StopRequest(self.uc)
        if self.engine.available and self.stop_request.available:
            self.stop_request.run_at_block(*self.engine.block_work())

    def _install_tlb(self) -> None:
        """Translate guest-virtual addresses in Python, on TLB misses only.

        In Unicorn 2.1's own softmmu TLB mode, a store to a page mapped read-write-execute
        (every page of a guest with identity-mapped RAM) never leaves the slow path: stores run
        about 20x slower than in QEMU. Its "virtual" TLB mode asks a TLB-fill hook for each
        missing page instead, and lets the hook give data and code entries separate
        permissions, which keeps stores on TCG's fast path. The hook walks the guest's page
        tables (:meth:`translate_access`; the common case in native code, see
        emu/cpu/native_walk.py); QEMU's code still flushes the TLB on CR3/TTBR writes and
        TLB-invalidate instructions, so the walk sees every page-table change.
        """
        self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        if self.engine is not None and self.engine.available:
            self.engine.install_tlb(self._walk_for_tlb)
        else:
            self.uc.hook_add(UC_HOOK_TLB_FILL, self._on_tlb_fill)

    @property
    def phys_bits(self) -> int:
        """The physical-address width (the x86 walk's reserved bits)."""
        return self._phys_bits

    @phys_bits.setter
    def phys_bits(self, bits: int) -> None:
        self._phys_bits = bits
        if self.native_walk is not None:
            self.native_walk.set_phys_bits(bits)

    def set_ram(self, blocks: list[tuple[int, int, int]]) -> None:
        """The machine's RAM as the CPU maps it: (guest-physical base, size, host address)
        of each block. The TLB fill walks page tables in it natively from then on
        (emu/cpu/native_walk.py; misses it cannot fill still come to :meth:`_on_tlb_fill`)."""
        if self.native_walk is not None:
            self.native_walk.set_ram(blocks, self.code_pages, self.stored_pages)

    def _walk_for_tlb(self, vaddr: int, access: int, entry: Any) -> int:
        """The native TLB-fill hook's walk: 1 mapped, 0 a fault the guest takes (the
        engine raises it), -1 fatal."""
        if self._on_tlb_fill(None, vaddr, access, entry.contents, None):
            return 1
        if self.fault is None:
            return -1
        assert self.engine is not None
        self.engine.set_fault(*self.fault_for_engine())
        return 0

    def _install_exceptions(self) -> None:
        """Hook the CPU's exceptions: QEMU's own entry code where the engine is available
        (emu/cpu/engine.py), else the subclass's fatal report."""
        raise NotImplementedError

    def has_work(self) -> bool:
        """Whether a halted CPU (HLT, WFI) would wake up now: an interrupt it takes is
        pending."""
        return False

    def set_cpu_count(self, count: int) -> None:
        """The machine's possible CPUs, for a CPU that reports its topology (x86 CPUID)."""

    def read_time_stamp_counter(self, now_ns: Callable[[], int]) -> None:
        """Have the CPU's own time counter read ``now_ns`` (x86 RDTSC/RDTSCP under
        -icount); aarch64's counter is the generic timer's, already on the clock."""
        return None

    def triple_faulted(self) -> bool:
        """After a run that ended by itself: did the CPU shut down (x86 triple fault)?"""
        return False

    def fault_for_engine(self) -> tuple[int, int, int]:
        """:attr:`fault` as :meth:`Engine.set_fault` takes it."""
        raise NotImplementedError

    def _on_tlb_fill(self, _uc: Any, vaddr: int, access: int, entry: Any, _ud: Any) -> bool:
        found = self.translate_access(vaddr, access)
        paddr, writable = found if found is not None else (None, False)
        if paddr is None:
            if self.fault is None or self.engine is None or not self.engine.available:
                if self.fatal is None:
                    self.fatal = (f"page fault at virtual address 0x{vaddr:x} "
                                  "(exception delivery is not available)")
                self.uc.emu_stop()
            return False
        entry.paddr = paddr  # vaddr is aligned to Unicorn's page size (1 KiB on arm)
        engine = self.engine
        if engine is not None and engine.available:
            engine.set_walk_page_size(self.walk_page_size)
        # A data entry must not carry EXEC (nor a code entry WRITE): Unicorn keeps every store
        # to a page whose TLB entry is also a code entry on its slow path.
        page = paddr >> 12
        if access == UC_MEM_FETCH:
            entry.perms = _FETCH_PERMS
            # Self-modifying code. Unicorn's slow path for a store invalidates the
            # translated blocks of the page, then marks a data entry clean, so later stores
            # through it take the fast path and are not seen. QEMU instead keeps every entry
            # of a page with translated code on the slow path. So once a page holds code, its
            # writable data entries are dropped and refilled with code permission too,
            # which Unicorn never marks clean.
            if page not in self.code_pages:
                self.code_pages.add(page)
                if page in self.stored_pages and engine is not None and engine.available:
                    engine.forget_data_entries(page)
        elif self.is_rom(paddr):
            # ROM: QEMU drops the guest's stores. A data entry that cannot be written makes
            # Unicorn raise an exception on a store, and a writable one reaches the ROM's
            # host memory; so reads get a read-only entry on the ROM, and a store gets a
            # write-only entry on a page the guest cannot see (the next read refills).
            if access == UC_MEM_WRITE:
                entry.paddr = self.write_sink
                entry.perms = UC_PROT_WRITE
            else:
                entry.perms = UC_PROT_READ
        else:
            # a page the walk has not marked dirty is mapped for reading only, so that the
            # guest's first store to it comes back here and marks it
            entry.perms = _DATA_PERMS if writable else UC_PROT_READ
            if writable:
                self.stored_pages.add(page)
                if page in self.code_pages and self.walk_executable:
                    # (a code page's alias that may not be executed keeps a plain data
                    # entry: a code permission would let the CPU execute there)
                    entry.perms = _DATA_PERMS | UC_PROT_EXEC
        return True

    def translate_access(self, vaddr: int, access: int) -> tuple[int, bool] | None:
        """The walk a memory access makes (the TLB fill; ``access``: ACCESS_READ, _WRITE,
        _FETCH): the physical address and whether a store may go through, updating the
        tables as the hardware does where the architecture asks for it; None with
        :attr:`fault` set for an access that faults. :meth:`translate` is the debugger's
        walk, which changes nothing."""
        self.fault = None
        paddr = self.translate(vaddr)
        return None if paddr is None else (paddr, True)

    def _create(self, model: int) -> Uc:
        raise NotImplementedError

    @property
    def pc(self) -> int:
        """The program counter."""
        raise NotImplementedError

    @pc.setter
    def pc(self, value: int) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Put the CPU into its architectural reset state."""
        raise NotImplementedError

    def is_halted(self) -> bool:
        """After a run ended by itself: was it a halt/wait-for-interrupt instruction?"""
        raise NotImplementedError

    def translate(self, vaddr: int) -> int | None:
        """Virtual to physical with the CPU's current translation regime (None: unmapped)."""
        raise NotImplementedError

    def read_virt(self, vaddr: int, size: int) -> bytes | None:
        """Read guest-virtual memory (within one page), or None."""
        paddr = self.translate(vaddr)
        return None if paddr is None else self.phys_read(paddr, size)

    def _read_u64(self, paddr: int) -> int | None:
        raw = self.phys_read(paddr, 8)
        return None if raw is None else int.from_bytes(raw, "little")


def create_cpu(arch: str, model: str | None) -> Cpu:
    """The CPU for ``arch`` ("x86_64" or "aarch64") with QEMU model name ``model``."""
    if arch == "x86_64":
        from emu.cpu.x86 import X86Cpu

        return X86Cpu(model)
    from emu.cpu.arm64 import Arm64Cpu

    return Arm64Cpu(model)
