"""``info registers``: the CPU state in the layout of QEMU's ``cpu_dump_state``.

x86_64 follows target/i386/cpu-dump.c (``x86_cpu_dump_state`` with CPU_DUMP_FPU), aarch64
target/arm/cpu.c (``aarch64_cpu_dump_state``). The monitor prints ``"\\nCPU#0\\n"`` and then
this text, as QEMU's ``hmp_info_registers`` does.

What Unicorn does not expose is taken from where the CPU would have taken it: the hidden
part of a segment register (base, limit, access flags) from its descriptor in the guest's
GDT, as it was loaded (emu.cpu.x86.X86Cpu.dump_state). XCR0 cannot be read, so the vector
registers are shown as XMM (QEMU shows YMM/ZMM once a guest enables AVX in XCR0); II (the
interrupt shadow), SMM and A20 are the values of a machine without interrupts, SMM or a
A20 gate: 0, 0 and 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emu.cpu import Cpu
    from emu.cpu.arm64 import Arm64Cpu
    from emu.cpu.x86 import X86Cpu

# x86 descriptor flag bits (QEMU target/i386/cpu.h)
DESC_TYPE_SHIFT = 8
DESC_A = 1 << 8
DESC_R = DESC_W = 1 << 9
DESC_C = DESC_E = 1 << 10
DESC_CS = 1 << 11
DESC_S = 1 << 12
DESC_DPL_SHIFT = 13
DESC_P = 1 << 15
DESC_L = 1 << 21
DESC_B = 1 << 22
CR0_PE = 1
EFER_LMA = 1 << 10

_SYS_TYPES = (
    ("Reserved", "TSS16-avl", "LDT", "TSS16-busy", "CallGate16", "TaskGate", "IntGate16",
     "TrapGate16", "Reserved", "TSS32-avl", "Reserved", "TSS32-busy", "CallGate32",
     "Reserved", "IntGate32", "TrapGate32"),
    ("<hiword>", "Reserved", "LDT", "Reserved", "Reserved", "Reserved", "Reserved",
     "Reserved", "Reserved", "TSS64-avl", "Reserved", "TSS64-busy", "CallGate64",
     "Reserved", "IntGate64", "TrapGate64"),
)


def format_registers(cpu: Cpu, halted: bool) -> str:
    """The register dump of ``cpu`` (stopped), ``halted``: it waits in HLT/WFI."""
    if cpu.arch == "x86_64":
        return _x86(cpu, halted)  # type: ignore[arg-type]
    return _arm64(cpu)  # type: ignore[arg-type]


def _flags_text(eflags: int) -> str:
    bits = ((10, "D"), (11, "O"), (7, "S"), (6, "Z"), (4, "A"), (2, "P"), (0, "C"))
    return "".join(c if eflags >> b & 1 else "-" for b, c in bits)


def _x86_segment(name: str, seg: tuple[int, int, int, int], cs64: bool, pe: bool,
                 lma: bool) -> str:
    """cpu_x86_dump_seg_cache: ``seg`` is (selector, limit, flags, base)."""
    selector, limit, flags, base = seg
    if cs64:
        line = f"{name:<3s}={selector:04x} {base:016x} {limit:08x} {flags & 0x00FFFF00:08x}"
    else:
        line = (f"{name:<3s}={selector:04x} {base & 0xFFFFFFFF:08x} {limit:08x} "
                f"{flags & 0x00FFFF00:08x}")
    if not pe or not flags & DESC_P:
        return line
    line += f" DPL={(flags >> DESC_DPL_SHIFT) & 3} "
    if flags & DESC_S:
        if flags & DESC_CS:
            line += "CS64" if flags & DESC_L else ("CS32" if flags & DESC_B else "CS16")
            line += f" [{'C' if flags & DESC_C else '-'}{'R' if flags & DESC_R else '-'}"
        else:
            line += "DS  " if flags & DESC_B or lma else "DS16"
            line += f" [{'E' if flags & DESC_E else '-'}{'W' if flags & DESC_W else '-'}"
        line += f"{'A' if flags & DESC_A else '-'}]"
    else:
        line += _SYS_TYPES[1 if lma else 0][(flags >> DESC_TYPE_SHIFT) & 15]
    return line


def _x86(cpu: X86Cpu, halted: bool) -> str:
    from unicorn import x86_const as X

    uc = cpu.uc
    state = cpu.dump_state()
    cr = state["cr"]
    assert isinstance(cr, list)
    efer = uc.reg_read(X.UC_X86_REG_MSR, 0xC0000080)
    lma = bool(efer & EFER_LMA)
    pe = bool(cr[0] & CR0_PE)
    cs = state["cs"]
    assert isinstance(cs, tuple)
    cs64 = lma and bool(cs[2] & DESC_L)
    cpl = cs[0] & 3 if pe else 0
    eflags = uc.reg_read(X.UC_X86_REG_EFLAGS)
    reg = {name: uc.reg_read(getattr(X, f"UC_X86_REG_{name.upper()}"))
           for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9",
                        "r10", "r11", "r12", "r13", "r14", "r15", "rip")}
    tail = (f"[{_flags_text(eflags)}] CPL={cpl} II=0 A20=1 SMM=0 HLT={int(halted)}")
    out: list[str] = []
    if cs64:
        names = ("RAX", "RBX", "RCX", "RDX", "RSI", "RDI", "RBP", "RSP", "R8 ", "R9 ", "R10",
                 "R11", "R12", "R13", "R14", "R15")
        keys = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
                "r11", "r12", "r13", "r14", "r15")
        for row in range(4):
            out.append(" ".join(f"{names[i]}={reg[keys[i]]:016x}"
                                for i in range(row * 4, row * 4 + 4)))
        out.append(f"RIP={reg['rip']:016x} RFL={eflags:08x} {tail}")
    else:
        def r32(k: str) -> str:
            return f"{reg[k] & 0xFFFFFFFF:08x}"
        out.append(f"EAX={r32('rax')} EBX={r32('rbx')} ECX={r32('rcx')} EDX={r32('rdx')}")
        out.append(f"ESI={r32('rsi')} EDI={r32('rdi')} EBP={r32('rbp')} ESP={r32('rsp')}")
        out.append(f"EIP={r32('rip')} EFL={eflags:08x} {tail}")
    for name in ("es", "cs", "ss", "ds", "fs", "gs"):
        seg = state[name]
        assert isinstance(seg, tuple)
        out.append(_x86_segment(name.upper(), seg, cs64, pe, lma))
    for name, key in (("LDT", "ldtr"), ("TR", "tr")):
        sel, base, limit, flags = uc.reg_read(getattr(X, f"UC_X86_REG_{key.upper()}"))
        out.append(_x86_segment(name, (sel, limit, flags, base), cs64, pe, lma))
    gdtr, idtr = state["gdtr"], state["idtr"]
    assert isinstance(gdtr, tuple) and isinstance(idtr, tuple)
    dr = [uc.reg_read(getattr(X, f"UC_X86_REG_DR{i}")) for i in range(8)]
    if lma:
        out.append(f"GDT=     {gdtr[3]:016x} {gdtr[1]:08x}")
        out.append(f"IDT=     {idtr[3]:016x} {idtr[1]:08x}")
        out.append(f"CR0={cr[0] & 0xFFFFFFFF:08x} CR2={cr[2]:016x} CR3={cr[3]:016x} "
                   f"CR4={cr[4] & 0xFFFFFFFF:08x}")
    else:
        out.append(f"GDT=     {gdtr[3] & 0xFFFFFFFF:08x} {gdtr[1]:08x}")
        out.append(f"IDT=     {idtr[3] & 0xFFFFFFFF:08x} {idtr[1]:08x}")
        out.append(" ".join(f"CR{i}={cr[i] & 0xFFFFFFFF:08x}" for i in (0, 2, 3, 4)))
    out.append("".join(f"DR{i}={dr[i]:016x} " for i in range(4)))
    out.append(f"DR6={dr[6]:016x} DR7={dr[7]:016x}")
    out.append(f"EFER={efer:016x}")
    fsw = uc.reg_read(X.UC_X86_REG_FPSW)
    tags = uc.reg_read(X.UC_X86_REG_FPTAG)
    ftw = sum(1 << i for i in range(8) if (tags >> (2 * i)) & 3 != 3)
    out.append(f"FCW={uc.reg_read(X.UC_X86_REG_FPCW):04x} FSW={fsw:04x} [ST={(fsw >> 11) & 7}] "
               f"FTW={ftw:02x} MXCSR={uc.reg_read(X.UC_X86_REG_MXCSR):08x}")
    fprs = []
    for i in range(8):
        mantissa, exponent = uc.reg_read(X.UC_X86_REG_FP0 + i)
        fprs.append(f"FPR{i}={mantissa:016x} {exponent:04x}")
    out += [f"{fprs[i]} {fprs[i + 1]}" for i in range(0, 8, 2)]
    count = 16 if cs64 else 8
    xmm = []
    for i in range(count):
        v = uc.reg_read(X.UC_X86_REG_XMM0 + i)
        xmm.append(f"XMM{i:02d}={v >> 64:016x} {v & (2**64 - 1):016x}")
    out += [f"{xmm[i]} {xmm[i + 1]}" for i in range(0, count, 2)]
    return "\n".join(out) + "\n"


def _arm64(cpu: Arm64Cpu) -> str:
    from unicorn import arm64_const as A

    uc = cpu.uc
    pc = uc.reg_read(A.UC_ARM64_REG_PC)
    text = f" PC={pc:016x} "
    for i in range(31):
        text += f"X{i:02d}={cpu.get_x(i):016x}" + (" " if (i + 2) % 3 else "\n")
    text += f" SP={uc.reg_read(A.UC_ARM64_REG_SP):016x}\n"
    psr = uc.reg_read(A.UC_ARM64_REG_PSTATE)
    el = (psr >> 2) & 3
    nzcv = "".join(c if psr >> b & 1 else "-" for b, c in ((31, "N"), (30, "Z"), (29, "C"),
                                                           (28, "V")))
    text += f"PSTATE={psr:08x} {nzcv} EL{el}{'h' if psr & 1 else 't'}"
    # fp_exception_el at EL1 without EL2/EL3: CPACR_EL1.FPEN 0b01/0b11 lets EL1 use the FPU
    fpen = (uc.reg_read(A.UC_ARM64_REG_CPACR_EL1) >> 20) & 3
    if (el == 0 and fpen != 3) or (el == 1 and fpen in (0, 2)):
        return text + "    FPU disabled\n"
    text += (f"     FPCR={uc.reg_read(A.UC_ARM64_REG_FPCR):08x} "
             f"FPSR={uc.reg_read(A.UC_ARM64_REG_FPSR):08x}\n")
    for i in range(32):
        v = uc.reg_read(A.UC_ARM64_REG_Q0 + i)
        text += f"Q{i:02d}={v >> 64:016x}:{v & (2**64 - 1):016x}" + ("\n" if i & 1 else " ")
    return text


#: target/i386/monitor.c monitor_defs: ``$name`` -> (register, part); MD_I32 entries are
#: 32-bit and sign-extended, the others target_long (64-bit)
_X86_MONITOR_DEFS: dict[str, tuple[str, str]] = {
    **{n: (n, "tl") for n in ("eax", "ecx", "edx", "ebx", "esi", "edi", "eflags")},
    "esp": ("esp", "tl"), "sp": ("esp", "tl"), "ebp": ("ebp", "tl"), "fp": ("ebp", "tl"),
    **{f"r{i}": (f"r{i}", "tl") for i in range(8, 16)},
    "eip": ("eip", "tl"), "pc": ("pc", "tl"),
    **{seg: (seg, "selector") for seg in ("cs", "ds", "es", "ss", "fs", "gs")},
    **{f"{seg}.base": (seg, "base") for seg in ("cs", "ds", "es", "ss", "fs", "gs")},
    **{f"{seg}.limit": (seg, "limit") for seg in ("cs", "ds", "es", "ss", "fs", "gs")},
}


def monitor_register(cpu: Cpu, name: str) -> int | None:
    """QEMU's get_monitor_def: the value of ``$name`` in a monitor expression, or None.
    x86_64 has target/i386/monitor.c's names; aarch64 has none in QEMU 7.2."""
    if cpu.arch != "x86_64" or name not in _X86_MONITOR_DEFS:
        return None
    from unicorn import x86_const as X

    reg, part = _X86_MONITOR_DEFS[name]
    uc = cpu.uc
    if part == "tl":
        if reg == "pc":
            state = cpu.dump_state()  # type: ignore[attr-defined]
            return (uc.reg_read(X.UC_X86_REG_RIP) + state["cs"][3]) & (2**64 - 1)
        return uc.reg_read(getattr(X, f"UC_X86_REG_{'R' + reg[1:] if reg[0] == 'e' else reg}"
                                   .upper()))
    state = cpu.dump_state()  # type: ignore[attr-defined]
    selector, limit, _flags, base = state[reg]
    if part == "base":
        return base
    value = selector if part == "selector" else limit
    return value - (1 << 32) if value >> 31 else value


def x86_code_size(cpu: Cpu) -> int:
    """The code segment's operand size for disassembly: 64 in long mode with CS.L, else 32
    or 16 by CS.B (QEMU's memory_dump picks the disassembler mode the same way)."""
    from unicorn import x86_const as X

    state = cpu.dump_state()  # type: ignore[attr-defined]
    flags = state["cs"][2]
    if cpu.uc.reg_read(X.UC_X86_REG_MSR, 0xC0000080) & EFER_LMA and flags & DESC_L:
        return 64
    return 32 if flags & DESC_B else 16
