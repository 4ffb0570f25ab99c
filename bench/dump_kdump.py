#!/usr/bin/env python3
"""kdump-compressed dump benchmark: emu's ``dump-guest-memory`` against QEMU's, for the
formats ``kdump-zlib`` and ``elf``, on a guest of 1 GiB (``--size``).

Both emulators run the same command line, with a QMP socket, for two guests:

    -M pc -m SIZE -display none -serial stdio -kernel guest_images/x86_64/IMAGE.elf \
        -append ARGS -qmp unix:SOCK,server=on,wait=off

``halt`` (empty: its RAM is almost all zero pages, so this measures the per-GiB cost of each
writer: reading, the zero-page test, the headers and bitmaps) and ``fill`` with
``mib=SIZE`` (written: every page from 16 MiB up holds a different pattern that zlib
compresses about twentyfold, so this measures compression). QEMU is ``qemu-system-x86_64``, emu
``python -m emu`` with the interpreter running this script. Once the guest says it is
ready, each format is dumped through QMP (``dump-guest-memory``, paging false,
``file:PATH``, not detached: the reply comes when the file is complete) and timed from
sending the command to its reply.

A second table shows emu's compression itself: ``emu.dump.kdump.write_kdump`` on SIZE of
synthetic guest memory in which every page differs and compresses (text-like bytes), with
1 compressing thread and with the default number (``min(4, CPUs)``), in this process.

Runs alternate QEMU and emu; the tables show medians of ``--runs`` runs (default 3). No
timing is checked: the numbers are for reading.

Usage: ``python3 bench/dump_kdump.py [--runs N] [--size 1G] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    IMAGES,
    QEMU_X86_64,
    REPO,
    RunError,
    add_markdown_arg,
    emu_argv,
    emu_env,
    finish,
    fmt,
    have_programs,
    header,
    median,
)

#: the guests dumped: (image, kernel command line, the line it prints when it is ready)
GUESTS = {
    "empty": (IMAGES / "x86_64" / "halt.elf", "", b"halt: halting with interrupts off\n"),
    "written": (IMAGES / "x86_64" / "fill.elf", "mib={mib}", b"fill: memory written\n"),
}
FORMATS = ("kdump-zlib", "elf")
TIMEOUT_S = 600.0


def parse_size(text: str) -> int:
    units = {"M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper()
    return int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t) << 20


def dump_times(who: str, argv: list[str], env: dict[str, str], size: str, guest: str,
               workdir: Path) -> dict[str, tuple[float, int]]:
    """Boot ``argv`` with the ``guest``'s image, dump each format; (seconds, file size)
    each."""
    from qemu.qmp.legacy import QEMUMonitorProtocol

    image, append, ready = GUESTS[guest]
    sock = workdir / f"{who}.qmp"
    args = [*argv, "-M", "pc", "-m", size, "-display", "none", "-serial", "stdio", "-kernel",
            str(image), "-append", append.format(mib=parse_size(size) >> 20),
            "-qmp", f"unix:{sock},server=on,wait=off"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, cwd=REPO)
    try:
        out = b""
        deadline = time.monotonic() + TIMEOUT_S
        while ready not in out:
            assert proc.stdout is not None
            chunk = proc.stdout.read1(4096)
            if not chunk or time.monotonic() > deadline:
                raise RunError(f"{who}: the {guest} guest did not get ready: {out[-200:]!r}")
            out += chunk
        qmp = QEMUMonitorProtocol(str(sock))
        qmp.connect()
        qmp.settimeout(TIMEOUT_S)
        result = {}
        for fmt_name in FORMATS:
            path = workdir / f"{who}.{fmt_name}"
            start = time.perf_counter()
            reply = qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
                "paging": False, "protocol": f"file:{path}", "format": fmt_name}})
            elapsed = time.perf_counter() - start
            if reply != {"return": {}}:
                raise RunError(f"{who}: dump-guest-memory {fmt_name}: {reply}")
            result[fmt_name] = (elapsed, path.stat().st_size)
            path.unlink()
        qmp.close()
        return result
    finally:
        proc.kill()
        proc.wait()


def compression_times(size: int, workdir: Path) -> dict[str, float]:
    """emu's kdump-zlib writer on ``size`` bytes of compressible, all-different pages."""
    sys.path.insert(0, str(REPO))
    from emu.dump.codecs import CODECS
    from emu.dump.elf import MemoryRange
    from emu.dump.kdump import KdumpInfo, write_kdump

    words = b"the quick brown fox jumps over the lazy dog 0123456789 ".split()
    page = b" ".join(words[i % len(words)] for i in range(900))[:4088]
    ram = bytearray(size)
    for i in range(0, size, 4096):
        ram[i : i + 4096] = page + i.to_bytes(8, "little")
    ranges = [MemoryRange(0, memoryview(bytes(ram)))]
    del ram
    out = {}
    default = min(4, os.cpu_count() or 1)
    for workers in sorted({1, default}):
        path = workdir / "synthetic.kdump"
        start = time.perf_counter()
        write_kdump(str(path), CODECS["zlib"], False, KdumpInfo("x86_64", "", 0), b"", ranges,
                    workers=workers)
        out[f"{workers} thread(s)"] = time.perf_counter() - start
        path.unlink()
    return out


def main() -> int:
    prog = "dump_kdump.py"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", default="1G", help="guest RAM (default 1G)")
    add_markdown_arg(parser)
    args = parser.parse_args()
    if not have_programs(prog, [QEMU_X86_64]):
        return 1
    errors: list[str] = []
    times: dict[tuple[str, str, str], list[float]] = {}
    sizes: dict[tuple[str, str, str], int] = {}
    comp: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="emu-bench-kdump-") as tmp:
        work = Path(tmp)
        for _ in range(args.runs):
            for guest in GUESTS:
                for who, argv in (("QEMU", [QEMU_X86_64]), ("emu", emu_argv([]))):
                    try:
                        for fmt_name, (t, n) in dump_times(who, argv, emu_env(), args.size,
                                                           guest, work).items():
                            times.setdefault((guest, who, fmt_name), []).append(t)
                            sizes[guest, who, fmt_name] = n
                    except RunError as e:
                        errors.append(str(e))
            for name, t in compression_times(parse_size(args.size), work).items():
                comp.setdefault(name, []).append(t)
    lines = [header(), "", f"dump-guest-memory of a halted pc guest with {args.size} of RAM, "
             "empty (halt) or written from 16 MiB up (fill), "
             f"median of {args.runs}:", "",
             "| guest | format | QEMU (s) | emu (s) | emu/QEMU | QEMU file | emu file |",
             "|---|---|---|---|---|---|---|"]
    for guest in GUESTS:
        for fmt_name in FORMATS:
            q = median(times.get((guest, "QEMU", fmt_name), []))
            e = median(times.get((guest, "emu", fmt_name), []))
            ratio = f"{e / q:.2f}x" if q and e else "n/a"
            lines.append(f"| {guest} | {fmt_name} | {fmt(q)} | {fmt(e)} | {ratio} | "
                         f"{sizes.get((guest, 'QEMU', fmt_name), 0) >> 10} KiB | "
                         f"{sizes.get((guest, 'emu', fmt_name), 0) >> 10} KiB |")
    lines += ["", f"emu's kdump-zlib writer on {args.size} of compressible pages, all "
              "different (median):", "", "| threads | s |", "|---|---|"]
    lines += [f"| {name} | {fmt(median(ts))} |" for name, ts in comp.items()]
    return finish(prog, "\n".join(lines) + "\n", args.markdown, errors, "run(s)")


if __name__ == "__main__":
    sys.exit(main())
