#!/usr/bin/env python3
"""What the gdb stub's breakpoints and watchpoints cost the code and data outside them.

Runs the ``spin`` guest (its loop reads and writes a 64-entry table) on a machine four ways
and prints the time of each run:

- ``plain``: no gdb stub (``Machine.debugger`` is None: nothing is hooked);
- ``breakpoint``: a breakpoint on a function spin never calls (a UC_HOOK_CODE hook bounded
  to that one address);
- ``watch-elsewhere``: a write watchpoint on memory spin never writes (its code; a
  UC_HOOK_MEM_WRITE
  hook bounded to it; Unicorn then takes every store through its slow path, where hooks
  are checked, as QEMU does only for the watched pages);
- ``step``: none of the above, but the first 1000 instructions single-stepped (a counted
  run each: the cost of gdb's ``stepi``).

Usage: ``python3 bench/gdbstub.py [--machine pc|virt] [--iters N]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from elftools.elf.elffile import ELFFile  # noqa: E402

from emu.config import DeviceSpec, MachineConfig  # noqa: E402
from emu.gdbstub.debug import BREAKPOINT_SW, WATCHPOINT_WRITE, Debugger  # noqa: E402
from emu.machine import Machine  # noqa: E402


def _symbol(path: Path, name: str) -> int:
    with path.open("rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        return symtab.get_symbol_by_name(name)[0]["st_value"]


def run(machine: str, iters: int, mode: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        return _run(machine, iters, mode, Path(tmp) / "out.txt")


def _run(machine: str, iters: int, mode: str, out: Path) -> float:
    arch = "x86_64" if machine == "pc" else "aarch64"
    kernel = ROOT / "guest_images" / arch / "spin.elf"
    devices = [DeviceSpec("isa-debug-exit,iobase=0xf4,iosize=0x04", "isa-debug-exit", {})] \
        if machine == "pc" else []
    m = Machine(MachineConfig(machine=machine, kernel=str(kernel), append=f"iters={iters}",
                              serial=[f"file:{out}"], devices=devices,
                              cpu=None if machine == "pc" else "cortex-a57"))
    if mode != "plain":
        m.debugger = Debugger(m)
    if mode == "breakpoint":
        m.debugger.insert(BREAKPOINT_SW, _symbol(kernel, "cpu_trap_without_vectors"), 1)
    elif mode == "watch-elsewhere":
        m.debugger.insert(WATCHPOINT_WRITE, _symbol(kernel, "main"), 8)  # code: never written
    steps = 1000 if mode == "step" else 0
    start = time.monotonic()
    if steps:
        m.power_on()
        for _ in range(steps):
            m.debugger.stepping = True
            m._run_slice()  # the step pauses the machine, as for gdb
            m.debugger.hit = None
            m.resume()
    m.run()
    elapsed = time.monotonic() - start
    m.close()
    assert out.read_text().startswith(f"spin: iters={iters} "), mode
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", default="pc", choices=("pc", "virt"))
    parser.add_argument("--iters", type=int, default=20_000_000)
    args = parser.parse_args()
    for mode in ("plain", "breakpoint", "watch-elsewhere", "step"):
        print(f"{mode:16s} {run(args.machine, args.iters, mode):6.2f} s", flush=True)


if __name__ == "__main__":
    main()
