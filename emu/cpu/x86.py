"""x86_64 CPU on Unicorn (``UC_MODE_64``).

Unicorn starts an x86_64 CPU in long mode with paging off (CR0 = 0x11, EFER = 0x500); the
reset state of a real PC (real mode at 0xfffffff0) is not reachable through its API, so
:meth:`X86Cpu.enter_protected_mode` takes the architectural path to 32-bit protected mode
that boot protocols such as PVH expect (unicorn-notes, "Running a real kernel").

Exceptions and interrupts enter the guest's IDT through QEMU's own code (emu/cpu/engine.py,
native/cpu_exceptions.c); page faults come from emu's page walk (:meth:`translate_access`).
Where that machinery is unavailable (another Unicorn build), an exception is fatal and
reported with the vector's name and whether the IDT could have taken it.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from unicorn import (
    UC_ARCH_X86,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_MODE_64,
    Uc,
)
from unicorn import x86_const as X

from emu import trace as tracing
from emu.cpu import ACCESS_FETCH, ACCESS_WRITE, Cpu
from emu.cpu.engine import CPU_INTERRUPT_NMI, CPU_INTERRUPT_VIRQ, X86_ERROR_CODE
from emu.cpu.x86_cpuid import Qemu72Cpuid
from emu.trace import trace

MSR_EFER = 0xC0000080
EFLAGS_IF = 1 << 9
#: the guest-physical page whose read is the INTA cycle (see attach_interrupts): outside
#: every machine's memory map, next to the machine's ROM write sink
INTA_PAGE = 0x7FFF_FFFF_E000
CR0_PE, CR0_ET, CR0_PG = 1 << 0, 1 << 4, 1 << 31
CR4_PAE, CR4_LA57 = 1 << 5, 1 << 12
#: the Accessed and Dirty bits of a paging-structure entry
_PTE_A, _PTE_D = 1 << 5, 1 << 6
EFER_LMA, EFER_NXE = 1 << 10, 1 << 11
CR0_WP = 1 << 16
CR4_SMEP = 1 << 20
#: #PF error-code bits (SDM vol. 3A 4.7)
PF_P, PF_W, PF_U, PF_RSVD, PF_I = 1, 2, 4, 8, 16
DESC_P, DESC_TYPE_SHIFT = 1 << 15, 8

#: The system-segment registers at reset, as QEMU's x86_cpu_reset sets them (target/i386/
#: cpu.c; the Intel SDM's table "IA-32 and Intel 64 Processor States Following Power-up"):
#: (selector, base, limit, flags) in Unicorn's order. LDTR: a present LDT; TR: a present busy
#: 32-bit TSS; GDTR and IDTR: base 0, limit 0xffff. Unicorn's own power-on state is all zero.
RESET_SYSTEM_SEGMENTS = {
    X.UC_X86_REG_LDTR: (0, 0, 0xFFFF, DESC_P | 2 << DESC_TYPE_SHIFT),
    X.UC_X86_REG_TR: (0, 0, 0xFFFF, DESC_P | 11 << DESC_TYPE_SHIFT),
    X.UC_X86_REG_GDTR: (0, 0, 0xFFFF, 0),
    X.UC_X86_REG_IDTR: (0, 0, 0xFFFF, 0),
}
#: the x87 and SSE state after reset (QEMU's x86_cpu_reset: FCW 0x037f, every tag empty,
#: MXCSR 0x1f80; SDM vol. 3A table 9-1)
RESET_FPU = {X.UC_X86_REG_FPCW: 0x037F, X.UC_X86_REG_FPTAG: 0xFFFF, X.UC_X86_REG_MXCSR: 0x1F80}

EXCEPTION_NAMES = {
    0: "#DE divide error", 1: "#DB debug", 2: "NMI", 3: "#BP breakpoint", 4: "#OF overflow",
    5: "#BR bound range", 6: "#UD invalid opcode", 7: "#NM device not available",
    8: "#DF double fault", 10: "#TS invalid TSS", 11: "#NP segment not present",
    12: "#SS stack fault", 13: "#GP general protection", 14: "#PF page fault",
    16: "#MF x87 error", 17: "#AC alignment check", 18: "#MC machine check",
    19: "#XM SIMD exception",
}

MODELS = {
    "qemu64": X.UC_CPU_X86_QEMU64, "qemu32": X.UC_CPU_X86_QEMU32,
    "kvm64": X.UC_CPU_X86_KVM64, "kvm32": X.UC_CPU_X86_KVM32,
    "phenom": X.UC_CPU_X86_PHENOM, "core2duo": X.UC_CPU_X86_CORE2DUO,
    "coreduo": X.UC_CPU_X86_COREDUO, "486": X.UC_CPU_X86_486,
    "pentium": X.UC_CPU_X86_PENTIUM, "pentium2": X.UC_CPU_X86_PENTIUM2,
    "pentium3": X.UC_CPU_X86_PENTIUM3, "athlon": X.UC_CPU_X86_ATHLON,
    "n270": X.UC_CPU_X86_N270, "Conroe": X.UC_CPU_X86_CONROE, "Penryn": X.UC_CPU_X86_PENRYN,
    "Nehalem": X.UC_CPU_X86_NEHALEM, "Westmere": X.UC_CPU_X86_WESTMERE,
    "SandyBridge": X.UC_CPU_X86_SANDYBRIDGE, "IvyBridge": X.UC_CPU_X86_IVYBRIDGE,
    "Haswell": X.UC_CPU_X86_HASWELL, "Broadwell": X.UC_CPU_X86_BROADWELL,
    "Skylake-Client": X.UC_CPU_X86_SKYLAKE_CLIENT, "Skylake-Server": X.UC_CPU_X86_SKYLAKE_SERVER,
    "Cascadelake-Server": X.UC_CPU_X86_CASCADELAKE_SERVER,
    "Cooperlake": X.UC_CPU_X86_COOPERLAKE, "Icelake-Server": X.UC_CPU_X86_ICELAKE_SERVER,
    "Denverton": X.UC_CPU_X86_DENVERTON, "Snowridge": X.UC_CPU_X86_SNOWRIDGE,
    "KnightsMill": X.UC_CPU_X86_KNIGHTSMILL, "Opteron_G1": X.UC_CPU_X86_OPTERON_G1,
    "Opteron_G2": X.UC_CPU_X86_OPTERON_G2, "Opteron_G3": X.UC_CPU_X86_OPTERON_G3,
    "Opteron_G4": X.UC_CPU_X86_OPTERON_G4, "Opteron_G5": X.UC_CPU_X86_OPTERON_G5,
    "EPYC": X.UC_CPU_X86_EPYC, "Dhyana": X.UC_CPU_X86_DHYANA, "EPYC-Rome": X.UC_CPU_X86_EPYC_ROME,
    # QEMU's "max" under TCG is every feature TCG implements; Unicorn filters each model's
    # features to what its TCG implements, so its newest server model is the closest match.
    "max": X.UC_CPU_X86_ICELAKE_SERVER,
}


class X86Cpu(Cpu):
    """An x86_64 CPU."""

    #: the size of the page the last walk's leaf entry maps
    _leaf_size = 0

    arch = "x86_64"
    models = MODELS
    default_model = "qemu64"

    def _create(self, model: int) -> Uc:
        uc = Uc(UC_ARCH_X86, UC_MODE_64, cpu=model)
        for reg, value in (RESET_SYSTEM_SEGMENTS | RESET_FPU).items():
            uc.reg_write(reg, value)
        self._cpuid = Qemu72Cpuid(uc, model) if self.model == "qemu64" else None
        self._power_on = uc.context_save()
        self._acknowledge: Callable[[], int] | None = None
        self._intr_level: Callable[[], int] = lambda: 0
        return uc

    def set_cpu_count(self, count: int) -> None:
        """The machine's possible CPUs (``-smp``'s maxcpus), which CPUID's topology leaves
        describe (emu/cpu/x86_cpuid.py; only for qemu64, whose CPUID emu answers)."""
        if self._cpuid is not None:
            self._cpuid.cores = count

    def _install_exceptions(self) -> None:
        assert self.engine is not None
        if self.engine.available:
            self.engine.install(self._before_entry)
        else:
            self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
            self.uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)

    def _before_entry(self, intno: int) -> bool:
        """Before QEMU's entry code runs: put RIP back on a software interrupt.

        Unicorn sets RIP past an INT n / INT3 / INTO before its hooks run (QEMU leaves it
        on the instruction and pushes exception_next_eip), so a fault while delivering it
        (a not-present gate, a DPL check) would report the next instruction."""
        engine = self.engine
        assert engine is not None
        if tracing.ON and intno < 0x100:
            trace("x86_cpu_exception", vector=intno, rip=self.pc,
                  error=engine.x86_field(X86_ERROR_CODE).value)
        soft = engine.x86_software_interrupt
        if soft is not None:
            _rip, after = soft
            raw = self.read_virt(after - 2, 2) if after >= 2 else None
            if raw is not None:
                if (raw[1] == 0xCC and intno == 3) or (raw[1] == 0xCE and intno == 4):
                    engine.x86_set_rip(after - 1)
                elif raw[0] == 0xCD and raw[1] == intno:
                    engine.x86_set_rip(after - 2)
        return False

    @property
    def route_port_in(self) -> Callable[[object], None] | None:
        """Where the port bus hands its IN handler so that IN and OUT are checked against
        the I/O permission first (None without the engine)."""
        engine = self.engine
        if engine is None or not engine.available:
            return None
        return lambda handler: engine.check_port_io(self._io_bitmap_allows, handler)

    def _io_bitmap_allows(self, port: int, size: int) -> bool:
        """The TSS I/O permission bitmap's answer for ``size`` ports from ``port`` (SDM vol.
        1 19.5.2; QEMU's check_io): the TSS must be a present 32/64-bit TSS of at least 104
        bytes, and every bit of the ports, read as 16 bits, clear."""
        _sel, base, limit, flags = self.uc.reg_read(X.UC_X86_REG_TR)
        if not flags & DESC_P or (flags >> DESC_TYPE_SHIFT) & 0xF != 9 or limit < 103:
            return False
        raw = self.read_virt(base + 0x66, 2)
        if raw is None:
            return False
        offset = int.from_bytes(raw, "little") + (port >> 3)
        if offset + 1 > limit:
            return False
        raw = self.read_virt(base + offset, 2)
        if raw is None:
            return False
        bits = int.from_bytes(raw, "little") >> (port & 7)
        return not bits & ((1 << size) - 1)

    def read_time_stamp_counter(self, now_ns: Callable[[], int]) -> None:
        """RDTSC and RDTSCP read guest time in ns, as QEMU's cpu_get_tsc under -icount
        (cpu_get_ticks is then the instruction counter's clock)."""
        # (the binding's hook_add has no RDTSC hooks; Unicorn's own take CPUID's prototype)
        from unicorn import UC_HOOK_INSN
        from unicorn.unicorn_py3.arch.intel import HOOK_INSN_CPUID_CFUNC

        uc = self.uc

        def rdtsc(_uch: Any, _key: Any) -> int:
            tsc = now_ns() & 0xFFFFFFFFFFFFFFFF
            uc.reg_write(X.UC_X86_REG_RAX, tsc & 0xFFFFFFFF)
            uc.reg_write(X.UC_X86_REG_RDX, tsc >> 32)
            return 1  # skip Unicorn's own RDTSC

        def rdtscp(uch: Any, key: Any) -> int:
            uc.reg_write(X.UC_X86_REG_RCX, uc.reg_read(X.UC_X86_REG_MSR, 0xC0000103) &
                         0xFFFFFFFF)  # IA32_TSC_AUX
            return rdtsc(uch, key)

        add = uc._Uc__do_hook_add  # type: ignore[attr-defined]
        for insn, fn in ((X.UC_X86_INS_RDTSC, rdtsc), (X.UC_X86_INS_RDTSCP, rdtscp)):
            add(UC_HOOK_INSN, HOOK_INSN_CPUID_CFUNC(fn), 1, 0, ctypes.c_int(insn))

    # -- external interrupts ---------------------------------------------------------------

    def attach_interrupts(self, acknowledge: Callable[[], int],
                          intr_level: Callable[[], int]) -> None:
        """Connect the CPU's INTR pin to an interrupt controller. ``acknowledge`` is the
        INTA cycle (QEMU's cpu_get_pic_interrupt): the vector, with the controller's state
        updated; ``intr_level`` reads the pin.

        QEMU's x86_cpu_exec_interrupt takes an interrupt when the pin is up and the CPU
        can (EFLAGS.IF, no STI/MOV SS shadow). Unicorn's copy of it has lost the
        acknowledge for CPU_INTERRUPT_HARD (it always delivers vector 0), but its
        CPU_INTERRUPT_VIRQ path reads the vector from guest-physical memory at the
        instruction boundary where the interrupt is taken (the SVM VMCB's int_vector).
        emu points that VMCB at a page of its own whose read is the INTA cycle, so the
        controller acknowledges exactly when QEMU's would."""
        assert self.engine is not None and self.engine.available
        self._acknowledge = acknowledge
        self._intr_level = intr_level
        self.uc.mmio_map(INTA_PAGE, 0x1000, self._inta, None, self._inta_write, None)
        self.engine.vm_vmcb = INTA_PAGE
        self.engine.x86_keep_cr8()

    def _inta(self, _uc: Any, _offset: int, _size: int, _ud: Any) -> int:
        vector = self._acknowledge() & 0xFF
        engine = self.engine
        assert engine is not None
        engine.set_delivering(vector)
        if self._intr_level():
            engine.reassert_at_next_block(CPU_INTERRUPT_VIRQ)
        if tracing.ON:
            trace("x86_cpu_interrupt", vector=vector)
        return vector

    def _inta_write(self, _uc: Any, _offset: int, _size: int, _value: int, _ud: Any) -> None:
        return None

    def set_irq(self, level: int) -> None:
        """The INTR pin (QEMU's pic_irq_request: cpu_interrupt / cpu_reset_interrupt)."""
        assert self.engine is not None
        if level:
            self.engine.raise_interrupt(CPU_INTERRUPT_VIRQ)
        else:
            self.engine.lower_interrupt(CPU_INTERRUPT_VIRQ)

    @property
    def cr8(self) -> tuple[Callable[[], int], Callable[[int], None]]:
        """(read, write) of CR8 as the CPU holds it, for the local APIC's TPR."""
        engine = self.engine
        assert engine is not None

        def write(value: int) -> None:
            engine.x86_cr8 = value

        return (lambda: engine.x86_cr8), write

    def nmi(self) -> None:
        """Raise an NMI (QEMU's cpu_interrupt(CPU_INTERRUPT_NMI)): taken at the next
        instruction boundary unless NMIs are blocked until an IRET."""
        assert self.engine is not None
        self.engine.raise_interrupt(CPU_INTERRUPT_NMI)

    def has_work(self) -> bool:
        """Whether a halted CPU wakes up (QEMU's x86_cpu_has_work)."""
        engine = self.engine
        if engine is None or not engine.available:
            return False
        request = engine.interrupt_request
        if request & CPU_INTERRUPT_NMI:
            return True
        return bool(request & CPU_INTERRUPT_VIRQ and
                    self.uc.reg_read(X.UC_X86_REG_EFLAGS) & EFLAGS_IF)

    def reset(self) -> None:
        self.uc.context_restore(self._power_on)
        self.fatal = None
        if self.engine is not None and self.engine.available:
            self.engine.lower_interrupt(0xFFFFFFFF)
            if self._acknowledge is not None:
                self.engine.vm_vmcb = INTA_PAGE
                self.engine.x86_keep_cr8()

    def fault_for_engine(self) -> tuple[int, int, int]:
        assert self.fault is not None
        vector, code, cr2 = self.fault
        return vector, code, cr2 or 0

    def triple_faulted(self) -> bool:
        """QEMU's check_exception met a fault while delivering a #DF: it asked for a
        reset and ended the run, leaving the #DF as the exception in flight."""
        engine = self.engine
        return engine is not None and engine.available and engine.old_exception == 8

    @property
    def pc(self) -> int:
        return self.uc.reg_read(X.UC_X86_REG_RIP)

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(X.UC_X86_REG_RIP, value)

    def is_halted(self) -> bool:
        return self.read_virt(self.pc - 1, 1) == b"\xf4"

    # -- exceptions -------------------------------------------------------------------------

    def _idt_can_deliver(self, vector: int) -> bool:
        _sel, _base, limit, _flags = self.uc.reg_read(X.UC_X86_REG_IDTR)
        long_mode = self.uc.reg_read(X.UC_X86_REG_MSR, MSR_EFER) & EFER_LMA
        entry = 16 if long_mode else 8
        return limit >= vector * entry + entry - 1

    def _fail(self, vector: int) -> None:
        name = EXCEPTION_NAMES.get(vector, f"interrupt {vector}")
        if not self._idt_can_deliver(vector) and not self._idt_can_deliver(8):
            self.fatal = f"triple fault ({name} with no usable IDT)"
        else:
            self.fatal = f"unhandled exception {name} (exception delivery is not emulated)"
        self.uc.emu_stop()

    def _on_interrupt(self, _uc: Any, intno: int, _ud: Any) -> None:
        self._fail(intno)

    def _on_invalid(self, _uc: Any, _ud: Any) -> bool:
        self._fail(6)
        return False

    # -- mode changes and translation ---------------------------------------------------------

    def enter_protected_mode(self, gdt_base: int, gdt_limit: int, cs: int, ds: int) -> None:
        """Switch to 32-bit protected mode, paging off, flat segments from the GDT at
        ``gdt_base`` (which the caller has written into guest memory).

        From Unicorn's long-mode start: turning paging on and off again with PAE makes the
        CPU leave long mode the architectural way (EFER.LMA and the 64-bit code flag clear);
        then EFER and CR4 are cleared and the segment registers reloaded from the GDT.
        """
        uc = self.uc
        uc.reg_write(X.UC_X86_REG_CR4, CR4_PAE)
        uc.reg_write(X.UC_X86_REG_CR0, CR0_PG | CR0_ET | CR0_PE)
        uc.reg_write(X.UC_X86_REG_CR0, CR0_ET | CR0_PE)
        uc.reg_write(X.UC_X86_REG_MSR, (MSR_EFER, 0))
        uc.reg_write(X.UC_X86_REG_CR4, 0)
        uc.reg_write(X.UC_X86_REG_GDTR, (0, gdt_base, gdt_limit, 0))
        uc.reg_write(X.UC_X86_REG_CS, cs)
        for reg in (X.UC_X86_REG_DS, X.UC_X86_REG_ES, X.UC_X86_REG_SS, X.UC_X86_REG_FS,
                    X.UC_X86_REG_GS):
            uc.reg_write(reg, ds)
        uc.reg_write(X.UC_X86_REG_EFLAGS, 0x2)

    def set_regs(self, **regs: int) -> None:
        """Write general registers by name (``eax=...``, ``rsp=...``)."""
        for name, value in regs.items():
            self.uc.reg_write(getattr(X, f"UC_X86_REG_{name.upper()}"), value)

    def translate(self, vaddr: int) -> int | None:
        """Walk the guest's page tables (4- or 5-level long mode, PAE, 32-bit), as a
        debugger does: nothing in the tables changes, and access rights do not matter."""
        if not self.uc.reg_read(X.UC_X86_REG_CR0) & CR0_PG:
            return vaddr if self._long_mode() else vaddr & 0xFFFFFFFF
        # (with EFER.NXE, bit 63 is NX, not a reserved bit: Linux's data pages have it)
        nxe = bool(self.uc.reg_read(X.UC_X86_REG_MSR, MSR_EFER) & EFER_NXE)
        found = self._walk(vaddr, None, nxe)
        return None if isinstance(found, int) else found[0]

    def translate_access(self, vaddr: int, access: int) -> tuple[int, bool] | None:
        """The walk of a guest access (``access``: ACCESS_READ/WRITE/FETCH), as QEMU's
        mmu_translate (target/i386/tcg/sysemu/excp_helper.c) and the SDM (vol. 3A 4.6,
        4.7, 4.8) do it: the Accessed bit (5) of every entry it uses and, for a store, the
        Dirty bit (6) of the one that maps the page are set; PAE's PDPTEs, loaded with CR3,
        have neither. A load from a page that is not yet dirty may not store: the first
        store refills the TLB and marks the page.

        None when the access faults; :attr:`fault` then holds (vector, error code, CR2)
        as the CPU reports it: #PF with P, W/R, U/S, RSVD and I/D (SDM 4.7), or #GP(0)
        for a non-canonical address."""
        self.fault = None
        self.walk_page_size, self.walk_executable = 0, True
        write, fetch = access == ACCESS_WRITE, access == ACCESS_FETCH
        uc = self.uc
        cr0 = uc.reg_read(X.UC_X86_REG_CR0)
        long_mode = self._long_mode()
        if not cr0 & CR0_PG:
            return (vaddr if long_mode else vaddr & 0xFFFFFFFF), True
        cr4 = uc.reg_read(X.UC_X86_REG_CR4)
        if long_mode:
            bits = 57 if cr4 & CR4_LA57 else 48
            top = vaddr >> (bits - 1)
            if top not in (0, (1 << (65 - bits)) - 1):
                self.fault = (13, 0, None)
                return None
        user = self._user_access(vaddr)
        efer = uc.reg_read(X.UC_X86_REG_MSR, MSR_EFER)
        nxe = bool(efer & EFER_NXE)
        found = self._walk(vaddr, write, nxe)
        if isinstance(found, int):  # not present (0) or a reserved bit (PF_RSVD)
            code = found
        else:
            paddr, dirty, rw, us, nx = found
            write_protected = bool(user or cr0 & CR0_WP)
            denied = ((user and not us) or (fetch and nx)
                      or (write and not rw and write_protected)
                      or (fetch and not user and us and cr4 & CR4_SMEP))
            if not denied:
                self.walk_page_size = self._leaf_size if self._leaf_size > 0x1000 else 0
                self.walk_executable = not nx and (us if user else
                                                   not (us and cr4 & CR4_SMEP))
                return paddr, dirty and (rw or not write_protected)
            code = PF_P
        code |= (PF_W if write else 0) | (PF_U if user else 0)
        if fetch and ((nxe and cr4 & CR4_PAE) or cr4 & CR4_SMEP):
            code |= PF_I
        self.fault = (14, code, vaddr)
        return None

    def _user_access(self, vaddr: int) -> bool:
        """Whether an access is a user-mode one (QEMU's MMU_USER_IDX): CPL 3, except the
        CPU's own accesses to the descriptor tables and to the stack of an exception
        entry, which are supervisor accesses whatever the CPL (SDM vol. 3A 4.6)."""
        if self.engine is None or not self.engine.available:
            return (self.uc.reg_read(X.UC_X86_REG_CS) & 3) == 3
        if self.engine.hflags & 3 != 3 or self.engine.delivering is not None:
            return False
        for reg in (X.UC_X86_REG_GDTR, X.UC_X86_REG_IDTR, X.UC_X86_REG_LDTR, X.UC_X86_REG_TR):
            _sel, base, limit, _flags = self.uc.reg_read(reg)
            if base <= vaddr <= base + limit:
                return False
        return True

    def _walk(self, vaddr: int, write: bool | None,
              nxe: bool = False) -> tuple[int, bool, bool, bool, bool] | int:
        """The walk itself; ``write`` None: a debugger's walk, which writes nothing.
        Returns (paddr, dirty, writable, user, no-execute) with the rights combined over
        the levels as the SDM 4.6 does, or the #PF error code's P/RSVD bits of a walk that
        stops (0: an entry not present)."""
        uc = self.uc
        cr3 = uc.reg_read(X.UC_X86_REG_CR3)
        cr4 = uc.reg_read(X.UC_X86_REG_CR4)
        rights = [True, True, False]  # writable, user, no-execute

        def entry(table: int, index: int, size: int) -> tuple[int, int] | None:
            """(entry, its address), or None where the table is not in memory."""
            at = table + index * size
            raw = self.phys_read(at, size)
            return None if raw is None else (int.from_bytes(raw, "little"), at)

        def mark(e: int, at: int, size: int, leaf: bool) -> int:
            """Set A (and D on the leaf of a store) as the access does; returns the entry."""
            rights[0] = rights[0] and bool(e & 2)
            rights[1] = rights[1] and bool(e & 4)
            rights[2] = rights[2] or bool(nxe and e >> 63)
            if write is None:
                return e
            bits = _PTE_A | (_PTE_D if leaf and write else 0)
            if e & bits != bits:
                e |= bits
                self.phys_write(at, e.to_bytes(size, "little"))
            return e

        def leaf(e: int, at: int, size: int, paddr: int,
                 page_size: int = 0x1000) -> tuple[int, bool, bool, bool, bool]:
            self._leaf_size = page_size
            e = mark(e, at, size, True)
            return paddr, bool(e & _PTE_D), rights[0], rights[1], rights[2]

        reserved = self._reserved_bits(nxe)
        if not cr4 & CR4_PAE:  # 32-bit two-level paging
            found = entry(cr3 & 0xFFFFF000, (vaddr >> 22) & 0x3FF, 4)
            if found is None or not found[0] & 1:
                return 0
            pde, at = found
            if pde & 0x80 and cr4 & 0x10:  # 4 MiB page (PSE)
                return leaf(pde, at, 4, (pde & 0xFFC00000) | (vaddr & 0x3FFFFF), 1 << 22)
            pde = mark(pde, at, 4, False)
            found = entry(pde & 0xFFFFF000, (vaddr >> 12) & 0x3FF, 4)
            if found is None or not found[0] & 1:
                return 0
            pte, at = found
            return leaf(pte, at, 4, (pte & 0xFFFFF000) | (vaddr & 0xFFF))
        addr_mask = 0x000FFFFFFFFFF000
        if self._long_mode():
            levels = [48, 39] if cr4 & CR4_LA57 else [39]
            table = cr3 & addr_mask
            for shift in levels:
                found = entry(table, (vaddr >> shift) & 0x1FF, 8)
                if found is None or not found[0] & 1:
                    return 0
                if found[0] & (reserved | 0x80):  # PS is reserved in a PML5E/PML4E
                    return PF_P | PF_RSVD
                table = mark(*found, 8, False) & addr_mask
            shifts = [30, 21, 12]
        else:
            found = entry(cr3 & 0xFFFFFFE0, (vaddr >> 30) & 3, 8)  # a PDPTE: no A/D bits
            if found is None or not found[0] & 1:
                return 0
            table = found[0] & addr_mask
            shifts = [21, 12]
        for shift in shifts:
            found = entry(table, (vaddr >> shift) & 0x1FF, 8)
            if found is None or not found[0] & 1:
                return 0
            e, at = found
            if e & reserved:
                return PF_P | PF_RSVD
            if shift > 12 and e & 0x80:  # large page
                size_mask = (1 << shift) - 1
                if e & (size_mask & 0xFFFFFFFFFFFFE000 & addr_mask):  # reserved low bits
                    return PF_P | PF_RSVD
                return leaf(e, at, 8, (e & addr_mask & ~size_mask) | (vaddr & size_mask),
                            1 << shift)
            if shift == 12:
                return leaf(e, at, 8, (e & addr_mask) | (vaddr & 0xFFF))
            table = mark(e, at, 8, False) & addr_mask
        raise AssertionError("unreachable: the last level is a leaf")

    def _reserved_bits(self, nxe: bool) -> int:
        """Bits a PAE / long-mode entry must have clear: the address bits above the CPU's
        physical-address width, and NX (bit 63) without EFER.NXE (QEMU's rsvd_mask)."""
        mask = ((1 << 52) - 1) & ~((1 << self.phys_bits) - 1)
        return mask | (0 if nxe else 1 << 63)

    # -- state for dumps -------------------------------------------------------------------------

    GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11",
            "r12", "r13", "r14", "r15", "rip", "rflags")
    SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss")

    def dump_state(self) -> dict[str, object]:
        """Registers for a core dump: general registers, segments as (selector, limit, flags,
        base) with the hidden parts taken from the guest's GDT, LDTR/TR/GDTR/IDTR as the CPU
        holds them, CR0-CR4, FS/GS base, KERNEL_GS_BASE and whether the CPU is in long mode
        (which decides the dump's ELF machine, as in QEMU's cpu_get_dump_info)."""
        uc = self.uc
        state: dict[str, object] = {"long_mode": self._long_mode()}
        for name in self.GPRS:
            state[name] = uc.reg_read(getattr(X, f"UC_X86_REG_{name.upper()}"))
        gdt = uc.reg_read(X.UC_X86_REG_GDTR)
        bases = {"fs": uc.reg_read(X.UC_X86_REG_FS_BASE),
                 "gs": uc.reg_read(X.UC_X86_REG_GS_BASE)}
        for name in self.SEGMENTS:
            selector = uc.reg_read(getattr(X, f"UC_X86_REG_{name.upper()}"))
            state[name] = self._segment(selector, gdt[1], gdt[2], bases.get(name))
        for name in ("ldtr", "tr"):
            sel, base, limit, flags = uc.reg_read(getattr(X, f"UC_X86_REG_{name.upper()}"))
            state[name] = (sel, limit, flags, base)
        for name in ("gdtr", "idtr"):
            _sel, base, limit, _flags = uc.reg_read(getattr(X, f"UC_X86_REG_{name.upper()}"))
            state[name] = (0, limit, 0, base)
        state["cr"] = [uc.reg_read(getattr(X, f"UC_X86_REG_CR{i}")) for i in range(5)]
        state["kernel_gs_base"] = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000102)
        return state

    def _segment(self, selector: int, gdt_base: int, gdt_limit: int,
                 base: int | None) -> tuple[int, int, int, int]:
        """(selector, limit, flags, base) of a loaded segment, from its GDT descriptor."""
        index = selector & ~7
        raw = None
        if index and not selector & 4 and index + 7 <= gdt_limit:
            raw = self.read_virt(gdt_base + index, 8)
        if raw is None:
            return selector, 0xFFFFFFFF, 0, base or 0
        e1, e2 = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")
        limit = (e1 & 0xFFFF) | (e2 & 0x000F0000)
        if e2 & 0x00800000:
            limit = (limit << 12) | 0xFFF
        if base is None:
            base = (e1 >> 16) | ((e2 & 0xFF) << 16) | (e2 & 0xFF000000)
        return selector, limit, e2, base

    def _long_mode(self) -> bool:
        return bool(self.uc.reg_read(X.UC_X86_REG_MSR, MSR_EFER) & EFER_LMA)
