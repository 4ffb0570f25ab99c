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

from emu.cpu import Cpu

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

#: A conduit handler: (conduit "hvc"/"smc", x0..x3) -> value for x0, or None to leave x0.
PsciHandler = Callable[[str, list[int]], int | None]


class Arm64Cpu(Cpu):
    """An AArch64 CPU."""

    arch = "aarch64"
    models = MODELS
    default_model = "cortex-a57"

    def _create(self, model: int) -> Uc:
        uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=model)
        self._power_on = uc.context_save()
        self.psci: PsciHandler | None = None
        uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        return uc

    @property
    def pc(self) -> int:
        return self.uc.reg_read(A.UC_ARM64_REG_PC)

    @pc.setter
    def pc(self, value: int) -> None:
        self.uc.reg_write(A.UC_ARM64_REG_PC, value)

    def reset(self) -> None:
        self.uc.context_restore(self._power_on)
        self.fatal = None

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
        """Physical address for ``vaddr``: identity with the MMU off; with the MMU on, a
        4 KiB-granule stage-1 walk of TTBR0/TTBR1_EL1 (48-bit VA)."""
        uc = self.uc
        if not self.sysreg(3, 0, 1, 0, 0) & 1:  # SCTLR_EL1.M
            return vaddr
        tcr = self.sysreg(3, 0, 2, 0, 2)  # TCR_EL1
        upper = vaddr >> 63
        tsz = (tcr >> 16) & 0x3F if upper else tcr & 0x3F
        ttbr = uc.reg_read(A.UC_ARM64_REG_TTBR1_EL1 if upper else A.UC_ARM64_REG_TTBR0_EL1)
        va_bits = 64 - tsz
        table = ttbr & 0x0000FFFFFFFFFFFE
        level = 4 - (va_bits - 12 + 8) // 9  # first level for a 4 KiB granule
        for lvl in range(level, 4):
            shift = 12 + 9 * (3 - lvl)
            index = (vaddr >> shift) & 0x1FF
            desc = self._read_u64(table + index * 8)
            if desc is None or not desc & 1:
                return None
            out = desc & 0x0000FFFFFFFFF000
            if lvl == 3 or not desc & 2:  # page, or block at level 1/2
                mask = (1 << shift) - 1
                return (out & ~mask) | (vaddr & mask)
            table = out
        return None
