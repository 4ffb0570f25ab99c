"""``emu dump-info FILE``: what is in a core dump, read with pyelftools.

Prints the ELF header summary, each note (CPU registers decoded, QEMU's CPU state, the
VMCOREINFO text), the memory ranges and the phys_base the VMCOREINFO gives. A file that is not
an ELF core is one line on stderr and exit status 1.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from emu.dump import vmcoreinfo_phys_base
from emu.dump.notes import X86_64_PRSTATUS_REGS

AARCH64_REGS = [f"x{i}" for i in range(31)] + ["sp", "pc", "pstate"]


def _desc(note: dict) -> bytes:  # type: ignore[type-arg]
    data = note["n_descdata"]
    return data.encode("latin-1") if isinstance(data, str) else bytes(data)


def _regs(names: Sequence[str], values: Sequence[int]) -> list[str]:
    pairs = [f"{n}=0x{v:x}" for n, v in zip(names, values, strict=False)]
    return ["    " + " ".join(pairs[i : i + 6]) for i in range(0, len(pairs), 6)]


def describe(path: str) -> list[str]:
    """The report lines for ``path``; raises ValueError with a one-line reason."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - pyelftools reads lazily from the open file
    except OSError as e:
        raise ValueError(f"{path}: {e.strerror}") from None
    with f:
        try:
            elf = ELFFile(f)
        except ELFError as e:
            raise ValueError(f"{path}: not an ELF file ({e})") from None
        if elf["e_type"] != "ET_CORE":
            raise ValueError(f"{path}: not a core dump (ELF type {elf['e_type']})")
        machine = elf["e_machine"]
        arch = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}.get(machine, machine)
        lines = [f"{path}: ELF{elf.elfclass} core dump, {arch}, "
                 f"{elf.num_segments()} program headers, e_ehsize {elf['e_ehsize']}"]
        loads = []
        vmcoreinfo = ""
        cpu = 0
        try:
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD":
                    loads.append(seg)
                elif seg["p_type"] == "PT_NOTE":
                    lines.append("notes:")
                    for note in seg.iter_notes():
                        name, ntype, desc = note["n_name"], note["n_type"], _desc(note)
                        if name == "CORE" and ntype == "NT_PRSTATUS":
                            cpu += 1
                            pid = struct.unpack_from("<I", desc, 32)[0]
                            names = X86_64_PRSTATUS_REGS if arch == "x86_64" else AARCH64_REGS
                            values = struct.unpack_from(f"<{len(names)}Q", desc, 112)
                            lines.append(f"  CORE NT_PRSTATUS, {len(desc)} bytes: CPU {cpu}, "
                                         f"pid {pid}")
                            lines += _regs(names, values)
                        elif name == "QEMU":
                            version, size = struct.unpack_from("<II", desc)
                            regs = struct.unpack_from("<18Q", desc, 8)
                            lines.append(f"  QEMU CPU state, version {version}, size {size}")
                            lines += _regs(("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp",
                                            "rbp", "r8", "r9", "r10", "r11", "r12", "r13",
                                            "r14", "r15", "rip", "rflags"), regs)
                            crs = struct.unpack_from("<5Q", desc, 8 + 18 * 8 + 240)
                            lines += _regs([f"cr{i}" for i in range(5)], crs)
                        elif name == "VMCOREINFO":
                            vmcoreinfo = desc.decode(errors="replace")
                            lines.append(f"  VMCOREINFO, {len(desc)} bytes:")
                            lines += ["    " + x for x in vmcoreinfo.splitlines()]
                        else:
                            lines.append(f"  {name} {ntype}, {len(desc)} bytes")
        except (ELFError, struct.error) as e:
            raise ValueError(f"{path}: damaged core dump ({e})") from None
        lines.append("memory:")
        total = 0
        for seg in loads:
            start, size = seg["p_paddr"], seg["p_memsz"]
            total += size
            lines.append(f"  0x{start:016x}-0x{start + size - 1:016x}  {size >> 20:>8} MiB  "
                         f"vaddr 0x{seg['p_vaddr']:x}  file offset 0x{seg['p_offset']:x}")
        lines.append(f"  {total >> 20} MiB in {len(loads)} ranges")
        lines.append(f"phys_base: {_phys_base(arch, vmcoreinfo)}")
        return lines


def _phys_base(arch: str, text: str) -> str:
    key = "NUMBER(phys_base)" if arch == "x86_64" else "NUMBER(PHYS_OFFSET)"
    if not text:
        return "unknown (no VMCOREINFO)"
    value = vmcoreinfo_phys_base(arch, text.encode())
    return f"0x{value:x} (from {key})" if value is not None else f"unknown (no readable {key})"


def main(args: Sequence[str], err: Callable[[str], None]) -> int:
    """The ``dump-info`` subcommand."""
    if len(args) != 1 or args[0].startswith("-"):
        err("usage: emu dump-info FILE")
        return 1
    try:
        lines = describe(args[0])
    except ValueError as e:
        err(f"dump-info: {e}")
        return 1
    print("\n".join(lines))
    return 0
