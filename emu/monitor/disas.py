"""``x/i`` and ``xp/i``: disassembly in the layout of QEMU's capstone printer
(disas/capstone.c, cap_disas_monitor and cap_dump_insn).

QEMU 7.2 as Debian builds it disassembles with capstone 4.0.2; emu uses the same version's
Python binding (the ``disas`` extra: ``pip install 'emu[disas]'``), so the text is the same:
x86 in AT&T syntax with up to 8 instruction bytes per line, aarch64 with the 32-bit
instruction word. Without capstone emu answers as a QEMU without a disassembler for the
target does (``Asm output not supported on this arch``).
"""

from __future__ import annotations

from collections.abc import Callable

#: reads guest memory for the disassembler: (address, size) -> bytes or None
MemoryReader = Callable[[int, int], bytes | None]


def disassemble(arch: str, code_size: int, addr: int, count: int,
                read: MemoryReader) -> str:
    """``count`` instructions from ``addr``; ``code_size`` is 16, 32 or 64 on x86."""
    try:
        import capstone
    except ImportError:
        return f"0x{addr:08x}: Asm output not supported on this arch\n"
    if arch == "x86_64":
        mode = {16: capstone.CS_MODE_16, 32: capstone.CS_MODE_32}.get(code_size,
                                                                       capstone.CS_MODE_64)
        md = capstone.Cs(capstone.CS_ARCH_X86, mode)
        md.syntax = capstone.CS_OPT_SYNTAX_ATT
        unit, split = 1, 8
    else:
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        unit, split = 4, 4
    md.skipdata = True  # as QEMU's cap_disas_start: undecodable bytes become ".byte"
    out: list[str] = []
    buf = b""
    pc = addr
    while True:
        # cap_disas_monitor: top the 32-byte buffer up (not past the next 1 KiB boundary,
        # counted from the instruction's start), then decode one instruction
        boundary = (pc + len(buf) + 1 + 1023) & ~1023
        size = min(32 - len(buf), boundary - pc)
        if size <= 0:  # cannot happen with skipdata; QEMU asserts here
            break
        data = read(pc + len(buf), size)
        if data is None:
            out.append(f"0x{pc:08x}: unable to read memory\n")
            break
        buf += data
        insn = next(md.disasm(buf, pc, count=1), None)
        if insn is not None:
            out.append(_dump_insn(insn.address, bytes(insn.bytes), insn.mnemonic,
                                  insn.op_str, unit, split))
            buf = buf[insn.size:]
            pc += insn.size
            count -= 1
            if count <= 0:
                break
    return "".join(out)


def _units(data: bytes, unit: int) -> str:
    if unit == 4:
        return "".join(f" {int.from_bytes(data[i:i + 4], 'little'):08x}"
                       for i in range(0, len(data), 4))
    return "".join(f" {b:02x}" for b in data)


def _dump_insn(address: int, data: bytes, mnemonic: str, op_str: str, unit: int,
               split: int) -> str:
    """cap_dump_insn."""
    line = f"0x{address:08x}: " + _units(data[:split], unit)
    if len(data) < split:
        line += " " * ((split - len(data)) // unit * (2 * unit + 1))
    line += f"  {mnemonic:<8s} {op_str}\n"
    for i in range(split, len(data), split):
        line += f"0x{address + i:08x}: " + _units(data[i:i + split], unit) + "\n"
    return line
