#!/usr/bin/env python3
"""Timer interrupts: emu against QEMU, both run here in the same invocation.

The guest is ``storm`` (guest_images/src/storm.c): a read-modify-write loop of ``iters``
rounds while a timer interrupts it ``hz`` times a second (the PIT through the 8259 on
``pc``, the virtual generic timer through the GICv2 on ``virt``), then a spin until the
handler has run ``wait`` more times; with ``show=1`` it prints how many interrupts it took.
Three measurements, QEMU and emu alternating run by run:

* ``250 Hz tick``: CPU-bound work (iters=20e6) with a Linux-like 250 Hz tick armed: the
  wall time of the whole run. Goal: emu within 1.3x QEMU.
* ``interrupt throughput``: a 100 kHz timer (the highest rate both take) during iters=5e6:
  interrupts handled per second of wall time (higher is better; the ratio is QEMU/emu).
* ``-icount``: emu's deterministic mode (``-icount shift=0,sleep=off``) against emu's
  default, on the 250 Hz run: what counting instructions costs.

Every run must print storm's expected lines, else the script says so and exits with status 1.
Usage: ``python3 bench/interrupts.py [--runs N] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    IMAGES,
    MACHINES,
    Machine,
    RunError,
    add_markdown_arg,
    emu_argv,
    emu_env,
    finish,
    fmt,
    fmt_times,
    have_programs,
    header,
    median,
    run_lines,
)

TICK_ITERS = 20_000_000
THROUGHPUT_ITERS = 5_000_000
CHECK = re.compile(rb"storm: iters=(\d+) checksum=0x[0-9a-f]{16} counter=(\d+)\n"
                   rb"storm: handler ticked, tick_sum and slots consistent\n"
                   rb"storm: waited for \d+ ticks\n"
                   rb"storm: ticks=(\d+) where=0x[0-9a-f]{16}\n")


def storm_args(m: Machine, iters: int, hz: int) -> list[str]:
    image = IMAGES / m.arch / "storm.elf"
    return [*m.options, "-kernel", str(image), "-append", f"iters={iters} hz={hz} show=1"]


def one_run(who: str, argv: list[str], m: Machine, iters: int) -> tuple[float, int]:
    """(wall seconds, interrupts taken) of one run, checking what storm printed."""
    run = run_lines(who, argv, emu_env(), m.exit_status, timeout=600)
    out = b"".join(run.lines)
    found = CHECK.fullmatch(out)
    if not found or int(found[1]) != iters or int(found[2]) != iters:
        raise RunError(f"{who}: unexpected output {out!r}")
    return run.exited - run.started, int(found[3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    add_markdown_arg(parser)
    opts = parser.parse_args()
    if not have_programs("interrupts.py", [m.qemu for m in MACHINES]):
        return 1
    errors: list[str] = []
    rows: list[str] = []
    notes: list[str] = []
    for m in MACHINES:
        tick = storm_args(m, TICK_ITERS, 250)
        flood = storm_args(m, THROUGHPUT_ITERS, 100_000)
        times: dict[str, list[float]] = {k: [] for k in ("q250", "e250", "qflood", "eflood",
                                                         "icount")}
        rates: dict[str, list[float]] = {"qflood": [], "eflood": []}
        try:
            for _ in range(opts.runs):
                times["q250"].append(one_run("qemu", [m.qemu, *tick], m, TICK_ITERS)[0])
                times["e250"].append(one_run("emu", emu_argv(tick), m, TICK_ITERS)[0])
                times["icount"].append(one_run(
                    "emu -icount", emu_argv([*tick, "-icount", "shift=0,sleep=off"]), m,
                    TICK_ITERS)[0])
                for key, argv in (("qflood", [m.qemu, *flood]), ("eflood", emu_argv(flood))):
                    wall, ticks = one_run(key, argv, m, THROUGHPUT_ITERS)
                    times[key].append(wall)
                    rates[key].append(ticks / wall)
        except RunError as e:
            errors.append(f"{m.name}: {e}")
            continue
        q, e, i = median(times["q250"]), median(times["e250"]), median(times["icount"])
        qr, er = median(rates["qflood"]), median(rates["eflood"])
        assert q and e and i and qr and er
        rows.append(f"| {m.name} | CPU-bound, 250 Hz tick (s) | {fmt(q)} | {fmt(e)} | "
                    f"{e / q:.2f}x |")
        rows.append(f"| {m.name} | interrupts/s at 100 kHz | {qr:,.0f} | {er:,.0f} | "
                    f"{qr / er:.2f}x |")
        rows.append(f"| {m.name} | -icount shift=0 vs default (s) | {fmt(e)} | {fmt(i)} | "
                    f"{i / e:.2f}x |")
        notes.append(f"- {m.name} 250 Hz: QEMU [{fmt_times(times['q250'])}] s; emu "
                     f"[{fmt_times(times['e250'])}] s; "
                     f"emu -icount [{fmt_times(times['icount'])}] s")
        notes.append(f"- {m.name} 100 kHz: QEMU [{', '.join(f'{r:,.0f}' for r in rates['qflood'])}]"
                     f"/s; emu [{', '.join(f'{r:,.0f}' for r in rates['eflood'])}]/s")
    text = (header() + "\n| machine | measurement | QEMU (or emu) | emu (or emu -icount) | "
            "ratio |\n| --- | --- | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n\n"
            + "\n".join(notes) + "\n")
    return finish("interrupts.py", text, opts.markdown, errors, "benchmark(s)")


if __name__ == "__main__":
    sys.exit(main())
