#!/usr/bin/env python3
"""fw_cfg throughput: DMA and the traditional data register, emu against QEMU.

A 32 MiB file of pseudo-random bytes is handed to the guest with
``-fw_cfg name=opt/bench,file=PATH``; the ``fwcfgbench`` guest image (``guest_images/``) reads
it 8 times completely with fw_cfg DMA, sums the last copy, then reads its first 1 MiB one byte
at a time through the traditional data register (``inb 0x511`` on ``pc``, an 8-bit MMIO read
of 0x09020000 on ``virt``) and sums that. It prints marker lines between the phases; this
script reads the emulator's stdout unbuffered and timestamps (``time.monotonic()``) the arrival
of each line's first byte and of its newline, so the guest needs no timer:

* DMA: 8 x 32 MiB / (first byte of ``dma done sum=...`` - newline of ``dma start``), in MB/s
  (10^6 bytes/s). The guest prints ``dma done sum=`` before it computes the sum, so the
  interval holds the 8 transfers only;
* traditional interface: (first byte of ``pio done sum=...`` - newline of ``dma done ...``) /
  2^20 accesses, in microseconds per access, and the same as KB/s (10^3 bytes/s).

QEMU and emu run alternately on both machines (``pc``/x86_64 and ``virt``/aarch64) with the
same options. Every run must exit with the image's status and print the same lines, with sums
equal to the ones computed here from the file; otherwise the script says so on stderr and
exits with status 1. The result is a Markdown table of medians and emu/QEMU ratios.

Usage: ``python3 bench/fw_cfg_dma.py [--runs N] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import struct
import sys
import tempfile
from dataclasses import dataclass, field
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
    fmt_times,
    have_programs,
    header,
    run_lines,
)

#: a run that takes longer than this is killed and counts as a failure
TIMEOUT_S = 600.0
FILE_SIZE = 32 << 20  # bytes in opt/bench
DMA_COPIES = 8  # complete DMA reads of the file by the guest
PIO_BYTES = 1 << 20  # bytes read through the traditional data register
SEED = 0x0F0C_FDAA  # the file's contents depend only on this
FW_CFG_NAME = "opt/bench"


@dataclass
class Result:
    """The runs of one machine: per emulator, the DMA and traditional-interface intervals."""

    machine: Machine
    dma_s: dict[str, list[float]] = field(default_factory=lambda: {"QEMU": [], "emu": []})
    pio_s: dict[str, list[float]] = field(default_factory=lambda: {"QEMU": [], "emu": []})
    lines: list[bytes] | None = None  # the lines of the first run (QEMU's)
    failed: bool = False


def word_sum(data: bytes) -> int:
    """Sum modulo 2^64 of the little-endian 64-bit words of ``data`` (length a multiple of 8)."""
    if sys.byteorder == "little":
        words = memoryview(data).cast("Q")
    else:
        words = struct.unpack(f"<{len(data) // 8}Q", data)
    return sum(words) & 0xFFFF_FFFF_FFFF_FFFF


def expected_lines(data: bytes) -> list[bytes]:
    """What the guest must print for the file ``data``, line by line."""
    return [
        f"fwcfgbench: file size={len(data)}\n".encode(),
        b"fwcfgbench: dma start\n",
        f"fwcfgbench: dma done sum=0x{word_sum(data):016x}\n".encode(),
        f"fwcfgbench: pio done sum=0x{word_sum(data[:PIO_BYTES]):016x}\n".encode(),
        b"fwcfgbench: done\n",
    ]


def run_once(
    who: str, argv: list[str], env: dict[str, str], expect_status: int
) -> tuple[list[bytes], list[float], list[float]]:
    """Run ``argv``; return its stdout lines and, per line, the monotonic times at which its
    first byte and its newline arrived.

    Raises RunError unless it exits with ``expect_status`` within TIMEOUT_S.
    """
    run = run_lines(who, argv, env, expect_status, TIMEOUT_S)
    return run.lines, run.starts, run.ends


def run_machine(
    result: Result, fw_file: Path, want: list[bytes], runs: int, env: dict[str, str]
) -> None:
    m = result.machine
    args = [
        *m.options,
        "-fw_cfg",
        f"name={FW_CFG_NAME},file={fw_file}",
        "-kernel",
        str(IMAGES / m.arch / "fwcfgbench.elf"),
    ]
    for i in range(runs):
        # alternate the two so that drift in machine load hits both alike
        for who, argv in (
            ("QEMU", [m.qemu, *args]),
            ("emu", emu_argv(args)),
        ):
            lines, starts, ends = run_once(who, argv, env, m.exit_status)
            if result.lines is None:
                result.lines = lines
            elif lines != result.lines:
                raise RunError(
                    f"{who}: {m.name} output differs from QEMU's first run:\n"
                    f"  QEMU: {b''.join(result.lines)!r}\n  {who}: {b''.join(lines)!r}"
                )
            if lines != want:
                raise RunError(
                    f"{who}: {m.name} printed {b''.join(lines)!r}\n  expected {b''.join(want)!r}"
                )
            # lines: 0 file size, 1 dma start, 2 dma done, 3 pio done, 4 done
            dma = starts[2] - ends[1]
            pio = starts[3] - ends[2]
            result.dma_s[who].append(dma)
            result.pio_s[who].append(pio)
            print(
                f"  {m.name:4} run {i + 1}/{runs} {who:4} dma {dma:7.3f} s "
                f"({dma_mb_s(dma):8.1f} MB/s)  pio {pio:7.3f} s ({pio_us(pio):6.3f} us/access)",
                file=sys.stderr,
                flush=True,
            )


def dma_mb_s(seconds: float) -> float:
    return DMA_COPIES * FILE_SIZE / seconds / 1e6


def pio_us(seconds: float) -> float:
    return seconds / PIO_BYTES * 1e6


def pio_kb_s(seconds: float) -> float:
    return PIO_BYTES / seconds / 1e3


def medians(r: Result) -> dict[str, tuple[float, float]] | None:
    """(DMA seconds, traditional seconds) medians per emulator, or None if incomplete."""
    if r.failed or not all(r.dma_s.values()):
        return None
    return {
        who: (statistics.median(r.dma_s[who]), statistics.median(r.pio_s[who]))
        for who in ("QEMU", "emu")
    }


def table(results: list[Result]) -> str:
    rows = [
        "| machine | measure | QEMU median | emu median | emu/QEMU |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        name = f"{r.machine.name} ({r.machine.arch})"
        med = medians(r)
        measures = (
            (f"DMA read, MB/s ({DMA_COPIES} x 32 MiB)", 0, dma_mb_s, "{:.0f}"),
            ("traditional data register, us per 8-bit read", 1, pio_us, "{:.3f}"),
            ("traditional data register, KB/s", 1, pio_kb_s, "{:.0f}"),
        )
        for label, idx, conv, form in measures:
            if med is None:
                rows.append(f"| {name} | {label} | FAIL | FAIL | FAIL |")
                continue
            q, e = conv(med["QEMU"][idx]), conv(med["emu"][idx])
            cells = f"{form.format(q)} | {form.format(e)} | {e / q:.2f}x"
            rows.append(f"| {name} | {label} | {cells} |")
    return "\n".join(rows)


def details(results: list[Result]) -> str:
    lines = []
    for r in results:
        if r.lines is not None and not r.failed:
            sums = " / ".join(
                line.decode().strip().removeprefix("fwcfgbench: ") for line in r.lines[2:4]
            )
            lines.append(f"- {r.machine.name}, both print: `{sums}`")
    for r in results:
        for who in ("QEMU", "emu"):
            dma = fmt_times(r.dma_s[who])
            pio = fmt_times(r.pio_s[who])
            lines.append(f"- {r.machine.name} {who}: DMA phase [{dma}] s; traditional [{pio}] s")
    return "\n".join(lines)


def targets(results: list[Result]) -> str:
    lines = []
    for r in results:
        med = medians(r)
        if med is None:
            lines.append(f"- {r.machine.name}: FAIL, no result")
            continue
        q_dma, e_dma = dma_mb_s(med["QEMU"][0]), dma_mb_s(med["emu"][0])
        e_us = pio_us(med["emu"][1])
        lines.append(
            f"- {r.machine.name}: DMA at least as fast as QEMU ({e_dma:.0f} vs {q_dma:.0f} MB/s):"
            f" {'met' if e_dma >= q_dma else 'NOT met'}; traditional access under 1 us"
            f" ({e_us:.3f} us): {'met' if e_us < 1.0 else 'NOT met'}"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, metavar="N", help="runs per emulator and machine")
    add_markdown_arg(p)
    ns = p.parse_args(argv)
    if ns.runs < 1:
        p.error("--runs must be at least 1")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if not have_programs("fw_cfg_dma", (m.qemu for m in MACHINES)):
        return 1
    env = emu_env()

    head = header()
    print(f"# {head}", file=sys.stderr, flush=True)
    results = [Result(m) for m in MACHINES]
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fw_cfg_dma.") as tmp:
        fw_file = Path(tmp) / "bench.bin"
        data = random.Random(SEED).randbytes(FILE_SIZE)
        fw_file.write_bytes(data)
        want = expected_lines(data)
        del data
        for r in results:
            try:
                run_machine(r, fw_file, want, ns.runs, env)
            except RunError as e:
                r.failed = True
                errors.append(str(e))
                print(f"fw_cfg_dma: FAILED: {e}", file=sys.stderr, flush=True)

    text = f"{head}\n\n{table(results)}\n\n{details(results)}\n\nTargets:\n\n{targets(results)}\n"
    return finish("fw_cfg_dma", text, ns.markdown, errors, "machine(s)")


if __name__ == "__main__":
    sys.exit(main())
