"""CPUID of the default ``qemu64`` model as QEMU 7.2 answers it (target/i386/cpu.c,
builtin_x86_defs "qemu64" and cpu_x86_cpuid), where Unicorn's copy of QEMU answers as an
older QEMU did.

Unicorn's qemu64 is QEMU 5's: family 6, model 6, stepping 3, Intel's cache leaves 2 and 4
filled in, leaf 0xB empty and no L3 in leaf 0x80000006. QEMU 7.2's qemu64 is family 15,
model 107, stepping 1 (leaf 1 and 0x80000001 EAX 0x00060fb1); as an AMD CPU on a 7.2 machine
type (``vendor_cpuid_only``) it answers leaves 2 and 4 with zeros; it enumerates the
topology in leaf 0xB (``cpuid-0xb``: one thread per core, one core per socket, as QEMU's
default ``-smp`` topology makes it); and its leaf 0x80000006 EDX describes the legacy 16 MiB
16-way L3 (``l3-cache``). With ``-smp N[,maxcpus=M]`` QEMU 7.2 makes one socket of M
single-thread cores, which leaves 1 (logical count, HTT), 0xB, 0x80000001 (CmpLegacy) and
0x80000008 (core count, APIC ID width) describe; emu answers for its one emulated CPU, the
bootstrap processor (APIC ID 0). Every other leaf (and the features in leaf 1 and 0x80000001) is
the same on both, so the hook lets Unicorn answer those. Other ``-cpu`` models keep
Unicorn's answers.

Linux shows the difference: ``CPU: AMD QEMU Virtual CPU version 2.5+ (family: 0xf, model:
0x6b, stepping: 0x1)``, and from family 0xf on it reads the AMD TLB leaves
(``Last level iTLB entries: 4KB 512, 2MB 255, 4MB 127``).
"""

from __future__ import annotations

import ctypes
from typing import Any

from unicorn import UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_64, Uc
from unicorn import x86_const as X

#: family 15, model 107 (extended model 6, model 0xb), stepping 1
QEMU64_VERSION = 0x00060FB1
#: hw/i386/topology.h CPUID_TOPOLOGY_LEVEL_SMT / _CORE
LEVEL_SMT, LEVEL_CORE = 1 << 8, 2 << 8
#: encode_cache_cpuid80000006's EDX for QEMU's legacy L3: 16 MiB (in 512 KiB units at bit
#: 18), 16-way (AMD_ENC_ASSOC 0x8 at bit 12), one line per tag, 64-byte lines
LEGACY_L3_EDX = (32 << 18) | (0x8 << 12) | (1 << 8) | 64


def _unicorn_answer(model: int, leaf: int) -> tuple[int, int, int, int]:
    """What Unicorn's own CPUID gives for ``leaf`` (subleaf 0), on a scratch CPU."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64, cpu=model)
    uc.mem_map(0x1000, 0x1000)
    uc.mem_write(0x1000, b"\x0f\xa2")  # cpuid
    uc.reg_write(X.UC_X86_REG_RAX, leaf)
    uc.reg_write(X.UC_X86_REG_RCX, 0)
    uc.emu_start(0x1000, 0x1002)
    return tuple(uc.reg_read(r) & 0xFFFFFFFF for r in (  # type: ignore[return-value]
        X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX))


def qemu72_leaf(leaf: int, sub: int, cores: int,
                unicorn: dict[int, tuple[int, int, int, int]]
                ) -> tuple[int, int, int, int] | None:
    """QEMU 7.2's answer where it differs from Unicorn's, else None, for the bootstrap CPU
    (APIC ID 0) of a socket of ``cores`` single-thread cores."""
    pkg_offset = (cores - 1).bit_length()  # apicid_pkg_offset: no threads or dies to count
    if leaf == 1:
        _eax, ebx, ecx, edx = unicorn[leaf]
        if cores > 1:  # the logical processor count, and HTT
            ebx = (ebx & ~0xFF0000) | (cores << 16)
            edx |= 1 << 28
        return QEMU64_VERSION, ebx, ecx, edx
    if leaf == 0x80000001:
        _eax, ebx, ecx, edx = unicorn[leaf]
        if cores > 1:
            ecx |= 1 << 1  # CmpLegacy
        return QEMU64_VERSION, ebx, ecx, edx
    if leaf in (2, 4):
        return 0, 0, 0, 0
    if leaf == 0xB:
        sub &= 0xFF
        if sub == 0:
            return 0, 1, sub | LEVEL_SMT, 0
        if sub == 1:
            return pkg_offset, cores, sub | LEVEL_CORE, 0
        return 0, 0, sub, 0
    if leaf == 0x80000006:
        eax, ebx, ecx, _edx = unicorn[leaf]
        return eax, ebx, ecx, LEGACY_L3_EDX
    if leaf == 0x80000008 and cores > 1:
        eax, ebx, ecx, edx = unicorn[leaf]
        return eax, ebx, ecx | (pkg_offset << 12) | (cores - 1), edx
    return None


class Qemu72Cpuid:
    """The CPUID hook on one CPU; ``cores`` is the socket's core count (QEMU 7.2 gives
    ``-smp N[,maxcpus=M]`` one socket of M cores, one thread each)."""

    def __init__(self, uc: Uc, model: int) -> None:
        from unicorn.unicorn_py3.arch.intel import HOOK_INSN_CPUID_CFUNC

        self.cores = 1
        unicorn = {leaf: _unicorn_answer(model, leaf)
                   for leaf in (1, 0x80000001, 0x80000006, 0x80000008)}

        def cpuid(_uch: Any, _key: Any) -> int:
            leaf = uc.reg_read(X.UC_X86_REG_RAX) & 0xFFFFFFFF
            sub = uc.reg_read(X.UC_X86_REG_RCX) & 0xFFFFFFFF
            answer = qemu72_leaf(leaf, sub, self.cores, unicorn)
            if answer is None:
                return 0  # Unicorn's own CPUID runs
            for reg, value in zip((X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX,
                                   X.UC_X86_REG_RDX), answer, strict=True):
                uc.reg_write(reg, value)
            return 1  # skip Unicorn's

        add = uc._Uc__do_hook_add  # type: ignore[attr-defined]
        add(UC_HOOK_INSN, HOOK_INSN_CPUID_CFUNC(cpuid), 1, 0,
            ctypes.c_int(X.UC_X86_INS_CPUID))
