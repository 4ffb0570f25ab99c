"""The terminal: emu's stdin and stdout shared by a serial port and the human monitor.

``-serial mon:stdio`` (and ``-nographic`` without ``-serial``/``-monitor``, as QEMU's vl.c
resolves it) multiplexes the serial port and the monitor on the terminal the way QEMU's
mux chardev does (chardev/char-mux.c): the serial port has the focus at start, and after
the escape character Ctrl-A:

    Ctrl-A c   switch between console and monitor
    Ctrl-A x   exit emulator (prints ``QEMU: Terminated``)
    Ctrl-A h   print the help (also Ctrl-A ?)
    Ctrl-A t   toggle console timestamps
    Ctrl-A s   save disk data (emu has no disks: nothing to do)
    Ctrl-A b   send a break (the UARTs have no interrupts yet: nothing to do)
    Ctrl-A Ctrl-A   send Ctrl-A to the focused side

``-monitor stdio`` puts the monitor alone on the terminal (no escape character: Ctrl-A is
the line editor's beginning-of-line), and ``-serial stdio`` the serial port alone. Keys typed
while the serial port has the focus go to the UART's receive buffer (emu.devices.uart16550,
pl011), where a polling guest reads them.

The monitor follows QEMU's monitor/hmp.c events: its banner is written when the terminal
opens, but while the serial port has the focus the monitor's output is held back; switching
to it shows what was held and the ``(qemu)`` prompt, switching away ends the line. When stdin
is a terminal it is put into QEMU's raw mode (no echo, no line editing, CR kept; Ctrl-C
still ends emu) and restored when emu exits.
"""

from __future__ import annotations

import contextlib
import os
import termios
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from emu.chardev import StdioBackend
from emu.errors import ConfigError
from emu.monitor.hmp import COMMANDS, INFO_COMMANDS, Hmp, LocalHost
from emu.monitor.readline import ReadLine

if TYPE_CHECKING:
    from emu.config import MachineConfig
    from emu.machine import Machine

ESCAPE = 0x01  # Ctrl-A, QEMU's term_escape_char
_MUX_HELP = ("% h    print this help\n\r", "% x    exit emulator\n\r",
             "% s    save disk data back to file (if -snapshot)\n\r",
             "% t    toggle console timestamps\n\r", "% b    send break (magic sysrq)\n\r",
             "% c    switch between console and monitor\n\r", "% %  sends %\n\r")


def monitor_banner() -> str:
    from emu.qmp.commands import QEMU_VERSION

    v = QEMU_VERSION["qemu"]
    return (f"QEMU {v['major']}.{v['minor']}.{v['micro']} monitor - type 'help' for more "
            "information\n")


def check_stdio(cfg: MachineConfig) -> None:
    """QEMU's rule: stdio has one user (a ``mon:stdio`` mux counts as one). QEMU creates
    the monitor first and names the serial port that came second; a port that ``-nographic``
    put there is not named."""
    users = 1 if cfg.monitor_backend() == "stdio" else 0
    for spec in cfg.serial_backends():
        if spec not in ("stdio", "mon:stdio"):
            continue
        users += 1
        if users > 1:
            prefix = f"-serial {spec}: " if cfg.serial else ""
            raise ConfigError(f"{prefix}cannot use stdio by multiple character devices")


class MonitorTerm:
    """The monitor as a terminal frontend: a line editor feeding an :class:`Hmp`."""

    def __init__(self, machine: Machine, out: Callable[[bytes], None]) -> None:
        self.hmp = Hmp(LocalHost(machine), printed=threading.Event())
        self._out = out
        self.held: list[str] = []
        self.mux_out = False
        self.suspended = 0
        self.reset_seen = False
        self.readline = ReadLine(self.print, self._run, complete=_complete)

    def print(self, text: str) -> None:
        """monitor_puts: ``\\n`` becomes ``\\r\\n``; held while another side has the focus."""
        self.held.append(text.replace("\r\n", "\n").replace("\n", "\r\n"))
        if not self.mux_out:
            self.flush()

    def flush(self) -> None:
        if self.held and not self.mux_out:
            data, self.held = "".join(self.held), []
            self._out(data.encode("utf-8", "replace"))

    def _run(self, line: str) -> None:
        self.print(self.hmp.execute(line))
        if not self.mux_out and self.hmp.machine.exit_status is None:  # no prompt after quit
            self.readline.show_prompt()
        assert self.hmp.printed is not None
        self.hmp.printed.set()  # a held machine goes on

    def opened(self) -> None:
        """CHR_EVENT_OPENED: the banner, and the prompt if the monitor has the focus."""
        self.print(monitor_banner())
        if not self.mux_out:
            self.readline.restart()
            self.readline.show_prompt()
        self.reset_seen = True

    def focus_in(self) -> None:
        """CHR_EVENT_MUX_IN."""
        self.mux_out = False
        if self.reset_seen:
            self.readline.restart()
            self.suspended = max(self.suspended - 1, 0)
            if not self.suspended:
                self.readline.show_prompt()
            self.flush()
        else:
            self.suspended = 0

    def focus_out(self) -> None:
        """CHR_EVENT_MUX_OUT."""
        if self.reset_seen:
            if not self.suspended:
                self.print("\n")
            self.flush()
            self.suspended += 1
        else:
            self.suspended += 1
        self.mux_out = True

    def receive(self, data: bytes) -> None:
        for byte in data:
            self.readline.handle_byte(byte)


def _complete(partial: str) -> tuple[int, list[str]]:
    """Command-name completion for the first word and ``info``'s subcommands."""
    words = partial.split()
    if partial.endswith(" ") or not words:
        words.append("")
    if len(words) == 1:
        table = COMMANDS
    elif len(words) == 2 and words[0] == "info":
        table = INFO_COMMANDS
    else:
        return len(partial), []
    prefix = words[-1]
    names = sorted(n for c in table for n in c.name.split("|") if n.startswith(prefix))
    return len(partial) - len(prefix), names


class Terminal:
    """stdin/stdout and the frontends on them; :meth:`close` gives the terminal back."""

    def __init__(self, machine: Machine, serials: list[StdioBackend], monitor: bool,
                 mux: bool) -> None:
        self.machine = machine
        self.fd_in = 0
        self.mux = mux
        self.got_escape = False
        self.timestamps = False
        self._saved: list[Any] | None = None
        self.frontends: list[Callable[[bytes], None]] = []
        self.monitor: MonitorTerm | None = None
        if monitor:
            self.monitor = MonitorTerm(machine, self.write)
            self.frontends.append(self.monitor.receive)
        self.serials = serials
        for backend in serials:
            self.frontends.append(backend.deliver)
            backend.output = self.write
        # as QEMU attaches them: the monitor first, then the serial port, which keeps the focus
        self.focus = len(self.frontends) - 1
        if self.monitor is not None and self.focus != 0:
            self.monitor.focus_out()
        self._line_start = True
        self._t0: float | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read_loop, name="emu-stdin", daemon=True)

    # -- output ---------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """mux_chr_write: every frontend's output (serial port, monitor, the mux's own
        messages) reaches the terminal, prefixed with the time since the first stamped line
        at each line start while ``Ctrl-A t`` timestamps are on."""
        with self._lock:
            if self.timestamps:
                data = self._stamp(data)
            _write_all(1, data)

    def _stamp(self, data: bytes) -> bytes:
        out = bytearray()
        for byte in data:
            if self._line_start:
                if self._t0 is None:  # QEMU counts from the first stamped line
                    self._t0 = time.monotonic()
                ms = int((time.monotonic() - self._t0) * 1000)
                secs = ms // 1000
                out += (f"[{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}."
                        f"{ms % 1000:03d}] ").encode()
                self._line_start = False
            out.append(byte)
            if byte == 0x0A:
                self._line_start = True
        return bytes(out)

    # -- input ----------------------------------------------------------------------------------

    def start(self) -> None:
        if os.isatty(self.fd_in):
            self._raw_mode()
        if self.monitor is not None:
            self.monitor.opened()
        self._thread.start()

    def _raw_mode(self) -> None:
        """qemu_chr_set_echo_stdio(false) of chardev/char-stdio.c."""
        with contextlib.suppress(termios.error):
            self._saved = termios.tcgetattr(self.fd_in)
            attrs = termios.tcgetattr(self.fd_in)
            attrs[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                          | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
            attrs[1] |= termios.OPOST
            attrs[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
            attrs[2] = (attrs[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
            attrs[6][termios.VMIN] = 1
            attrs[6][termios.VTIME] = 0
            termios.tcsetattr(self.fd_in, termios.TCSANOW, attrs)

    def close(self) -> None:
        """Give the terminal its settings back."""
        if self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd_in, termios.TCSANOW, self._saved)
            self._saved = None

    def _read_loop(self) -> None:
        # keys are taken once the machine runs (or sits paused by -S), as QEMU's main loop
        # reads the terminal only after machine init
        while self.machine.state == "created":
            time.sleep(0.01)
        while True:
            try:
                data = os.read(self.fd_in, 4096)
            except OSError:
                return
            if not data:
                return  # end of input: the machine goes on, as QEMU's does
            self.receive(data)

    def receive(self, data: bytes) -> None:
        """mux_chr_read: escape processing, then the focused frontend."""
        if not self.mux:
            self.frontends[self.focus](data)
            return
        for byte in data:
            if self.got_escape:
                self.got_escape = False
                if byte == ESCAPE:
                    self.frontends[self.focus](bytes((byte,)))
                else:
                    self._escape(byte)
            elif byte == ESCAPE:
                self.got_escape = True
            else:
                self.frontends[self.focus](bytes((byte,)))

    def _escape(self, byte: int) -> None:
        key = chr(byte)
        if key in "?h":
            self.write(b"\n\r" + "".join(_MUX_HELP).replace("%", "C-a").encode())
        elif key == "x":
            self.write(b"QEMU: Terminated\n\r")
            self.machine.quit(0, reason="host-qmp-quit")
        elif key == "c" and len(self.frontends) > 1:
            old = self.focus
            self.focus = (self.focus + 1) % len(self.frontends)
            if self.monitor is not None:
                if old == 0:
                    self.monitor.focus_out()
                if self.focus == 0:
                    self.monitor.focus_in()
        elif key == "t":
            self.timestamps = not self.timestamps
            self._t0 = None
            self._line_start = False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    with contextlib.suppress(OSError):
        while view:
            view = view[os.write(fd, view):]


class _NoTerminal:
    def close(self) -> None:
        pass


def start_terminal(machine: Machine) -> Terminal | _NoTerminal:
    """Connect stdin/stdout to what the configuration put on stdio (serial ports, the
    monitor) and start reading keys. Called once the machine is built, before it runs."""
    cfg = machine.config
    check_stdio(cfg)
    serials = [m.region.ops.backend for bus in (machine.port_bus, machine.mmio_bus)
               for m in bus.mappings
               if isinstance(getattr(m.region.ops, "backend", None), StdioBackend)]
    monitor = cfg.monitor_backend() == "stdio" or any(b.mux for b in serials)
    if (not serials and not monitor) or cfg.qtest == "stdio":
        return _NoTerminal()  # nothing to read, or stdin carries the qtest protocol
    term = Terminal(machine, serials, monitor, mux=any(b.mux for b in serials))
    term.start()
    return term
