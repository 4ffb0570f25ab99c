"""What the stub tells gdb about the CPU: the target description and the register file.

The feature files in ``xml/`` are QEMU 7.2's own (gdb-xml/, GDB's files as QEMU ships
them); ``target.xml`` is built as QEMU's ``get_feature_xml`` builds it: the architecture
(``gdb_arch_name``), the core file, then each coprocessor file. Register numbers and
sizes are those of QEMU's ``gdb_read_register`` for the CPU:

* x86_64 (target/i386/gdbstub.c, ``gdb_num_core_regs`` 66, i386-64bit.xml): rax rbx rcx
  rdx rsi rdi rbp rsp r8-r15, rip, eflags (32 bits), cs ss ds es fs gs (32 bits each),
  fs_base gs_base k_gs_base, cr0 cr2 cr3 cr4 cr8 efer, st0-st7 (80 bits, the physical
  x87 registers), fctrl fstat ftag fiseg fioff foseg fooff fop (the last six 0 in QEMU),
  xmm0-xmm15, mxcsr. QEMU always sends 64-bit values (GDB_FORCE_64), with the upper
  halves of the general registers cleared outside 64-bit code.
* aarch64 (target/arm/gdbstub64.c, 34 core registers, aarch64-core.xml): x0-x30, sp, pc,
  cpsr (32 bits); then aarch64-fpu.xml (target/arm/gdbstub64.c aarch64_fpu_gdb_get_reg):
  v0-v31 (128 bits), fpsr, fpcr. QEMU also offers its system registers
  (``system-registers.xml``, generated from its coprocessor table); emu does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from unicorn import arm64_const as A
from unicorn import x86_const as X

if TYPE_CHECKING:
    from emu.cpu import Cpu

XML_DIR = Path(__file__).with_name("xml")

_X86_GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
_X86_SEGS = ("cs", "ss", "ds", "es", "fs", "gs")
MSR_KERNEL_GS_BASE = 0xC0000102
MSR_EFER = 0xC0000080
CS64 = 1 << 21  # the L bit of the code segment's descriptor flags (QEMU's HF_CS64)


class Target:
    """The register file of one CPU as gdb numbers it."""

    arch_name = ""
    core_xml = ""
    extra_xml: tuple[str, ...] = ()
    #: (size in bytes) of each register, in gdb's numbering
    sizes: tuple[int, ...] = ()
    #: how many registers the ``g`` packet carries (QEMU: every register it knows)
    g_count = 0

    def __init__(self, cpu: Cpu) -> None:
        self.cpu = cpu
        self.uc = cpu.uc

    def target_xml(self) -> str:
        """get_feature_xml("target.xml")."""
        parts = ['<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target>',
                 f"<architecture>{self.arch_name}</architecture>",
                 f'<xi:include href="{self.core_xml}"/>']
        parts += [f'<xi:include href="{name}"/>' for name in self.extra_xml]
        parts.append("</target>")
        return "".join(parts)

    def feature(self, name: str) -> str | None:
        """The annex ``name`` of qXfer:features:read, or None."""
        if name == "target.xml":
            return self.target_xml()
        if name in (self.core_xml, *self.extra_xml):
            return (XML_DIR / name).read_text()
        return None

    def read(self, n: int) -> bytes | None:
        """Register ``n`` in target byte order, or None for a number QEMU does not know."""
        raise NotImplementedError

    def write(self, n: int, data: bytes) -> int:
        """Set register ``n`` from ``data``; returns the register's size (0: unknown)."""
        raise NotImplementedError

    def read_all(self) -> bytes:
        return b"".join(self.read(n) or b"" for n in range(self.g_count))

    def write_all(self, data: bytes) -> None:
        """handle_write_all_regs: registers in order until the data runs out."""
        pos = 0
        for n in range(self.g_count):
            size = self.sizes[n]
            if pos >= len(data):
                break
            chunk = data[pos:pos + size]
            if len(chunk) == size:
                self.write(n, chunk)
            pos += size


def _u(value: int, size: int) -> bytes:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


class X86Target(Target):
    arch_name = "i386:x86-64"
    core_xml = "i386-64bit.xml"
    sizes = (8,) * 17 + (4,) * 7 + (8,) * 9 + (10,) * 8 + (4,) * 8 + (16,) * 16 + (4,)
    g_count = 66

    def _cs64(self) -> bool:
        cs = self.uc.reg_read(X.UC_X86_REG_CS)
        efer = self.uc.reg_read(X.UC_X86_REG_MSR, MSR_EFER)
        if not efer & (1 << 10):  # LMA
            return False
        gdtr = self.uc.reg_read(X.UC_X86_REG_GDTR)
        index = cs & ~7
        if not index or cs & 4 or index + 7 > gdtr[2]:
            return False
        paddr = self.cpu.translate(gdtr[1] + index)
        raw = None if paddr is None else self.cpu.phys_read(paddr, 8)
        return raw is not None and bool(int.from_bytes(raw, "little") >> 32 & CS64)

    def _cr8(self) -> int:
        if self.cpu.engine is None or not self.cpu.engine.available:
            return 0
        return int(self.cpu.cr8[0]())  # type: ignore[attr-defined]

    def read(self, n: int) -> bytes | None:
        uc = self.uc
        if n < 16:
            value = uc.reg_read(getattr(X, f"UC_X86_REG_{_X86_GPRS[n].upper()}"))
            if not self._cs64():
                value = value & 0xFFFFFFFF if n < 8 else 0
            return _u(value, 8)
        if n == 16:
            rip = uc.reg_read(X.UC_X86_REG_RIP)
            return _u(rip if self._cs64() else rip & 0xFFFFFFFF, 8)
        if n == 17:
            return _u(uc.reg_read(X.UC_X86_REG_EFLAGS), 4)
        if n < 24:
            return _u(uc.reg_read(getattr(X, f"UC_X86_REG_{_X86_SEGS[n - 18].upper()}")), 4)
        if n == 24:
            return _u(uc.reg_read(X.UC_X86_REG_FS_BASE), 8)
        if n == 25:
            return _u(uc.reg_read(X.UC_X86_REG_GS_BASE), 8)
        if n == 26:
            return _u(uc.reg_read(X.UC_X86_REG_MSR, MSR_KERNEL_GS_BASE), 8)
        if n < 33:
            reg = ("CR0", "CR2", "CR3", "CR4", None, None)[n - 27]
            if reg is not None:
                return _u(uc.reg_read(getattr(X, f"UC_X86_REG_{reg}")), 8)
            if n == 31:
                return _u(self._cr8(), 8)
            return _u(uc.reg_read(X.UC_X86_REG_MSR, MSR_EFER), 8)
        if n < 41:
            mantissa, exponent = uc.reg_read(X.UC_X86_REG_FP0 + n - 33)
            return _u(mantissa, 8) + _u(exponent, 2)
        if n == 41:
            return _u(uc.reg_read(X.UC_X86_REG_FPCW), 4)
        if n == 42:
            return _u(uc.reg_read(X.UC_X86_REG_FPSW), 4)
        if n < 49:
            return _u(0, 4)  # ftag, fiseg, fioff, foseg, fooff, fop: 0 in QEMU
        if n < 65:
            return _u(uc.reg_read(getattr(X, f"UC_X86_REG_XMM{n - 49}")), 16)
        if n == 65:
            return _u(uc.reg_read(X.UC_X86_REG_MXCSR), 4)
        return None

    def write(self, n: int, data: bytes) -> int:
        uc = self.uc
        if not 0 <= n < len(self.sizes):
            return 0
        size = self.sizes[n]
        value = int.from_bytes(data[:size], "little")
        if n < 16:
            if not self._cs64():
                value &= 0xFFFFFFFF
            uc.reg_write(getattr(X, f"UC_X86_REG_{_X86_GPRS[n].upper()}"), value)
        elif n == 16:
            uc.reg_write(X.UC_X86_REG_RIP, value if self._cs64() else value & 0xFFFFFFFF)
        elif n == 17:
            uc.reg_write(X.UC_X86_REG_EFLAGS, value)
        elif n < 24:
            reg = getattr(X, f"UC_X86_REG_{_X86_SEGS[n - 18].upper()}")
            if uc.reg_read(reg) != value & 0xFFFF:  # QEMU loads the descriptor's cache
                uc.reg_write(reg, value & 0xFFFF)
        elif n == 24:
            uc.reg_write(X.UC_X86_REG_FS_BASE, value)
        elif n == 25:
            uc.reg_write(X.UC_X86_REG_GS_BASE, value)
        elif n == 26:
            uc.reg_write(X.UC_X86_REG_MSR, (MSR_KERNEL_GS_BASE, value))
        elif n in (27, 28, 29, 30):
            uc.reg_write(getattr(X, f"UC_X86_REG_CR{(0, 2, 3, 4)[n - 27]}"), value)
        elif n == 31:
            if self.cpu.engine is not None and self.cpu.engine.available:
                self.cpu.cr8[1](value & 0xF)  # type: ignore[attr-defined]
        elif n == 32:
            uc.reg_write(X.UC_X86_REG_MSR, (MSR_EFER, value))
        elif n < 41:
            uc.reg_write(X.UC_X86_REG_FP0 + n - 33, (value & (2**64 - 1), value >> 64))
        elif n == 41:
            uc.reg_write(X.UC_X86_REG_FPCW, value)
        elif n == 42:
            uc.reg_write(X.UC_X86_REG_FPSW, value)
        elif 49 <= n < 65:
            uc.reg_write(getattr(X, f"UC_X86_REG_XMM{n - 49}"), value)
        elif n == 65:
            uc.reg_write(X.UC_X86_REG_MXCSR, value)
        return size


class Arm64Target(Target):
    arch_name = "aarch64"
    core_xml = "aarch64-core.xml"
    extra_xml = ("aarch64-fpu.xml",)
    sizes = (8,) * 33 + (4,) + (16,) * 32 + (4, 4)
    #: the ``g`` packet has the core registers only: QEMU registers aarch64-fpu.xml
    #: with g_pos 0 (gdb_register_coprocessor), outside the ``g`` packet
    g_count = 34

    def _x(self, n: int) -> int:
        return {29: A.UC_ARM64_REG_X29, 30: A.UC_ARM64_REG_X30}.get(n, A.UC_ARM64_REG_X0 + n)

    def read(self, n: int) -> bytes | None:
        uc = self.uc
        if n < 31:
            return _u(uc.reg_read(self._x(n)), 8)
        if n == 31:
            return _u(uc.reg_read(A.UC_ARM64_REG_SP), 8)
        if n == 32:
            return _u(uc.reg_read(A.UC_ARM64_REG_PC), 8)
        if n == 33:
            return _u(uc.reg_read(A.UC_ARM64_REG_PSTATE), 4)
        if n < 66:
            return _u(uc.reg_read(A.UC_ARM64_REG_Q0 + n - 34), 16)
        if n == 66:
            return _u(uc.reg_read(A.UC_ARM64_REG_FPSR), 4)
        if n == 67:
            return _u(uc.reg_read(A.UC_ARM64_REG_FPCR), 4)
        return None

    def write(self, n: int, data: bytes) -> int:
        uc = self.uc
        if not 0 <= n < len(self.sizes):
            return 0
        size = self.sizes[n]
        value = int.from_bytes(data[:size], "little")
        if n < 31:
            uc.reg_write(self._x(n), value)
        elif n == 31:
            uc.reg_write(A.UC_ARM64_REG_SP, value)
        elif n == 32:
            uc.reg_write(A.UC_ARM64_REG_PC, value)
        elif n == 33:
            uc.reg_write(A.UC_ARM64_REG_PSTATE, value)
        elif n < 66:
            uc.reg_write(A.UC_ARM64_REG_Q0 + n - 34, value)
        elif n == 66:
            uc.reg_write(A.UC_ARM64_REG_FPSR, value)
        else:
            uc.reg_write(A.UC_ARM64_REG_FPCR, value)
        return size


def target_for(cpu: Cpu) -> Target:
    return X86Target(cpu) if cpu.arch == "x86_64" else Arm64Target(cpu)
