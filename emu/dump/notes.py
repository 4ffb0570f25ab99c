"""ELF notes of a guest core dump (spec dump.md "ELF core"; QEMU target/i386/arch_dump.c,
target/arm/arch_dump.c): NT_PRSTATUS per CPU, QEMU's CPU-state note on x86, NT_PRFPREG on
aarch64. Plain functions from register snapshots to note bytes.

On x86 the PRSTATUS layout follows the CPU's mode, as QEMU's x86_cpu_write_elf64_note does:
x86_64's ``struct elf_prstatus`` (336 bytes) in long mode, i386's (144 bytes) otherwise."""

from __future__ import annotations

import struct

NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_ARM_SVE = 0x405
#: the largest SVE vector, in quadwords: QEMU's ARM_MAX_VQ, the length of Unicorn's and
#: QEMU 7.2's "max" CPU (sve_max_vq)
ARM_MAX_VQ = 16
SVE_PT_REGS_SVE = 1
PRSTATUS_HEADER = 112  # siginfo, cursig, sigpend, sighold, pids, four timevals
X86_64_PRSTATUS_SIZE = 336
I386_PRSTATUS_HEADER = 72  # the same fields with 32-bit longs: pr_pid at 24
I386_PRSTATUS_SIZE = 144
AARCH64_PRSTATUS_SIZE = 392
QEMU_CPU_STATE_VERSION = 1
QEMU_CPU_STATE_SIZE = 440

X86_64_PRSTATUS_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8",
                        "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "rflags",
                        "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs")
#: i386 ``struct user_regs_struct``: 17 32-bit slots (segment selectors in the low half)
I386_PRSTATUS_REGS = ("ebx", "ecx", "edx", "esi", "edi", "ebp", "eax", "ds", "es", "fs", "gs",
                      "orig_eax", "eip", "cs", "eflags", "esp", "ss")


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def elf_note(name: str, ntype: int, desc: bytes) -> bytes:
    """One ELF note: Elf64_Nhdr, the NUL-terminated name and the descriptor, each 4-aligned."""
    raw_name = name.encode() + b"\0"
    return struct.pack("<III", len(raw_name), len(desc), ntype) + _pad4(raw_name) + _pad4(desc)


def _prstatus_header(pid: int) -> bytearray:
    head = bytearray(PRSTATUS_HEADER)
    struct.pack_into("<I", head, 32, pid)  # pr_pid: gdb needs distinct non-zero thread ids
    return head


def x86_64_prstatus(state: dict[str, object], cpu_index: int) -> bytes:
    """NT_PRSTATUS for x86_64 (struct elf_prstatus, 336 bytes; x86_64_write_elf64_note)."""
    values = []
    for name in X86_64_PRSTATUS_REGS:
        if name == "orig_rax":
            values.append(0)  # QEMU writes 0: a CPU stopped outside a system call has none
        elif name in ("cs", "ss", "ds", "es", "fs", "gs"):
            values.append(state[name][0])  # type: ignore[index]
        elif name in ("fs_base", "gs_base"):
            values.append(state[name[:2]][3])  # type: ignore[index]
        else:
            values.append(state[name])
    desc = _prstatus_header(cpu_index + 1) + struct.pack("<27Q", *values) + bytes(8)
    assert len(desc) == X86_64_PRSTATUS_SIZE
    return elf_note("CORE", NT_PRSTATUS, bytes(desc))


def i386_prstatus(state: dict[str, object], cpu_index: int) -> bytes:
    """NT_PRSTATUS for a CPU outside long mode (i386 struct elf_prstatus, 144 bytes;
    x86_fill_elf_prstatus): the low 32 bits of each register, orig_eax 0."""
    values = []
    for name in I386_PRSTATUS_REGS:
        if name == "orig_eax":
            values.append(0)
        elif name in ("cs", "ss", "ds", "es", "fs", "gs"):
            values.append(state[name][0] & 0xFFFF)  # type: ignore[index]
        else:
            values.append(state["r" + name[1:]] & 0xFFFFFFFF)  # type: ignore[operator]
    desc = bytearray(I386_PRSTATUS_SIZE)
    struct.pack_into("<I", desc, 24, cpu_index + 1)
    struct.pack_into("<17I", desc, I386_PRSTATUS_HEADER, *values)
    return elf_note("CORE", NT_PRSTATUS, bytes(desc))


def x86_64_qemu_cpu_state(state: dict[str, object]) -> bytes:
    """QEMU's "QEMU" note (QEMUCPUState version 1, 440 bytes), which crash reads on x86."""
    regs = [state[n] for n in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8",
                               "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip",
                               "rflags")]
    desc = struct.pack("<II18Q", QEMU_CPU_STATE_VERSION, QEMU_CPU_STATE_SIZE, *regs)
    for name in ("cs", "ds", "es", "fs", "gs", "ss", "ldtr", "tr", "gdtr", "idtr"):
        selector, limit, flags, base = state[name]  # type: ignore[misc]
        desc += struct.pack("<IIIIQ", selector, limit & 0xFFFFFFFF, flags & 0xFFFFFFFF, 0,
                            base)
    desc += struct.pack("<5Q", *state["cr"]) + struct.pack("<Q", state["kernel_gs_base"])  # type: ignore[arg-type]
    assert len(desc) == QEMU_CPU_STATE_SIZE
    return elf_note("QEMU", 0, desc)


def aarch64_prstatus(state: dict[str, object], cpu_index: int) -> bytes:
    """NT_PRSTATUS for aarch64 (392 bytes: x0-x30, sp, pc, pstate, pr_fpvalid)."""
    regs = [*state["x"], state["sp"], state["pc"], state["pstate"]]  # type: ignore[misc]
    desc = _prstatus_header(cpu_index + 1) + struct.pack("<34Q", *regs) + struct.pack("<II", 1, 0)
    assert len(desc) == AARCH64_PRSTATUS_SIZE
    return elf_note("CORE", NT_PRSTATUS, bytes(desc))


def aarch64_prfpreg(state: dict[str, object]) -> bytes:
    """NT_PRFPREG for aarch64 (user_fpsimd_state: v0-v31, fpsr, fpcr, padding: 528 bytes)."""
    desc = b"".join(v.to_bytes(16, "little") for v in state["v"])  # type: ignore[attr-defined]
    desc += struct.pack("<II", state["fpsr"], state["fpcr"]) + bytes(8)
    return elf_note("CORE", NT_PRFPREG, desc)


def _sve_size(vq: int) -> int:
    """Size of the SVE note for ``vq`` quadwords (arch/arm64/include/uapi/asm/ptrace.h
    SVE_PT_SVE_SIZE: a 16-byte header, 32 Z registers, 16 P registers and FFR, FPSR and FPCR,
    each part 16-byte aligned)."""
    pregs = 16 + 32 * vq * 16
    fpsr = pregs + 17 * vq * 2
    fpsr += -fpsr % 16
    end = fpsr + 8
    return end + -end % 16


def aarch64_sve(state: dict[str, object]) -> bytes:
    """NT_ARM_SVE ("LINUX"), which QEMU writes after NT_PRFPREG for a CPU with SVE
    (aarch64_write_elf64_sve): user_sve_header (size, max_size, vl, max_vl, flags
    SVE_PT_REGS_SVE), Z0-Z31, P0-P15, FFR, FPSR, FPCR, at the current vector length (EL1's:
    ZCR_EL1.LEN + 1 quadwords, at most ARM_MAX_VQ; emu emulates no EL2 or EL3 that could
    shorten it).

    Unicorn 2.1 advertises SVE on "max" (ID_AA64PFR0_EL1.SVE = 1) but treats every SVE
    instruction as undefined, so no guest can write a Z register above bit 127 or a P
    register: those bits are zero, as the CPU holds them, and Z's low 128 bits are V's.
    """
    vq = min((state["zcr_el1"] & 0xF) + 1, ARM_MAX_VQ)  # type: ignore[operator]
    size = _sve_size(vq)
    desc = bytearray(size)
    struct.pack_into("<IIHHHH", desc, 0, size, _sve_size(ARM_MAX_VQ), vq * 16,
                     ARM_MAX_VQ * 16, SVE_PT_REGS_SVE, 0)
    for i, v in enumerate(state["v"]):  # type: ignore[arg-type]
        desc[16 + i * vq * 16 : 16 + i * vq * 16 + 16] = v.to_bytes(16, "little")
    fpsr = 16 + 32 * vq * 16 + 17 * vq * 2
    fpsr += -fpsr % 16
    struct.pack_into("<II", desc, fpsr, state["fpsr"], state["fpcr"])
    return elf_note("LINUX", NT_ARM_SVE, bytes(desc))
