#!/usr/bin/env python3
"""Timer interrupts: emu against QEMU, both run here in the same invocation.

The guest is ``storm`` (guest_images/src/storm.c): a read-modify-write loop of ``iters``
rounds while a timer interrupts it ``hz`` times a second (the PIT through the 8259 on
``pc``, the virtual generic timer through the GICv2 on ``virt``), then a spin until the
handler has run ``wait`` more times; with ``show=1`` it prints how many interrupts it took.
Three measurements, QEMU and emu alternating run by run:

* ``250 Hz tick``: CPU-bound work (iters=200e6, about 3 s under QEMU) with a Linux-like
  250 Hz tick armed: the wall time of the whole run. Goal: emu within 1.3x QEMU. The same
  work without a timer (``hz=0``) is measured too, so the tick's own cost shows (ticked /
  unticked time, for each emulator).
* ``interrupt throughput``: a 100 kHz timer during iters=5e6: interrupts handled per
  second of wall time (higher is better; the ratio is QEMU/emu). Both fall behind such a
  timer and take fewer interrupts than it asks for; QEMU 7.2's pc was measured taking only
  about a hundred a second from its PIT at that rate, so there the ratio says little.
* ``-icount``: emu's deterministic mode (``-icount shift=0,sleep=off``) against emu's
  default, on a 250 Hz run of iters=20e6: what counting instructions costs.

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

TICK_ITERS = 200_000_000
ICOUNT_ITERS = 20_000_000
THROUGHPUT_ITERS = 5_000_000
CHECK = re.compile(rb"storm: iters=(\d+) checksum=0x[0-9a-f]{16} counter=(\d+)\n"
                   rb"storm: (?:handler ticked, tick_sum and slots consistent|no timer)\n"
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
        untick = storm_args(m, TICK_ITERS, 0)
        short = storm_args(m, ICOUNT_ITERS, 250)
        flood = storm_args(m, THROUGHPUT_ITERS, 100_000)
        times: dict[str, list[float]] = {k: [] for k in ("q250", "e250", "q0", "e0",
                                                         "qflood", "eflood", "icount",
                                                         "eshort")}
        rates: dict[str, list[float]] = {"qflood": [], "eflood": []}
        try:
            for _ in range(opts.runs):
                times["q250"].append(one_run("qemu", [m.qemu, *tick], m, TICK_ITERS)[0])
                times["e250"].append(one_run("emu", emu_argv(tick), m, TICK_ITERS)[0])
                times["q0"].append(one_run("qemu", [m.qemu, *untick], m, TICK_ITERS)[0])
                times["e0"].append(one_run("emu", emu_argv(untick), m, TICK_ITERS)[0])
                times["eshort"].append(one_run("emu", emu_argv(short), m, ICOUNT_ITERS)[0])
                times["icount"].append(one_run(
                    "emu -icount", emu_argv([*short, "-icount", "shift=0,sleep=off"]), m,
                    ICOUNT_ITERS)[0])
                for key, argv in (("qflood", [m.qemu, *flood]), ("eflood", emu_argv(flood))):
                    wall, ticks = one_run(key, argv, m, THROUGHPUT_ITERS)
                    times[key].append(wall)
                    rates[key].append(ticks / wall)
        except RunError as e:
            errors.append(f"{m.name}: {e}")
            continue
        q, e, i = median(times["q250"]), median(times["e250"]), median(times["icount"])
        q0, e0, es = median(times["q0"]), median(times["e0"]), median(times["eshort"])
        qr, er = median(rates["qflood"]), median(rates["eflood"])
        assert q and e and i and qr and er and q0 and e0 and es
        rows.append(f"| {m.name} | CPU-bound, 250 Hz tick (s) | {fmt(q)} | {fmt(e)} | "
                    f"{e / q:.2f}x |")
        rows.append(f"| {m.name} | the same without a timer (s) | {fmt(q0)} | {fmt(e0)} | "
                    f"{e0 / q0:.2f}x |")
        rows.append(f"| {m.name} | the tick's cost (ticked / unticked) | {q / q0:.3f} | "
                    f"{e / e0:.3f} | |")
        rows.append(f"| {m.name} | interrupts/s at 100 kHz | {qr:,.0f} | {er:,.0f} | "
                    f"{qr / er:.2f}x |")
        rows.append(f"| {m.name} | -icount shift=0 vs default (s) | {fmt(es)} | {fmt(i)} | "
                    f"{i / es:.2f}x |")
        notes.append(f"- {m.name} 250 Hz: QEMU [{fmt_times(times['q250'])}] s; emu "
                     f"[{fmt_times(times['e250'])}] s; without a timer QEMU "
                     f"[{fmt_times(times['q0'])}] s, emu [{fmt_times(times['e0'])}] s; "
                     f"iters=20e6: emu "
                     f"[{fmt_times(times['eshort'])}] s, emu -icount "
                     f"[{fmt_times(times['icount'])}] s")
        notes.append(f"- {m.name} 100 kHz: QEMU [{', '.join(f'{r:,.0f}' for r in rates['qflood'])}]"
                     f"/s; emu [{', '.join(f'{r:,.0f}' for r in rates['eflood'])}]/s")
    text = (header() + "\n| machine | measurement | QEMU (or emu) | emu (or emu -icount) | "
            "ratio |\n| --- | --- | ---: | ---: | ---: |\n" + "\n".join(rows) + "\n\n"
            + "\n".join(notes) + "\n")
    return finish("interrupts.py", text, opts.markdown, errors, "benchmark(s)")


if __name__ == "__main__":
    sys.exit(main())
