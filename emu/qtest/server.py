"""The qtest protocol (QEMU docs/devel/qtest.rst, softmmu/qtest.c): drive devices from a test.

``-qtest unix:PATH`` (emu connects to a test that listens, as QEMU does), ``-qtest stdio``,
``-qtest-log FILE``; with ``-accel qtest`` or ``-S`` the CPU does not run. Each line is one
command, answered with ``OK [value]`` or ``FAIL reason``; every access goes through the same
buses and address space the CPU uses, on the machine's thread. Malformed commands get ``FAIL``
(where QEMU would abort) and the server stays up. When the test closes the connection, emu
exits (QEMU keeps running until the test kills it; ending by itself leaves no stray process).

Under qtest the machine's virtual clock (emu/clock.py) moves only through ``clock_step`` and
``clock_set``, which fire the device timers on the way, as with QEMU's ``-accel qtest`` (emu
answers them whether or not ``-accel qtest`` is given; a QEMU without the qtest accelerator
answers ``FAIL Unknown command``). ``irq_intercept_in`` / ``irq_intercept_out`` /
``set_irq_in`` take the QOM paths of the board's interrupt lines (docs/devel/interrupts.md).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from emu.errors import ConfigError
from emu.irq import Gpios

if TYPE_CHECKING:
    from emu.machine import Machine

SIZES = {"b": 1, "w": 2, "l": 4, "q": 8}
MAX_TRANSFER = 64 << 20


class QTestFail(Exception):
    """A command that gets ``FAIL <message>``."""


def _num(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise QTestFail(f"invalid number '{text}'") from None


class QTestServer:
    """Reads commands from a stream, runs them on the machine's thread, writes answers."""

    def __init__(self, machine: Machine, spec: str, log: str | None = None) -> None:
        self.machine = machine
        self.spec = spec
        self.start = time.monotonic()
        self._send_lock = threading.Lock()
        #: qtest's irq_levels[]: the last level reported for each IRQ number
        self._irq_levels: dict[int, int] = {}
        self._intercepted: object = None
        self._log: IO[str] | None = None
        if log:
            try:
                self._log = open(log, "w", buffering=1)  # noqa: SIM115 - lives with the server
            except OSError as e:
                raise ConfigError(f"-qtest-log {log}: {e.strerror}") from None
        self._rfile, self._wfile = self._open(spec)
        self._thread = threading.Thread(target=self._serve, name="emu-qtest", daemon=True)

    def _open(self, spec: str) -> tuple[IO[bytes], IO[bytes]]:
        if spec == "stdio":
            return sys.stdin.buffer, sys.stdout.buffer
        if spec.startswith("unix:"):
            path = spec[5:].split(",")[0]
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError as e:
                raise ConfigError(f"-qtest {spec}: cannot connect: {e.strerror}") from None
            return sock.makefile("rb"), sock.makefile("wb")
        raise ConfigError(f"-qtest {spec}: expected unix:PATH or stdio")

    def start_serving(self) -> None:
        """Serve on a background thread."""
        self._thread.start()

    def _log_line(self, direction: str, text: str) -> None:
        if self._log is not None:
            self._log.write(f"[{direction} +{time.monotonic() - self.start:.6f}] {text}\n")

    def _serve(self) -> None:
        try:
            for raw in self._rfile:
                line = raw.decode(errors="replace").strip()
                self._log_line("R", line)
                try:
                    answer = self.machine.call_soon(lambda line=line: self.execute(line)) \
                        .result()
                except QTestFail as e:
                    answer = f"FAIL {e}"
                except Exception as e:  # a bug must not take the server down
                    answer = f"FAIL internal error: {type(e).__name__}: {e}"
                self._send(answer)
        except (OSError, ValueError):
            pass
        self.machine.quit(0, reason="host-qmp-quit")

    def _send(self, line: str) -> None:
        """Write one line (an answer, or an asynchronous ``IRQ`` line from the machine's
        thread, which comes before the answer of the command that caused it)."""
        with self._send_lock:
            self._log_line("S", line)
            with contextlib.suppress(OSError, ValueError):
                self._wfile.write(line.encode() + b"\n")
                self._wfile.flush()

    def close(self) -> None:
        """Release the log."""
        if self._log is not None:
            self._log.close()

    # -- commands -----------------------------------------------------------------------------

    def execute(self, line: str) -> str:
        """Run one command on the machine's thread; returns the answer line."""
        words = line.split()
        if not words:
            raise QTestFail("empty command")
        name, args = words[0], words[1:]
        handler: Callable[[list[str]], str] | None = getattr(
            self, f"cmd_{name}", None) if name.isidentifier() else None
        if handler is None:
            if name[:-1] in ("out", "in", "read", "write") and name[-1] in SIZES:
                return self._sized(name, args)
            raise QTestFail(f"Unknown command '{name}'")
        return handler(args)

    def _need(self, args: list[str], count: int, usage: str) -> None:
        if len(args) != count:
            raise QTestFail(f"usage: {usage}")

    def _sized(self, name: str, args: list[str]) -> str:
        op, size = name[:-1], SIZES[name[-1]]
        m = self.machine
        if op == "out":
            self._need(args, 2, f"{name} PORT VALUE")
            if size == 8:
                raise QTestFail(f"Unknown command '{name}'")
            m.port_bus.port_write(_num(args[0]) & 0xFFFF, size, _num(args[1]))
            return "OK"
        if op == "in":
            self._need(args, 1, f"{name} PORT")
            if size == 8:
                raise QTestFail(f"Unknown command '{name}'")
            return f"OK 0x{m.port_bus.port_read(_num(args[0]) & 0xFFFF, size):04x}"
        if op == "write":
            self._need(args, 2, f"{name} ADDR VALUE")
            self._store(_num(args[0]), size, _num(args[1]) & ((1 << (8 * size)) - 1))
            return "OK"
        self._need(args, 1, f"{name} ADDR")
        return f"OK 0x{self._load(_num(args[0]), size):016x}"

    def _load(self, addr: int, size: int) -> int:
        """A CPU-sized load: RAM, else ROM, else MMIO, else unassigned (0)."""
        m = self.machine
        raw = m.address_space.read(addr, size)
        if raw is not None:
            return int.from_bytes(raw, "little")
        rom = m.rom_at(addr, size)
        if rom is not None:
            return int.from_bytes(rom.view()[addr - rom.base:addr - rom.base + size], "little")
        if m.mmio_bus.covers(addr):
            return m.mmio_bus.mmio_read(addr, size)
        return 0

    def _store(self, addr: int, size: int, value: int) -> None:
        """A CPU-sized store: RAM, else MMIO; stores to ROM are dropped, as the CPU's are."""
        m = self.machine
        if m.address_space.write(addr, value.to_bytes(size, "little")):
            return
        if m.mmio_bus.covers(addr):
            m.mmio_bus.mmio_write(addr, size, value)

    def _read_bytes(self, addr: int, size: int) -> bytes:
        if not 0 <= size <= MAX_TRANSFER:
            raise QTestFail(f"size {size} out of range")
        raw = self.machine.address_space.read(addr, size)
        if raw is not None:
            return raw
        return bytes(self._load(addr + i, 1) for i in range(size))

    def _write_bytes(self, addr: int, data: bytes) -> None:
        if not self.machine.address_space.write(addr, data):
            for i, byte in enumerate(data):
                self._store(addr + i, 1, byte)

    def cmd_read(self, args: list[str]) -> str:
        self._need(args, 2, "read ADDR SIZE")
        return "OK 0x" + self._read_bytes(_num(args[0]), _num(args[1])).hex()

    def cmd_write(self, args: list[str]) -> str:
        self._need(args, 3, "write ADDR SIZE 0xDATA")
        size, text = _num(args[1]), args[2]
        if not text.startswith("0x") or not 0 <= size <= MAX_TRANSFER:
            raise QTestFail("write: data must be 0x followed by hex digits")
        digits = text[2:]
        if size and not digits:
            raise QTestFail("write: no data")
        try:
            data = bytes.fromhex(digits[: 2 * size].ljust(2 * size, "0")) if size else b""
        except ValueError:
            raise QTestFail("write: data must be 0x followed by hex digits") from None
        self._write_bytes(_num(args[0]), data)
        return "OK"

    def cmd_b64read(self, args: list[str]) -> str:
        self._need(args, 2, "b64read ADDR SIZE")
        return "OK " + base64.b64encode(self._read_bytes(_num(args[0]), _num(args[1]))).decode()

    def cmd_b64write(self, args: list[str]) -> str:
        self._need(args, 3, "b64write ADDR SIZE B64")
        size = _num(args[1])
        try:
            data = base64.b64decode(args[2], validate=True)
        except (binascii.Error, ValueError):
            raise QTestFail("b64write: invalid base64 data") from None
        if not 0 <= size <= MAX_TRANSFER:
            raise QTestFail(f"size {size} out of range")
        self._write_bytes(_num(args[0]), data[:size].ljust(size, b"\0"))
        return "OK"

    def cmd_memset(self, args: list[str]) -> str:
        self._need(args, 3, "memset ADDR SIZE VALUE")
        size = _num(args[1])
        if not 0 <= size <= MAX_TRANSFER:
            raise QTestFail(f"size {size} out of range")
        self._write_bytes(_num(args[0]), bytes([_num(args[2]) & 0xFF]) * size)
        return "OK"

    def cmd_clock_step(self, args: list[str]) -> str:
        """``clock_step [NS]``: advance the virtual clock by NS, or to the next timer deadline,
        firing the timers on the way (QEMU's qtest accel, ``qtest_clock_warp``)."""
        if len(args) > 1:
            raise QTestFail("usage: clock_step [NS]")
        clock = self.machine.clock
        return f"OK {clock.step(_num(args[0]) if args else None)}"

    def cmd_clock_set(self, args: list[str]) -> str:
        """``clock_set NS``: advance the virtual clock to NS (never back)."""
        self._need(args, 1, "clock_set NS")
        return f"OK {self.machine.clock.warp_to(_num(args[0]))}"

    # -- interrupts ---------------------------------------------------------------------------

    def _device(self, path: str) -> Gpios:
        """The GPIO lists of the device at QOM ``path`` (absolute, or a partial path that ends
        one device's path, as QEMU's ``object_resolve_path``)."""
        table: dict[str, Gpios] = getattr(self.machine.board, "qom_gpios", {})
        want = [p for p in path.split("/") if p]
        if path.startswith("/"):
            found = [g for p, g in table.items() if [c for c in p.split("/") if c] == want]
        else:
            found = [g for p, g in table.items()
                     if want and [c for c in p.split("/") if c][-len(want):] == want]
        if len(found) != 1:
            raise QTestFail("Unknown device")
        return found[0]

    def _irq_report(self, n: int) -> Callable[[int], None]:
        def report(level: int) -> None:
            if self._irq_levels.get(n, 0) != level:
                self._irq_levels[n] = level
                self._send(f"IRQ {'raise' if level else 'lower'} {n}")
        return report

    def _intercept(self, args: list[str], outputs: bool) -> str:
        name = "irq_intercept_out" if outputs else "irq_intercept_in"
        self._need(args, 1, f"{name} QOM-PATH")
        dev = self._device(args[0])
        if self._intercepted is not None:
            if self._intercepted is not dev:
                raise QTestFail("IRQ intercept already enabled")
            return "OK"
        lists = dev.outputs if outputs else dev.inputs
        for lines in (lines for key, lines in lists.items() if key is None):
            for n, line in enumerate(lines):
                line.tap(self._irq_report(n))
        self._intercepted = dev
        return "OK"

    def cmd_irq_intercept_in(self, args: list[str]) -> str:
        """``irq_intercept_in QOM-PATH``: report the levels of the device's (unnamed) input
        lines as ``IRQ raise N`` / ``IRQ lower N``; one device per connection."""
        return self._intercept(args, outputs=False)

    def cmd_irq_intercept_out(self, args: list[str]) -> str:
        """``irq_intercept_out QOM-PATH``: the same for its output lines."""
        return self._intercept(args, outputs=True)

    def cmd_set_irq_in(self, args: list[str]) -> str:
        """``set_irq_in QOM-PATH NAME N LEVEL``: drive input N of the list NAME
        (``unnamed-gpio-in`` for the unnamed one) to LEVEL."""
        self._need(args, 4, "set_irq_in QOM-PATH NAME NUM LEVEL")
        dev = self._device(args[0])
        name = None if args[1] == "unnamed-gpio-in" else args[1]
        lines = dev.inputs.get(name)
        num, level = _num(args[2]), _num(args[3])
        if lines is None or not 0 <= num < len(lines):
            raise QTestFail(f"no input {num} in '{args[1]}'")
        lines[num].set_level(level)
        return "OK"

    def cmd_endianness(self, args: list[str]) -> str:
        self._need(args, 0, "endianness")
        return "OK little"


def qtest_log_path(value: str) -> str | None:
    """``-qtest-log /dev/null`` means no log."""
    return None if value == os.devnull else value
