"""A qtest client: drive emu or QEMU through the qtest protocol.

The protocol is QEMU's (docs/devel/qtest.rst, implemented in softmmu/qtest.c): the test program
listens on a Unix socket, starts the emulator with ``-qtest unix:PATH`` (a client chardev), accepts
the connection and then sends one text command per line. Every command gets exactly one response
line: ``OK``, ``OK VALUE`` or ``FAIL REASON``. The server may also send asynchronous ``IRQ raise N``
/ ``IRQ lower N`` lines (after ``irq_intercept_in``/``irq_intercept_out``): the client records
them (``irq_events``, the levels in ``get_irq``) and reads on to the response, as libqtest does.

Like QEMU's libqtest (tests/qtest/libqtest.c, ``qtest_init_without_qmp_handshake``) the client
creates and binds the listening socket *before* spawning the emulator, so there is no race, and
accepts with a timeout so that an emulator that dies early is reported instead of hanging::

    with QTest.emu("-M", "pc", "-m", "128M") as qt:
        qt.outw(0x510, 0)
        assert qt.inb(0x511) == ord("Q")
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent.parent

#: the QEMU binary for each machine name this project models
QEMU_BINARIES = {"pc": "qemu-system-x86_64", "virt": "qemu-system-aarch64"}


class QTestError(Exception):
    """The server answered ``FAIL ...``, closed the connection, or did not start."""


def _num(value: int) -> str:
    """Format a number the way libqtest does (``0x%x``)."""
    return f"{value:#x}"


class QTest:
    """One emulator process under qtest control.

    ``argv`` is the program to run (``[sys.executable, "-m", "emu"]`` or a ``qemu-system-*``
    path); ``args`` are its machine options. The client appends ``-qtest unix:SOCK`` and, unless
    ``stopped=False``, ``-S`` (the CPUs stay paused, as with libqtest's ``-accel qtest``: the
    commands then see a machine that nothing but the test touches).
    """

    def __init__(self, argv: Sequence[str], args: Sequence[str] = (), *,
                 env: dict[str, str] | None = None, stopped: bool = True,
                 timeout: float = 30.0, cwd: str | os.PathLike[str] | None = None) -> None:
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="qtest-")
        self.socket_path = os.path.join(self._tmp.name, "qtest.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock: socket.socket | None = None
        self._buf = b""
        #: the asynchronous IRQ lines received so far, in order ("raise 8", "lower 8", ...)
        self.irq_events: list[str] = []
        self._irq_level: dict[int, bool] = {}
        self._stderr = open(os.path.join(self._tmp.name, "stderr"), "w+b")  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self._listener.bind(self.socket_path)
            self._listener.listen(1)
            self._listener.settimeout(timeout)
            self.argv = [*argv, *args, "-qtest", f"unix:{self.socket_path}"]
            if stopped:
                self.argv.append("-S")
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=self._stderr,
                                         env=env, cwd=cwd)
            self._accept()
        except BaseException:
            self.close()
            raise

    # -- construction helpers -------------------------------------------------------------------

    @classmethod
    def emu(cls, *args: str, **kw: object) -> QTest:
        """Start emu (``python -m emu`` from this checkout) with ``args``."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return cls([sys.executable, "-m", "emu"], args, env=env, cwd=ROOT, **kw)  # type: ignore[arg-type]

    @classmethod
    def qemu(cls, machine: str, *args: str, **kw: object) -> QTest:
        """Start Debian's ``qemu-system-*`` for ``machine`` ("pc" or "virt") with ``args``."""
        binary = shutil.which(QEMU_BINARIES[machine])
        if binary is None:
            raise QTestError(f"{QEMU_BINARIES[machine]} is not installed")
        return cls([binary], args, **kw)  # type: ignore[arg-type]

    def _accept(self) -> None:
        """Wait for the emulator to connect, noticing if it exits first."""
        assert self.proc is not None
        step = 0.1
        waited = 0.0
        self._listener.settimeout(step)
        while True:
            try:
                conn, _ = self._listener.accept()
                break
            except TimeoutError:
                waited += step
                if self.proc.poll() is not None:
                    raise QTestError(f"{self.argv[0]} exited with status {self.proc.returncode}"
                                     f" before connecting: {self.stderr()!r}") from None
                if waited >= self.timeout:
                    raise QTestError(f"{self.argv[0]} did not connect within "
                                     f"{self.timeout} s") from None
        conn.settimeout(self.timeout)
        self._sock = conn
        self._listener.close()

    def stderr(self) -> str:
        """What the emulator wrote to stderr so far."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    # -- the protocol ---------------------------------------------------------------------------

    def _readline(self) -> str:
        assert self._sock is not None
        self._sock.settimeout(self.timeout)
        while b"\n" not in self._buf:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise QTestError(f"no answer within {self.timeout} s") from None
            if not chunk:
                status = self.proc.poll() if self.proc else None
                raise QTestError(f"connection closed (status {status}): {self.stderr()!r}")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("ascii", errors="replace")

    def send(self, line: str | bytes) -> None:
        """Send one raw command line (a newline is appended)."""
        if self._sock is None:
            raise QTestError("not connected")
        data = line.encode() if isinstance(line, str) else line
        self._sock.sendall(data + b"\n")

    def response(self) -> str:
        """Read the next response line, recording asynchronous ``IRQ ...`` lines on the way."""
        while True:
            line = self._readline()
            if not line.startswith("IRQ"):
                return line
            words = line.split()
            if len(words) == 3 and words[1] in ("raise", "lower") and words[2].isdigit():
                self.irq_events.append(f"{words[1]} {words[2]}")
                self._irq_level[int(words[2])] = words[1] == "raise"

    def raw(self, line: str | bytes) -> str:
        """Send ``line`` and return the whole response line, ``FAIL`` included."""
        self.send(line)
        return self.response()

    def cmd(self, line: str) -> str:
        """Send one command; return what follows ``OK`` (``""`` for a bare ``OK``).

        Raises :class:`QTestError` on ``FAIL reason`` or any other answer.
        """
        answer = self.raw(line)
        words = answer.split(" ", 1)
        if words[0] == "OK":
            return words[1] if len(words) > 1 else ""
        raise QTestError(f"{line!r}: {answer}")

    def batch(self, lines: Sequence[str]) -> list[str]:
        """Send many commands at once (pipelined) and return their raw response lines."""
        if self._sock is None:
            raise QTestError("not connected")
        self._sock.sendall("".join(f"{line}\n" for line in lines).encode())
        return [self.response() for _ in lines]

    def _value(self, line: str) -> int:
        return int(self.cmd(line), 0)

    # port I/O: outb ADDR VALUE / inb ADDR (and w, l)

    def outb(self, port: int, value: int) -> None:
        """``outb ADDR VALUE``: write one byte to an I/O port."""
        self.cmd(f"outb {_num(port)} {_num(value)}")

    def outw(self, port: int, value: int) -> None:
        """``outw ADDR VALUE``: write a 16-bit value to an I/O port."""
        self.cmd(f"outw {_num(port)} {_num(value)}")

    def outl(self, port: int, value: int) -> None:
        """``outl ADDR VALUE``: write a 32-bit value to an I/O port."""
        self.cmd(f"outl {_num(port)} {_num(value)}")

    def inb(self, port: int) -> int:
        """``inb ADDR``: read one byte from an I/O port."""
        return self._value(f"inb {_num(port)}")

    def inw(self, port: int) -> int:
        """``inw ADDR``: read a 16-bit value from an I/O port."""
        return self._value(f"inw {_num(port)}")

    def inl(self, port: int) -> int:
        """``inl ADDR``: read a 32-bit value from an I/O port."""
        return self._value(f"inl {_num(port)}")

    # memory: readX ADDR / writeX ADDR VALUE, in the target's endianness

    def readb(self, addr: int) -> int:
        """``readb ADDR``: read one byte of guest-physical memory (or MMIO)."""
        return self._value(f"readb {_num(addr)}")

    def readw(self, addr: int) -> int:
        """``readw ADDR``: read a 16-bit value in the target's endianness."""
        return self._value(f"readw {_num(addr)}")

    def readl(self, addr: int) -> int:
        """``readl ADDR``: read a 32-bit value in the target's endianness."""
        return self._value(f"readl {_num(addr)}")

    def readq(self, addr: int) -> int:
        """``readq ADDR``: read a 64-bit value in the target's endianness."""
        return self._value(f"readq {_num(addr)}")

    def writeb(self, addr: int, value: int) -> None:
        """``writeb ADDR VALUE``: write one byte of guest-physical memory (or MMIO)."""
        self.cmd(f"writeb {_num(addr)} {_num(value)}")

    def writew(self, addr: int, value: int) -> None:
        """``writew ADDR VALUE``: write a 16-bit value in the target's endianness."""
        self.cmd(f"writew {_num(addr)} {_num(value)}")

    def writel(self, addr: int, value: int) -> None:
        """``writel ADDR VALUE``: write a 32-bit value in the target's endianness."""
        self.cmd(f"writel {_num(addr)} {_num(value)}")

    def writeq(self, addr: int, value: int) -> None:
        """``writeq ADDR VALUE``: write a 64-bit value in the target's endianness."""
        self.cmd(f"writeq {_num(addr)} {_num(value)}")

    # bulk memory

    def memread(self, addr: int, size: int) -> bytes:
        """``read ADDR SIZE``: ``size`` bytes of guest memory (answer ``OK 0x<hex>``)."""
        value = self.cmd(f"read {_num(addr)} {_num(size)}")
        if not value.startswith("0x"):
            raise QTestError(f"read: unexpected answer {value!r}")
        return bytes.fromhex(value[2:])

    def memwrite(self, addr: int, data: bytes) -> None:
        """``write ADDR SIZE 0x<hex>``: store ``data`` in guest memory."""
        self.cmd(f"write {_num(addr)} {_num(len(data))} 0x{data.hex()}")

    def b64read(self, addr: int, size: int) -> bytes:
        """``b64read ADDR SIZE``: like :meth:`memread`, base64-encoded on the wire."""
        return base64.b64decode(self.cmd(f"b64read {_num(addr)} {_num(size)}"))

    def b64write(self, addr: int, data: bytes) -> None:
        """``b64write ADDR SIZE B64_DATA``: like :meth:`memwrite`, base64-encoded."""
        encoded = base64.b64encode(data).decode()
        self.cmd(f"b64write {_num(addr)} {_num(len(data))} {encoded}")

    def memset(self, addr: int, size: int, byte: int) -> None:
        """``memset ADDR SIZE VALUE``: fill ``size`` bytes of guest memory with ``byte``."""
        self.cmd(f"memset {_num(addr)} {_num(size)} {_num(byte)}")

    # clock and target

    def clock_step(self, ns: int | None = None) -> int:
        """``clock_step [NS]``: advance the virtual clock (to the next deadline without ``ns``);
        returns the new clock value in nanoseconds."""
        line = "clock_step" if ns is None else f"clock_step {ns}"
        return int(self.cmd(line), 0)

    def clock_set(self, ns: int) -> int:
        """``clock_set NS``: advance the virtual clock to ``ns`` (never back); returns it."""
        return int(self.cmd(f"clock_set {ns}"), 0)

    # interrupts

    def irq_intercept_in(self, path: str) -> None:
        """``irq_intercept_in QOM-PATH``: report the device's input lines as IRQ lines."""
        self.cmd(f"irq_intercept_in {path}")

    def irq_intercept_out(self, path: str) -> None:
        """``irq_intercept_out QOM-PATH``: report the device's output lines as IRQ lines."""
        self.cmd(f"irq_intercept_out {path}")

    def set_irq_in(self, path: str, name: str | None, num: int, level: int) -> None:
        """``set_irq_in QOM-PATH NAME NUM LEVEL`` (``name`` None: the unnamed list)."""
        self.cmd(f"set_irq_in {path} {name or 'unnamed-gpio-in'} {num} {level}")

    def get_irq(self, num: int) -> bool:
        """The last reported level of intercepted line ``num`` (libqtest's ``get_irq``: one
        harmless command first, so that every IRQ line sent before it has been read)."""
        self.cmd("endianness")
        return self._irq_level.get(num, False)

    def endianness(self) -> str:
        """``endianness``: the target's endianness, ``"little"`` or ``"big"``."""
        return self.cmd("endianness")

    # lifetime

    def close(self) -> None:
        """Close the connection and end the emulator (SIGKILL, as libqtest's qtest_quit)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._listener.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._stderr.close()
        self._tmp.cleanup()

    def __enter__(self) -> QTest:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
