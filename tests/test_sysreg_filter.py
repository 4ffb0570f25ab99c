"""The native filter in front of the MRS/MSR dispatcher (native/sysreg_filter.c): registers
the table has reach their handlers, also those added after installation; the others run as
Unicorn runs them, without a call into Python."""

from __future__ import annotations

from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, Uc
from unicorn import arm64_const as A

from emu.cpu.arm64_sysregs import SysregKey, _mrs, install_sysreg_hooks

TPIDR_EL1: SysregKey = (3, 0, 13, 0, 4)
CNTFRQ_EL0: SysregKey = (3, 3, 14, 0, 0)
#: an implementation-defined register Unicorn does not have (S3_0_C15_C1_0)
IMPDEF: SysregKey = (3, 0, 15, 1, 0)


class Constant:
    def __init__(self, value: int, calls: list[SysregKey]) -> None:
        self.value, self.calls = value, calls

    def read_sysreg(self, *key: int) -> int:
        self.calls.append(tuple(key))  # type: ignore[arg-type]
        return self.value

    def write_sysreg(self, *args: int) -> bool:
        return False


def test_the_filter_calls_python_only_for_its_registers() -> None:
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM, cpu=A.UC_CPU_ARM64_A57)
    uc.mem_map(0, 0x1000)
    words = [_mrs(TPIDR_EL1, 0), _mrs(CNTFRQ_EL0, 1), _mrs(IMPDEF, 2)]
    uc.mem_write(0x100, b"".join(w.to_bytes(4, "little") for w in words))
    uc.reg_write(A.UC_ARM64_REG_CP_REG, (13, 0, 3, 0, 4, 0x1234))  # TPIDR_EL1
    calls: list[SysregKey] = []
    table = install_sysreg_hooks(uc, {CNTFRQ_EL0: Constant(7, calls)})
    assert len(table.filters) == 2  # MRS and MSR (the native library is built)
    table.add({IMPDEF: Constant(9, calls)})  # (after installation)
    uc.emu_start(0x100, 0x10C)
    assert calls == [CNTFRQ_EL0, IMPDEF]  # TPIDR_EL1 never reached Python
    assert [uc.reg_read(A.UC_ARM64_REG_X0 + i) for i in range(3)] == [0x1234, 7, 9]
