#!/usr/bin/env python3
"""What one guest register access costs inside emu, against the floor of a Python callback.

In one process, without a machine or firmware, a Unicorn CPU runs a loop of 2^20 accesses
to fw_cfg's data register (x86_64: ``in al, dx`` with dx = 0x511; aarch64: ``ldrb w3, [x1]``
with x1 = 0x09020000), and the CPU time per access is measured (``time.process_time``, so
that other processes on the machine count less) for:

* **no hook** (x86 only): IN with no hook installed (Unicorn answers 0): the instruction
  and the loop themselves;
* **empty callback, Uc.hook_add / Uc.mmio_map**: an empty Python callback installed through
  the binding's public API, which wraps it in two more Python calls per access;
* **empty callback, ctypes direct**: an empty Python function as the ctypes callback itself
  (how emu.bus installs its hooks): the floor of any Python device model;
* **emu**: emu's bus (emu.bus.PortBus / MmioBus) and fw_cfg device (emu.devices.fw_cfg)
  reading a selected 2 MiB fw_cfg file, the path a guest's byte-by-byte read takes.

Each is run ``--runs`` times (default 5), in turn; the table shows the fastest run (the one
least disturbed by the machine's load) and the median. ``bench/fw_cfg_dma.py`` measures the
same access end to end in a booted guest, against QEMU.

Usage: ``python3 bench/port_io.py [--runs N] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, add_markdown_arg, finish, header

sys.path.insert(0, str(REPO))
from unicorn import UC_ARCH_ARM64, UC_ARCH_X86, UC_HOOK_INSN, UC_MODE_64, UC_MODE_ARM, Uc
from unicorn.unicorn_py3.arch.intel import HOOK_INSN_IN_CFUNC
from unicorn.unicorn_py3.unicorn import MMIO_READ_CFUNC, uclib
from unicorn.x86_const import UC_X86_INS_IN

from emu.bus import MmioBus, PortBus
from emu.devices.fw_cfg import FwCfg, FwCfgIo, FwCfgMem
from emu.memory import AddressSpace

N = 1 << 20
X86_CODE = (b"\xb9" + N.to_bytes(4, "little")  # mov ecx, N
            + b"\x66\xba\x11\x05"              # mov dx, 0x511
            + b"\xec\xff\xc9\x75\xfb"          # 1: in al, dx; dec ecx; jnz 1b
            + b"\xf4")                         # hlt (not executed: the run ends before it)
A64_CODE = struct.pack("<5I",
                       0xD2A12041,  # movz x1, #0x0902, lsl #16
                       0xD2A00202,  # movz x2, #0x10, lsl #16  (N)
                       0x39400023,  # 1: ldrb w3, [x1]
                       0xF1000442,  # subs x2, x2, #1
                       0x54FFFFC1)  # b.ne 1b
FW_CFG_MMIO = 0x09020000
CODE = 0x1000


def _cpu(arch: str) -> Uc:
    uc = Uc(UC_ARCH_X86, UC_MODE_64) if arch == "x86" else Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, X86_CODE if arch == "x86" else A64_CODE)
    return uc


def _run(uc: Uc, arch: str) -> float:
    """CPU microseconds per access of one run of the loop."""
    until = CODE + len(X86_CODE) - 1 if arch == "x86" else CODE + len(A64_CODE)
    start = time.process_time()
    uc.emu_start(CODE, until)
    return (time.process_time() - start) / N * 1e6


def _fw_cfg() -> FwCfg:
    core = FwCfg(AddressSpace())
    core.select(core.add_file("opt/bench", bytes(range(256)) * 8192))
    return core


def x86_no_hook() -> float:
    return _run(_cpu("x86"), "x86")


def x86_hook_add() -> float:
    uc = _cpu("x86")
    uc.hook_add(UC_HOOK_INSN, lambda _uc, _port, _size, _ud: 0, None, 1, 0, UC_X86_INS_IN)
    return _run(uc, "x86")


def x86_direct() -> float:
    uc = _cpu("x86")
    uc._Uc__do_hook_add(UC_HOOK_INSN, HOOK_INSN_IN_CFUNC(lambda _h, _port, _size, _key: 0),
                        1, 0, ctypes.c_int(UC_X86_INS_IN))
    return _run(uc, "x86")


def x86_emu() -> float:
    io = FwCfgIo(_fw_cfg())
    bus = PortBus()
    bus.map(0x510, io.comb)
    bus.map(0x514, io.dma)
    uc = _cpu("x86")
    bus.attach(uc)
    return _run(uc, "x86")


def a64_mmio_map() -> float:
    uc = _cpu("a64")
    uc.mmio_map(FW_CFG_MMIO, 0x1000, lambda _uc, _off, _size, _ud: 0, None,
                lambda _uc, _off, _size, _value, _ud: None, None)
    return _run(uc, "a64")


def a64_direct() -> float:
    uc = _cpu("a64")
    read = MMIO_READ_CFUNC(lambda _h, _off, _size, _key: 0)
    assert uclib.uc_mmio_map(uc._uch, FW_CFG_MMIO, 0x1000, read, 0, None, 0) == 0
    uc._mmio_callbacks[(FW_CFG_MMIO, FW_CFG_MMIO + 0x1000)] = (read, None)
    return _run(uc, "a64")


def a64_emu() -> float:
    mem = FwCfgMem(_fw_cfg())
    bus = MmioBus()
    bus.map(FW_CFG_MMIO, mem.data)
    bus.map(FW_CFG_MMIO + 8, mem.ctl)
    bus.map(FW_CFG_MMIO + 16, mem.dma)
    uc = _cpu("a64")
    bus.attach(uc)
    return _run(uc, "a64")


ROWS: list[tuple[str, str, Callable[[], float]]] = [
    ("x86_64 `in al, dx`", "no hook (Unicorn answers 0)", x86_no_hook),
    ("x86_64 `in al, dx`", "empty callback, `Uc.hook_add`", x86_hook_add),
    ("x86_64 `in al, dx`", "empty callback, ctypes direct (the floor)", x86_direct),
    ("x86_64 `in al, dx`", "emu: PortBus + fw_cfg data port", x86_emu),
    ("aarch64 `ldrb` MMIO", "empty callback, `Uc.mmio_map`", a64_mmio_map),
    ("aarch64 `ldrb` MMIO", "empty callback, ctypes direct (the floor)", a64_direct),
    ("aarch64 `ldrb` MMIO", "emu: MmioBus + fw_cfg data register", a64_emu),
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, metavar="N", help="runs of each (default 5)")
    add_markdown_arg(p)
    ns = p.parse_args(argv)
    if ns.runs < 1:
        p.error("--runs must be at least 1")
    times: dict[tuple[str, str], list[float]] = {(a, label): [] for a, label, _ in ROWS}
    for i in range(ns.runs):
        for access, label, fn in ROWS:
            times[access, label].append(fn())
            print(f"  run {i + 1}/{ns.runs} {access:20} {label:45} "
                  f"{times[access, label][-1]:.3f} us",
                  file=sys.stderr, flush=True)
    rows = ["| access | handler | fastest, us CPU per access | median, us |",
            "| --- | --- | ---: | ---: |"]
    for access, label, _ in ROWS:
        xs = times[access, label]
        rows.append(f"| {access} | {label} | {min(xs):.3f} | {statistics.median(xs):.3f} |")
    text = f"{header()}\n\n" + "\n".join(rows) + "\n"
    return finish("port_io", text, ns.markdown, [], "run(s)")


if __name__ == "__main__":
    sys.exit(main())
