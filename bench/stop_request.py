#!/usr/bin/env python3
"""How the CPU can be stopped from another thread, and what each way costs and breaks.

The guest is the loop docs/devel/run-loop.md measures: 2,000,000 iterations of
``lock add qword [0x2000], 1; dec rcx; jnz`` (one translated block per iteration), run on a
bare Unicorn x86_64 CPU while a second thread asks for a stop every PERIOD and the loop
resumes at once. Three ways, each printed with its time, stop count and final counter:

- ``none``: no stops (the reference time; the counter must be 2,000,000);
- ``emu_stop``: ``uc.emu_stop()`` from the thread (an asynchronous stop: some instructions are
  abandoned after their store and run again, so the counter comes out too high);
- ``hook``: emu's StopRequest (emu/cpu/stop_request.py, a native block hook tested by the
  thread's flag): stops at block boundaries only, so the counter is exact.

Usage: ``python3 bench/stop_request.py [--periods-us 1000,100,20]``
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from unicorn import UC_ARCH_X86, UC_MODE_64, Uc
from unicorn.x86_const import UC_X86_REG_RCX, UC_X86_REG_RIP

from emu.cpu.stop_request import StopRequest

N = 2_000_000
CODE = (bytes.fromhex("48c7c1") + N.to_bytes(4, "little")      # mov rcx, N
        + bytes.fromhex("f04883042500200000" "01")             # lock add qword [0x2000], 1
        + bytes.fromhex("48ffc9") + bytes([0x75, 0xF1])         # dec rcx; jnz back
        + b"\xf4")                                              # hlt
START, COUNTER = 0x1000, 0x2000


def run(mode: str, period_us: float) -> tuple[float, int, int]:
    """One run: (seconds, stops, final counter)."""
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(0, 0x10000)
    uc.mem_write(START, CODE)
    stopper = StopRequest(uc) if mode == "hook" else None
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(period_us / 1e6):
            if stopper is not None:
                stopper.request()
            else:
                uc.emu_stop()

    pc, stops = START, 0
    if mode != "none":
        threading.Thread(target=ticker, daemon=True).start()
    t0 = time.perf_counter()
    while True:
        if stopper is not None:
            stopper.start_run()
        uc.emu_start(pc, 0xFFFF)
        pc = uc.reg_read(UC_X86_REG_RIP)
        if uc.mem_read(pc - 1, 1) == b"\xf4" and uc.reg_read(UC_X86_REG_RCX) == 0:
            break
        stops += 1
    elapsed = time.perf_counter() - t0
    done.set()
    return elapsed, stops, int.from_bytes(uc.mem_read(COUNTER, 8), "little")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods-us", default="1000,100,20",
                        help="stop request periods in microseconds (comma-separated)")
    args = parser.parse_args()
    print(f"{'mode':9s} {'period':>9s} {'time':>8s} {'stops':>7s} {'counter':>10s}")
    wrong = 0
    seconds, _, counter = run("none", 0)
    print(f"{'none':9s} {'-':>9s} {seconds:7.3f}s {0:7d} {counter:10d}")
    for period in (float(p) for p in args.periods_us.split(",")):
        for mode in ("emu_stop", "hook"):
            seconds, stops, counter = run(mode, period)
            mark = "" if counter == N else "  (instructions ran twice)"
            print(f"{mode:9s} {period:7.0f}µs {seconds:7.3f}s {stops:7d} {counter:10d}{mark}")
            wrong += mode == "hook" and counter != N
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
