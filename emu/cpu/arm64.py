"""AArch64 CPU on Unicorn.

The CPU starts at EL1h with DAIF masked and the MMU off, as QEMU's virt machine starts a
kernel when EL2 and EL3 are not emulated. HVC and SMC are the PSCI conduits: Unicorn reports
HVC at EL1 as an UNDEF exception with PC on the instruction (and SMC as exception 13 with PC
after it), so the CPU decodes the instruction, hands the call to the machine's PSCI handler
and steps over it (unicorn-notes, "Exceptions and interrupts").
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from unicorn import UC_ARCH_ARM64, UC_HOOK_INTR, UC_MODE_ARM, Uc
from unicorn import arm64_const as A

from emu import trace as tracing
from emu.cpu import ACCESS_FETCH, ACCESS_WRITE, Cpu
from emu.cpu.engine import CPU_INTERRUPT_FIQ, CPU_INTERRUPT_HARD
from emu.trace import trace

MODELS = {
    "cortex-a53": A.UC_CPU_ARM64_A53,
    "cortex-a57": A.UC_CPU_ARM64_A57,
    "cortex-a72": A.UC_CPU_ARM64_A72,
    "max": A.UC_CPU_ARM64_MAX,
}

INSN_WFI = 0xD503207F
HVC_MASK, HVC_BITS = 0xFFE0001F, 0xD4000002
SMC_MASK, SMC_BITS = 0xFFE0001F, 0xD4000003

EXC_UDEF, EXC_SWI, EXC_PREFETCH_ABORT, EXC_DATA_ABORT, EXC_BKPT, EXC_SMC = 1, 2, 3, 4, 7, 13
EXCEPTION_NAMES = {EXC_UDEF: "undefined instruction", EXC_SWI: "SVC", EXC_PREFETCH_ABORT:
                   "prefetch abort", EXC_DATA_ABORT: "data abort", EXC_BKPT: "BRK breakpoint",
                   EXC_SMC: "SMC"}

SCR_NS, SCR_RW, HCR_RW = 1 << 0, 1 << 10, 1 << 31

#: A conduit handler: (conduit "hvc"/"smc", x0..x3) -> value for x0, or None to leave x0.
PsciHandler = Callable[[str, list[int]], int | None]


class Arm64Cpu(Cpu):
    """An AArch64 CPU."""

    #: the size of the page the last walk's leaf entry maps
    _leaf_size = 0

    arch = "aarch64"
    models = MODELS
    default_model = "cortex-a57"

    def _create(self, model: int) -> Uc:
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=model)
        # Unicorn's CPUs have EL2 and EL3 but start at EL1: make the higher levels say
        # that EL1 is AArch64 (SCR_EL3.RW, .NS; HCR_EL2.RW), as QEMU's boot code does for a
        # kernel started at EL1, so that exceptions are taken in AArch64 state
        uc.reg_write(A.UC_ARM64_REG_CP_REG, (1, 1, 3, 6, 0, SCR_RW | SCR_NS))
        uc.reg_write(A.UC_ARM64_REG_CP_REG, (1, 1, 3, 4, 0, HCR_RW))
        self._power_on = uc.context_save()
        self.psci: PsciHandler | None = None
        return uc

    def _install_exceptions(self) -> None:
        assert self.engine is not None
        if self.engine.available:
            self.engine.install(self._take_itself)
        else:
            self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)

    def _take_itself(self, intno: int) -> bool:
        """Before QEMU's exception entry: the PSCI calls, which the machine's firmware
        interface answers (QEMU's arm_is_psci_call). True: taken here, no entry."""
        pc = self.pc
        if tracing.ON:
            assert self.engine is not None
            trace("arm_cpu_exception", excp=intno, pc=pc, syndrome=self.engine.arm_syndrome)
        if intno == EXC_UDEF and (insn := self._insn(pc)) is not None and \
                insn & HVC_MASK == HVC_BITS and self.current_el() == 1:
            self._call("hvc", pc + 4)
            return True
        if intno == EXC_SMC:
            self._call("smc", pc)
            return True
        if intno == EXC_UDEF and (insn := self._insn(pc)) is not None and \
                insn & 0xFFFFF0DF == 0xD50340DF:
            # MSR DAIFSet/DAIFClr at EL0 without SCTLR_EL1.UMA: a trapped MSR (EC 0x18).
            # QEMU's daif_check raises it with raise_exception_ra, whose state restore
            # then overwrites the syndrome in QEMU 5.0 (Unicorn). The ISS is the Arm
            # ARM's (D17.2.37: Op2 in bits 19:17, Op1 in 16:14); QEMU 7.2 swaps the two.
            assert self.engine is not None
            op2 = 6 | ((insn >> 5) & 1)  # DAIFSet: 6, DAIFClr: 7 (Op1 is 3)
            imm = (insn >> 8) & 0xF
            syndrome = (0x18 << 26 | 1 << 25 | op2 << 17 | 3 << 14 | 4 << 10 |
                        0x1F << 5 | imm << 1)
            self.engine.arm_pend_exception(EXC_UDEF, syndrome, 0, 1)
            return False
        if intno == EXC_UDEF and pc & 3:
            # a branch to a misaligned address: Unicorn's TCG (QEMU 5.0) reports an undefined
            # instruction; QEMU 7.2 (helper_exception_pc_alignment) and the Arm ARM
            # (D1.10.2) take a PC alignment fault: EC 0x22, FAR = PC
            assert self.engine is not None
            self.engine.arm_pend_exception(EXC_PREFETCH_ABORT, 0x22 << 26 | 1 << 25, pc,
                                           self.current_el() or 1)
            return False
        return False

    def fault_for_engine(self) -> tuple[int, int, int]:
        assert self.fault is not None
        excp, syndrome, far = self.fault
        return excp, syndrome, far or 0

    def set_irq(self, level: int) -> None:
        """The CPU's IRQ input (QEMU's arm_cpu_set_irq): QEMU's arm_cpu_exec_interrupt takes
        it at the next block boundary where PSTATE.I allows."""
        self._set_line(CPU_INTERRUPT_HARD, level)

    def set_fiq(self, level: int) -> None:
        """The CPU's FIQ input."""
        self._set_line(CPU_INTERRUPT_FIQ, level)

    def _set_line(self, mask: int, level: int) -> None:
        assert self.engine is not None
        if level:
            self.engine.raise_interrupt(mask)
        else:
            self.engine.lower_interrupt(mask)

    def has_work(self) -> bool:
        """Whether WFI ends: an IRQ or FIQ is pending, masked or not (QEMU's
        arm_cpu_has_work)."""
        engine = self.engine
        return bool(engine is not None and engine.available and
                    engine.interrupt_request & (CPU_INTERRUPT_HARD | CPU_INTERRUPT_FIQ))

    def current_el(self) -> int:
        """PSTATE.EL."""
        return (self.uc.reg_read(A.UC_ARM64_REG_PSTATE) >> 2) & 3

    @property
    def pc(self) -> int:
        return self.uc.reg_read(A.UC_ARM64_REG_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(A.UC_ARM64_REG_PC, value)

    def reset(self) -> None:
        self.uc.context_restore(self._power_on)
        self.fatal = None
        if self.engine is not None and self.engine.available:
            self.engine.lower_interrupt(0xFFFFFFFF)

    @staticmethod
    def _xreg(index: int) -> int:
        # Unicorn numbers x0-x28 consecutively; x29 (FP) and x30 (LR) live elsewhere.
        return {29: A.UC_ARM64_REG_X29, 30: A.UC_ARM64_REG_X30}.get(
            index, A.UC_ARM64_REG_X0 + index)

    def set_x(self, index: int, value: int) -> None:
        """Write general register x<index> (0-30)."""
        self.uc.reg_write(self._xreg(index), value)

    def get_x(self, index: int) -> int:
        """Read general register x<index> (0-30)."""
        return self.uc.reg_read(self._xreg(index))

    def dump_state(self) -> dict[str, object]:
        """Registers for a core dump: x0-x30, sp, pc, pstate, the FP/SIMD registers, whether
        the CPU has SVE (ID_AA64PFR0_EL1.SVE) and ZCR_EL1, which sets its vector length."""
        uc = self.uc
        sve = bool((self.sysreg(3, 0, 0, 4, 0) >> 32) & 0xF)
        return {
            "x": [self.get_x(i) for i in range(31)],
            "sp": uc.reg_read(A.UC_ARM64_REG_SP),
            "pc": uc.reg_read(A.UC_ARM64_REG_PC),
            "pstate": uc.reg_read(A.UC_ARM64_REG_PSTATE),
            "v": [uc.reg_read(A.UC_ARM64_REG_Q0 + i) for i in range(32)],
            "fpsr": uc.reg_read(A.UC_ARM64_REG_FPSR),
            "fpcr": uc.reg_read(A.UC_ARM64_REG_FPCR),
            "sve": sve,
            # (Unicorn has ZCR_EL1 only on CPUs with SVE, and warns on a read elsewhere)
            "zcr_el1": self.sysreg(3, 0, 1, 2, 0) if sve else 0,
        }

    def sysreg(self, op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
        """Read the system register with that MRS encoding."""
        return self.uc.reg_read(A.UC_ARM64_REG_CP_REG, (crn, crm, op0, op1, op2))

    def _insn(self, vaddr: int) -> int | None:
        raw = self.read_virt(vaddr, 4)
        return struct.unpack("<I", raw)[0] if raw else None

    def is_halted(self) -> bool:
        return self._insn(self.pc - 4) == INSN_WFI

    def _on_interrupt(self, _uc: Any, intno: int, _ud: Any) -> None:
        pc = self.pc
        if intno == EXC_UDEF and (insn := self._insn(pc)) is not None and \
                insn & HVC_MASK == HVC_BITS:
            self._call("hvc", pc + 4)
            return
        if intno == EXC_SMC:
            self._call("smc", pc)
            return
        name = EXCEPTION_NAMES.get(intno, f"exception {intno}")
        vbar = self.uc.reg_read(A.UC_ARM64_REG_VBAR_EL1)
        self.fatal = (f"unhandled {name} (exception delivery to VBAR_EL1=0x{vbar:x} "
                      "is not emulated)")
        self.uc.emu_stop()

    def _call(self, conduit: str, next_pc: int) -> None:
        args = [self.get_x(i) for i in range(4)]
        result = self.psci(conduit, args) if self.psci else None
        if result is not None:
            self.set_x(0, result & 0xFFFFFFFFFFFFFFFF)
        self.pc = next_pc

    def translate(self, vaddr: int) -> int | None:
        """Physical address for ``vaddr`` as a debugger sees it: identity with the MMU
        off; with the MMU on, a 4 KiB-granule stage-1 walk of TTBR0/TTBR1_EL1."""
        found = self._walk(vaddr)
        return found[0] if isinstance(found, tuple) else None

    def translate_access(self, vaddr: int, access: int) -> tuple[int, bool] | None:
        """The walk of a guest access, with the checks of the Arm ARM's stage 1
        translation (D5.4, D5.5): translation faults, the access flag (cortex-a57 has no
        hardware access-flag management, so AF == 0 faults, as on QEMU), AP[2:1],
        UXN/PXN and the hierarchical APTable/UXNTable/PXNTable bits. A fault sets
        :attr:`fault` to (EXCP_DATA_ABORT or EXCP_PREFETCH_ABORT, ESR syndrome, FAR) as
        QEMU's arm_deliver_fault builds it for a fault taken to EL1."""
        self.fault = None
        self.walk_page_size, self.walk_executable = 0, True
        write, fetch = access == ACCESS_WRITE, access == ACCESS_FETCH
        el = self.current_el()
        if not self.sysreg(3, 0, 1, 0, 0) & 1:  # SCTLR_EL1.M: the MMU is off
            found: tuple[int, int, bool, bool] | int = (vaddr, 0b00, False, False)
        else:
            found = self._walk(vaddr)
        if isinstance(found, tuple) and not self.is_backed(found[0]):
            if fetch:
                # QEMU takes an external abort and, its vector being code too, usually
                # loops there for ever; emu stops (docs/devel/exceptions.md)
                self.fatal = "instruction fetch from unmapped memory"
                return None
            found = 0b010000  # synchronous external abort: nothing at that address
        if isinstance(found, tuple):
            paddr, ap, xn_el0, xn_el1 = found
            user_ok, read_only = bool(ap & 1), bool(ap & 2)
            if not self.sysreg(3, 0, 1, 0, 0) & 1:
                denied = False
            elif el == 0:
                denied = not user_ok or (write and read_only) or (fetch and xn_el0)
            else:  # EL1 may not execute what EL0 can write (D5.5.1)
                denied = (write and read_only) or (fetch and (xn_el1 or (user_ok and not
                                                                         read_only)))
            if not denied:
                if self.sysreg(3, 0, 1, 0, 0) & 1:
                    # (a 4 KiB page's TLB pages are flushed together by the TLBI hook of
                    # native/cpu_exceptions.c; a block is registered as a large page)
                    self.walk_page_size = self._leaf_size if self._leaf_size > 0x1000 else 0
                    self.walk_executable = not (xn_el0 if el == 0 else
                                                xn_el1 or (user_ok and not read_only))
                return paddr, not read_only
            fsc = 0b001100 | self._leaf_level
        else:
            fsc = found
        same_el = el == 1
        if fetch:
            syndrome = (0x21 if same_el else 0x20) << 26 | 1 << 25 | fsc
            excp = EXC_PREFETCH_ABORT
        else:
            syndrome = ((0x25 if same_el else 0x24) << 26 | 1 << 25 |
                        (1 << 6 if write else 0) | fsc)
            excp = EXC_DATA_ABORT
        self.fault = (excp, syndrome, vaddr)
        return None

    def _walk(self, vaddr: int) -> tuple[int, int, bool, bool] | int:
        """(paddr, AP[2:1], EL0 execute-never, EL1 execute-never) with the table bits
        applied, or the fault status code of a walk that stops (translation fault at a
        level: 0b0001LL; access flag fault: 0b0010LL)."""
        uc = self.uc
        if not self.sysreg(3, 0, 1, 0, 0) & 1:  # SCTLR_EL1.M
            self._leaf_level = 0
            return vaddr, 0b01, False, False
        tcr = self.sysreg(3, 0, 2, 0, 2)  # TCR_EL1
        upper = (vaddr >> 55) & 1
        tsz = (tcr >> 16) & 0x3F if upper else tcr & 0x3F
        tbi = (tcr >> (38 if upper else 37)) & 1
        epd = (tcr >> (23 if upper else 7)) & 1
        va_bits = 64 - tsz
        top = (vaddr >> va_bits) & ((1 << ((56 if tbi else 64) - va_bits)) - 1)
        if epd or top != (((1 << ((56 if tbi else 64) - va_bits)) - 1) if upper else 0):
            return 0b000100  # translation fault, level 0
        ttbr = uc.reg_read(A.UC_ARM64_REG_TTBR1_EL1 if upper else A.UC_ARM64_REG_TTBR0_EL1)
        table = ttbr & 0x0000FFFFFFFFFFFE
        level = 4 - (va_bits - 12 + 8) // 9  # first level for a 4 KiB granule
        ap_table, xn0, xn1 = 0, False, False
        for lvl in range(level, 4):
            shift = 12 + 9 * (3 - lvl)
            index = (vaddr >> shift) & ((1 << (va_bits - shift)) - 1 if lvl == level
                                        else 0x1FF)
            desc = self._read_u64(table + index * 8)
            if desc is None or not desc & 1 or (lvl == 3 and not desc & 2) or \
                    (lvl == 0 and not desc & 2):
                return 0b000100 | lvl
            out = desc & 0x0000FFFFFFFFF000
            if lvl == 3 or not desc & 2:  # page, or block at level 1/2
                if not desc & (1 << 10):
                    return 0b001000 | lvl  # access flag fault
                self._leaf_level = lvl
                self._leaf_size = 1 << shift
                ap = (desc >> 6) & 3
                if ap_table & 1:  # APTable[0]: no EL0 access below
                    ap &= ~1
                if ap_table & 2:  # APTable[1]: read-only below
                    ap |= 2
                mask = (1 << shift) - 1
                return ((out & ~mask) | (vaddr & mask), ap, xn0 or bool(desc >> 54 & 1),
                        xn1 or bool(desc >> 53 & 1))
            ap_table |= (desc >> 61) & 3
            xn0 = xn0 or bool(desc >> 60 & 1)
            xn1 = xn1 or bool(desc >> 59 & 1)
            table = out
        return 0b000100 | 3
