#!/usr/bin/env python3
"""Guest-memory dump benchmark: emu's dump against QEMU's ``dump-guest-memory``.

For each guest RAM size (default 128M, 1G, 4G) the ``halt`` image (prints one line, then
halts) is booted on the ``pc`` machine, under QEMU and under emu, and dumped to an ELF core
without paging once the guest has halted:

* QEMU: ``qemu-system-x86_64 -M pc -m SIZE -display none -serial stdio -qmp unix:...``; once
  the halt line is on its stdout, ``dump-guest-memory`` (paging false, ``file:PATH``, format
  elf, not detached, so the reply comes when the file is written) is timed from sending the
  command to its reply.
* emu: a fresh Python subprocess imports emu, builds ``Machine(MachineConfig(machine="pc",
  ram_size=SIZE, kernel=halt.elf, serial=["none"]))``, runs it on a thread, waits until the
  guest has halted, then times ``m.call_soon(lambda: m.dump(path)).result()``.

RSS growth: a thread samples the dumping process's ``VmRSS`` (``/proc/PID/status``) every
10 ms before and during the dump; the growth is the peak during the dump minus the value just
before it. For emu the sampling thread runs inside the subprocess (``/proc/self/status``),
which reports its results as JSON on stdout. The apparent size and the on-disk size
(``st_blocks * 512``) of each dump are recorded too; dumps go to a temporary directory and are
deleted after each run. Runs alternate QEMU and emu; the table shows medians.

Usage: ``python3 bench/dump.py [--runs N] [--sizes 128M,1G,4G] [--markdown FILE]``
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    IMAGES,
    QEMU_X86_64,
    REPO,
    RunError,
    add_markdown_arg,
    emu_env,
    finish,
    fmt_times,
    have_programs,
    median,
    now,
    nproc,
    qemu_version,
    run_process,
)

IMAGE = IMAGES / "x86_64" / "halt.elf"
HALT_LINE = b"halt: halting with interrupts off\n"
QEMU = QEMU_X86_64
DEFAULT_SIZES = "128M,1G,4G"
#: seconds to wait for the guest to halt, and for one dump
TIMEOUT_S = 300.0
SAMPLE_S = 0.010
#: how long the sampler runs before the dump starts (the "before" value is the last sample)
SETTLE_S = 0.1
MIB = 1 << 20


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper()
    if t and t[-1] in units:
        return int(t[:-1]) * units[t[-1]]
    return int(t) * MIB  # QEMU's -m takes a bare number as MiB


def vm_rss(status_path: str) -> int | None:
    """VmRSS in bytes from a /proc status file, None if the process has gone."""
    try:
        with open(status_path, "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


class RssSampler:
    """Samples VmRSS every 10 ms on a thread; :meth:`measure` times a call and returns
    (seconds, peak RSS during the call minus RSS before it, in bytes)."""

    def __init__(self, status_path: str) -> None:
        self.path = status_path
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = vm_rss(self.path)
            if rss is not None:
                self.samples.append((time.perf_counter(), rss))
            self._stop.wait(SAMPLE_S)

    def measure(self, fn: Callable[[], object]) -> tuple[float, int]:
        self._thread.start()
        try:
            time.sleep(SETTLE_S)
            before = vm_rss(self.path) or 0
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            end_rss = vm_rss(self.path) or 0
        finally:
            self._stop.set()
            self._thread.join()
        during = [rss for t, rss in self.samples if t >= start] + [end_rss]
        return elapsed, max(during) - before


# -- emu (runs in a fresh subprocess) --------------------------------------------------------


def child(size: int, path: str) -> int:
    """Boot halt.elf on emu, wait until it halts, dump it; print JSON with the results."""
    sys.path.insert(0, str(REPO))
    from emu.config import MachineConfig
    from emu.machine import Machine

    m = Machine(MachineConfig(machine="pc", ram_size=size, kernel=str(IMAGE), serial=["none"]))
    t = threading.Thread(target=m.run, daemon=True)
    t.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not m.call_soon(lambda: m.halted).result(timeout=TIMEOUT_S):
        if time.monotonic() > deadline or m.exit_status is not None:
            print(json.dumps({"error": f"guest did not halt (exit {m.exit_status})"}))
            return 1
        time.sleep(0.02)
    result: list[object] = []
    elapsed, growth = RssSampler("/proc/self/status").measure(
        lambda: result.append(m.call_soon(lambda: m.dump(path)).result(timeout=TIMEOUT_S))
    )
    m.call_soon(lambda: m.quit(0)).result(timeout=30)
    t.join(30)
    m.close()
    print(json.dumps({"seconds": elapsed, "rss_growth": growth, "size": result[0].size}))  # type: ignore[attr-defined]
    return 0


# -- the benchmark ---------------------------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    rss_growth: int  # bytes
    apparent: int  # bytes
    on_disk: int  # bytes (st_blocks * 512)


@dataclass
class Row:
    label: str
    size: int
    qemu: list[Sample] = field(default_factory=list)
    emu: list[Sample] = field(default_factory=list)
    failed: bool = False


def file_sizes(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_blocks * 512


def qemu_dump(label: str, tmp: Path) -> Sample:
    from qemu.qmp.legacy import QEMUMonitorProtocol

    sock = tmp / "qmp.sock"
    core = tmp / "qemu.core"
    argv = [
        QEMU,
        "-M",
        "pc",
        "-m",
        label,
        "-display",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        str(IMAGE),
        "-qmp",
        f"unix:{sock},server=on,wait=off",
    ]
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        out = b""
        deadline = time.monotonic() + TIMEOUT_S
        while HALT_LINE not in out:
            chunk = proc.stdout.read1(4096)
            if not chunk or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RunError(f"QEMU {label}: no halt line; stdout {out!r}; stderr {err}")
            out += chunk
        qmp = QEMUMonitorProtocol(str(sock))
        for _ in range(200):
            try:
                qmp.connect()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RunError(f"QEMU {label}: could not connect to QMP at {sock}")
        replies: list[object] = []
        cmd = {
            "execute": "dump-guest-memory",
            "arguments": {"paging": False, "protocol": f"file:{core}", "format": "elf"},
        }
        try:
            elapsed, growth = RssSampler(f"/proc/{proc.pid}/status").measure(
                lambda: replies.append(qmp.cmd_obj(cmd))
            )
        finally:
            qmp.close()
        if replies != [{"return": {}}]:
            raise RunError(f"QEMU {label}: dump-guest-memory replied {replies!r}")
        apparent, on_disk = file_sizes(core)
        return Sample(elapsed, growth, apparent, on_disk)
    finally:
        proc.kill()
        proc.wait()
        core.unlink(missing_ok=True)
        sock.unlink(missing_ok=True)


def emu_dump(label: str, size: int, tmp: Path) -> Sample:
    core = tmp / "emu.core"
    env = emu_env()
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", str(size), str(core)]
    try:
        proc = run_process(f"emu {label}", argv, env, 2 * TIMEOUT_S)
        err = proc.stderr.decode(errors="replace").strip()
        try:
            res = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RunError(
                f"emu {label}: exit {proc.returncode}, stdout {proc.stdout!r}, stderr {err}"
            ) from None
        if proc.returncode != 0 or "error" in res:
            raise RunError(f"emu {label}: exit {proc.returncode}: {res}; stderr {err}")
        apparent, on_disk = file_sizes(core)
        if apparent != res["size"]:
            raise RunError(
                f"emu {label}: dump is {apparent} bytes, Machine.dump said {res['size']}"
            )
        return Sample(res["seconds"], res["rss_growth"], apparent, on_disk)
    finally:
        core.unlink(missing_ok=True)


def run_rows(rows: list[Row], runs: int, tmpdir: str | None) -> list[str]:
    errors: list[str] = []
    for i in range(runs):
        for row in rows:
            if row.failed:
                continue
            # alternate the two so that drift in machine load hits both alike
            for who in ("QEMU", "emu"):
                with tempfile.TemporaryDirectory(prefix="emu-dump-bench-", dir=tmpdir) as d:
                    try:
                        if who == "QEMU":
                            s = qemu_dump(row.label, Path(d))
                        else:
                            s = emu_dump(row.label, row.size, Path(d))
                    except RunError as e:
                        row.failed = True
                        errors.append(str(e))
                        print(f"dump: FAILED: {e}", file=sys.stderr, flush=True)
                        break
                (row.qemu if who == "QEMU" else row.emu).append(s)
                print(
                    f"  {row.label:5} run {i + 1}/{runs} {who:4} {s.seconds:8.3f} s  "
                    f"RSS +{s.rss_growth / MIB:7.1f} MiB  on disk {s.on_disk / MIB:8.1f} MiB "
                    f"of {s.apparent / MIB:8.1f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
    return errors


def med(samples: list[Sample], attr: str) -> float | None:
    return median([getattr(s, attr) for s in samples])


def table(rows: list[Row]) -> str:
    lines = [
        "| size | QEMU dump s | emu dump s | emu/QEMU | QEMU RSS growth MiB | "
        "emu RSS growth MiB | QEMU on-disk MiB | emu on-disk MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if r.failed or not r.qemu or not r.emu:
            lines.append(f"| {r.label} | FAIL | FAIL | FAIL | FAIL | FAIL | FAIL | FAIL |")
            continue
        qs, es = med(r.qemu, "seconds"), med(r.emu, "seconds")
        assert qs is not None and es is not None
        cells = [
            f"{qs:.3f}",
            f"{es:.3f}",
            f"{es / qs:.2f}x",
            f"{med(r.qemu, 'rss_growth') / MIB:.1f}",  # type: ignore[operator]
            f"{med(r.emu, 'rss_growth') / MIB:.1f}",  # type: ignore[operator]
            f"{med(r.qemu, 'on_disk') / MIB:.1f}",  # type: ignore[operator]
            f"{med(r.emu, 'on_disk') / MIB:.1f}",  # type: ignore[operator]
        ]
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(rows: list[Row]) -> str:
    lines = []
    for r in rows:
        for who, samples in (("QEMU", r.qemu), ("emu", r.emu)):
            if not samples:
                continue
            secs = fmt_times(s.seconds for s in samples)
            rss = " ".join(f"{s.rss_growth / MIB:.1f}" for s in samples)
            apparent = samples[0].apparent / MIB
            lines.append(
                f"- {r.label} {who}: runs {len(samples)}; dump [{secs}] s; "
                f"RSS growth [{rss}] MiB; apparent size {apparent:.1f} MiB"
            )
    return "\n".join(lines)


def header(tmpdir: str | None) -> str:
    qemu = qemu_version(QEMU)
    where = tmpdir or tempfile.gettempdir()
    fs_lines = subprocess.run(
        ["df", "--output=fstype", where], capture_output=True, text=True, check=False
    ).stdout.split()
    fs = fs_lines[-1] if fs_lines else "unknown"
    return (
        f"{now()}; nproc {nproc()}; Python {platform.python_version()}; QEMU {qemu}; "
        f"dumps in {where} ({fs})"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3, metavar="N", help="runs per size (default 3)")
    p.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        metavar="LIST",
        help=f"comma-separated guest RAM sizes (default {DEFAULT_SIZES})",
    )
    add_markdown_arg(p)
    p.add_argument(
        "--tmpdir",
        metavar="DIR",
        help="directory for the dumps (default: the system's temporary directory)",
    )
    p.add_argument("--child", nargs=2, metavar=("BYTES", "PATH"), help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.runs < 1:
        p.error("--runs must be at least 1")
    try:
        ns.size_list = [(s.strip(), parse_size(s)) for s in ns.sizes.split(",") if s.strip()]
    except ValueError:
        p.error(f"--sizes: cannot parse {ns.sizes!r}")
    if not ns.size_list:
        p.error("--sizes: no sizes given")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if ns.child:
        return child(int(ns.child[0]), ns.child[1])
    if not have_programs("dump", [QEMU]):
        return 1
    rows = [Row(label, size) for label, size in ns.size_list]
    head = header(ns.tmpdir)
    print(f"# {head}", file=sys.stderr, flush=True)
    errors = run_rows(rows, ns.runs, ns.tmpdir)
    text = f"{head}\n\n{table(rows)}\n\n{details(rows)}\n"
    return finish("dump", text, ns.markdown, errors, "size(s)")


if __name__ == "__main__":
    sys.exit(main())
