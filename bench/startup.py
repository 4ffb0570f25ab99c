#!/usr/bin/env python3
"""Process start-up: ``hello`` start-to-exit on emu against QEMU, and where emu's time goes.

For each machine, ``--runs`` runs (default 9) of each of these, in turn, timed from starting
the process to its exit (median):

* **QEMU**: ``qemu-system-* <options> -kernel guest_images/<arch>/hello.elf`` (pc: with
  SeaBIOS, QEMU's default firmware; virt: no firmware);
* **emu**: ``python3 -m emu`` with the same options (emu's firmware loads the kernel);

and, once per run, the interpreter alone, to split emu's time:

* **python -c pass**: starting this Python (with its site-packages and ``.pth`` files) and
  exiting;
* **python -c 'import emu.machine, emu.cli'**: that plus importing what a run imports
  (Unicorn, pyelftools, pluggy, emu's modules) before the machine is built.

The options are those of bench/README.md's first section (``-m 128M -display none -serial
stdio``, on pc ``isa-debug-exit``). emu runs from cached bytecode as an installed emu does
(``PYTHONDONTWRITEBYTECODE`` dropped, see common.emu_env). Each run must exit with hello's
status (1 on pc, 0 on virt) and print the same bytes on QEMU and emu; otherwise the script
says so on stderr and exits with status 1.

Usage: ``python3 bench/startup.py [--runs N] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    IMAGES,
    MACHINES,
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
    run_process,
)

TIMEOUT_S = 60.0
IMPORTS = "import emu.machine, emu.cli"


#: per timed run, the CPU seconds (user + system) of the process and its threads
CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(who: str, argv: list[str], env: dict[str, str], status: int) -> tuple[float, bytes]:
    """Wall seconds and stdout of one run; its CPU seconds go to CPU[who]."""
    cpu = _children_cpu()
    start = time.perf_counter()
    proc = run_process(who, argv, env, TIMEOUT_S)
    elapsed = time.perf_counter() - start
    CPU.setdefault(who, []).append(_children_cpu() - cpu)
    if proc.returncode != status:
        raise RunError(f"{who}: exit status {proc.returncode}, expected {status}: "
                       f"{' '.join(argv)}\n  stderr: {proc.stderr.decode(errors='replace')}")
    return elapsed, proc.stdout


def run_all(runs: int, env: dict[str, str], times: dict[tuple[str, str], list[float]],
            interp: dict[str, list[float]]) -> None:
    """``runs`` rounds; each runs the interpreter alone, then QEMU and emu on each machine, so
    that changes in the machine's load hit all of them alike."""
    expected: dict[str, bytes] = {}
    for i in range(runs):
        for key, code in (("pass", "pass"), ("imports", IMPORTS)):
            interp[key].append(timed(f"python -c {code!r}", [sys.executable, "-c", code],
                                     env, 0)[0])
        for m in MACHINES:
            args = [*m.options, "-kernel", str(IMAGES / m.arch / "hello.elf")]
            first = f"Hello from the guest! ({m.arch})\n".encode()
            for who, argv in (("QEMU", [m.qemu, *args]), ("emu", emu_argv(args))):
                elapsed, out = timed(f"{who} ({m.name})", argv, env, m.exit_status)
                if not out.startswith(first) or out != expected.setdefault(m.name, out):
                    raise RunError(f"{who} ({m.name}) printed {out!r}, expected "
                                   f"{expected[m.name]!r}")
                times[m.name, who].append(elapsed)
        print(f"  run {i + 1}/{runs}: " + ", ".join(
            f"{name} {who} {xs[-1]:.3f} s" for (name, who), xs in times.items()),
            file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=9, metavar="N", help="runs of each (default 9)")
    add_markdown_arg(p)
    ns = p.parse_args(argv)
    if ns.runs < 1:
        p.error("--runs must be at least 1")
    if not have_programs("startup", (m.qemu for m in MACHINES)):
        return 1
    env = emu_env()
    head = header()
    print(f"# {head}", file=sys.stderr, flush=True)
    times: dict[tuple[str, str], list[float]] = {
        (m.name, who): [] for m in MACHINES for who in ("QEMU", "emu")}
    interp = {"pass": [], "imports": []}
    errors: list[str] = []
    timed("python (warm-up)", [sys.executable, "-c", IMPORTS], env, 0)  # writes the bytecode
    try:
        run_all(ns.runs, env, times, interp)
    except RunError as e:
        errors.append(str(e))
        for xs in times.values():
            xs.clear()
        print(f"startup: FAILED: {e}", file=sys.stderr, flush=True)
    rows = ["| run | QEMU wall (s) | emu wall (s) | emu/QEMU | QEMU CPU (s) | emu CPU (s) | "
            "emu/QEMU CPU | QEMU CPU fastest (s) | emu CPU fastest (s) |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m in MACHINES:
        q, e = median(times[m.name, "QEMU"]), median(times[m.name, "emu"])
        qc, ec = median(CPU.get(f"QEMU ({m.name})", [])), median(CPU.get(f"emu ({m.name})", []))
        ratio = "FAIL" if q is None or e is None else f"{e / q:.2f}x"
        cratio = "FAIL" if not qc or ec is None else f"{ec / qc:.2f}x"
        qf, ef = (min(CPU.get(f"{w} ({m.name})", []), default=None) for w in ("QEMU", "emu"))
        rows.append(f"| {m.name} ({m.arch}) hello start-to-exit | {fmt(q)} | {fmt(e)} | {ratio} "
                    f"| {fmt(qc)} | {fmt(ec)} | {cratio} | {fmt(qf)} | {fmt(ef)} |")
    for key, code in (("pass", "pass"), ("imports", IMPORTS)):
        cpu = CPU.get(f"python -c {code!r}", [])
        rows.append(f"| `python -c '{code}'` | | {fmt(median(interp[key]))} | | | "
                    f"{fmt(median(cpu))} | | | {fmt(min(cpu, default=None))} |")
    lines = ["- medians of the runs, and the fastest run's CPU time (the one least disturbed by "
             "other processes); CPU = user + system seconds of the process (all threads), from "
             "getrusage(RUSAGE_CHILDREN)"]
    for (name, who), xs in times.items():
        lines.append(f"- {name} {who}: wall [{fmt_times(xs)}] s; CPU "
                     f"[{fmt_times(CPU.get(f'{who} ({name})', []))}] s")
    text = f"{head}\n\n" + "\n".join(rows) + "\n\n" + "\n".join(lines) + "\n"
    return finish("startup", text, ns.markdown, errors, "machine(s)")


if __name__ == "__main__":
    sys.exit(main())
