"""The human monitor (HMP): QEMU's text command interpreter, for the commands emu can serve.

Parsing follows QEMU's monitor/hmp.c: a command name (alternatives spelled ``cont|c``),
then arguments decoded by the command's ``args_type`` string (``fmt:/,addr:l``: a
``/count format size`` specifier and an expression; ``-p`` options; ``F`` file names;
``s``/``S`` strings; ``?`` for optional ones), with QEMU's messages for every mistake
(``unknown command: 'foo'``, ``invalid char in format: 'z'``, ``x: extraneous characters at
the end of line`` followed by ``Try "help x" for more information``). Expressions are
QEMU's (``+ - * / % & | ^ ~``, parentheses, C numbers, ``'c'`` and ``$reg``; registers as
target/i386/monitor.c names them on x86_64, none on aarch64 as in QEMU).

Commands: ``help``, ``info`` (``registers``, ``status``, ``mtree``, ``dump``), ``x``, ``xp``
(``/i`` through emu.monitor.disas), ``dump-guest-memory`` (routed to the QMP command),
``stop``, ``cont``, ``system_reset`` and ``quit``. Their ``help`` lines are QEMU's
(hmp-commands.hx, hmp-commands-info.hx). Guest memory is read from RAM and ROM only: device
registers are not read (QEMU would read them, with their side effects), so ``x`` over MMIO
answers ``Cannot access memory``.

Anything that reads the CPU or guest memory runs on the machine's thread
(:meth:`emu.machine.Machine.call_soon`), so the guest is between two instructions while the
monitor looks at it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from emu.monitor.expr import ExprError, evaluate

if TYPE_CHECKING:
    from emu.machine import Machine

#: how long a command waits for the CPU to come back to the run loop
CPU_WAIT_S = 10.0
PAGE = 0x1000
MASK64 = (1 << 64) - 1


class DumpHost(Protocol):
    """What the QMP dump command needs: a QMP server, or :class:`LocalHost`."""

    machine: Machine
    dump: Any

    def event(self, name: str, data: dict[str, Any] | None = None) -> None: ...


class LocalHost:
    """A monitor without a QMP server (``-monitor stdio``): dump state of its own, events
    to every listener of the machine (connected QMP clients), as QEMU's are global."""

    def __init__(self, machine: Machine) -> None:
        from emu.qmp.server import DumpState

        self.machine = machine
        self.dump = DumpState()

    def event(self, name: str, data: dict[str, Any] | None = None) -> None:
        self.machine.emit(name, data or {})


class _Fail(Exception):
    """Argument parsing failed; the message is already printed."""


@dataclass(frozen=True)
class HmpCommand:
    """One entry of QEMU's command table."""

    name: str
    args_type: str
    params: str
    help: str
    handler: Callable[[Hmp, dict[str, Any]], None] | None = None
    sub_table: tuple[HmpCommand, ...] | None = None
    #: parse and run on the machine's thread (reads the CPU or memory)
    on_machine: bool = False


def compare_cmd(name: str, alternatives: str) -> bool:
    """hmp_compare_cmd: ``name`` is one of the ``|``-separated ``alternatives``."""
    return name in alternatives.split("|")


@dataclass
class _FmtDefaults:
    """QEMU's default_fmt_format / default_fmt_size, remembered between ``x`` commands."""

    format: str = "x"
    size: int = 4


_FMT: weakref.WeakKeyDictionary[Any, _FmtDefaults] = weakref.WeakKeyDictionary()


@dataclass
class Hmp:
    """A human monitor on ``host.machine``. :meth:`execute` runs one command line and
    returns what QEMU's monitor would print for it."""

    host: DumpHost
    #: what ``quit`` does (a QMP server quits after its reply; a terminal at once)
    quit: Callable[[], None] | None = None
    #: set by a terminal once a command's output and the next prompt are printed: until
    #: then a command that lets the guest run (cont, system_reset) holds the machine, so the
    #: guest's output follows the prompt as in QEMU, where the main loop holds the lock
    printed: threading.Event | None = None
    _out: list[str] = field(default_factory=list)
    _on_machine_thread: bool = False

    @property
    def machine(self) -> Machine:
        return self.host.machine

    def print(self, text: str) -> None:
        self._out.append(text)

    # -- command lines -----------------------------------------------------------------------

    def execute(self, cmdline: str) -> str:
        """Run one command line; returns its output (lines end with ``\\r\\n``)."""
        self._out = []
        found = self._parse_command(cmdline)
        if found is None:
            return self._take()
        cmd, rest = found
        if cmd.on_machine:
            self._wait(lambda: self._run_parsed(cmd, cmdline, rest, machine_thread=True))
        else:
            self._run_parsed(cmd, cmdline, rest, machine_thread=False)
        return self._take()

    def _take(self) -> str:
        """The output so far, with QEMU's monitor line ends (monitor_puts: ``\r\n``)."""
        text, self._out = "".join(self._out), []
        return text.replace("\n", "\r\n")

    def _run_parsed(self, cmd: HmpCommand, cmdline: str, rest: int,
                    machine_thread: bool) -> None:
        self._on_machine_thread = machine_thread
        try:
            try:
                args = self._parse_arguments(cmd, cmdline[rest:])
            except _Fail:
                shown = cmdline[:rest].rstrip()
                self.print(f'Try "help {shown}" for more information\n')
                return
            assert cmd.handler is not None
            cmd.handler(self, args)
        finally:
            self._on_machine_thread = False

    def _wait(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the machine's thread and wait for it."""
        if self._on_machine_thread:
            return fn()
        fut = self.machine.call_soon(fn)
        try:
            return fut.result(timeout=CPU_WAIT_S)
        except FutureTimeout:
            fut.cancel()  # not run later: its output would land in another command's
            self.print(f"the guest has been computing without touching a device for "
                       f"{CPU_WAIT_S:g} s; the request takes effect at its next device "
                       "access (emu stops the CPU only at such points)\n")
            return None

    def _wait_posted(self, fn: Callable[[], Any]) -> None:
        """Post ``fn`` to the machine's thread; wait for it unless it holds the machine for
        the terminal (then it is done once the machine took it)."""
        if self.printed is None:
            self._wait(fn)
            return
        started = threading.Event()

        def job() -> None:
            started.set()
            fn()

        fut = self.machine.call_soon(job)
        if not started.wait(CPU_WAIT_S):
            fut.cancel()
            self.print(f"the guest has been computing without touching a device for "
                       f"{CPU_WAIT_S:g} s; the request takes effect at its next device "
                       "access (emu stops the CPU only at such points)\n")

    def _parse_command(self, cmdline: str) -> tuple[HmpCommand, int] | None:
        """monitor_parse_command: the command (descending into ``info``'s table) and where
        its arguments start; prints ``unknown command`` and returns None otherwise."""
        table: tuple[HmpCommand, ...] = COMMANDS
        pos = 0
        while True:
            p = _skip_space(cmdline, pos)
            if p >= len(cmdline):
                return None
            end = p
            while end < len(cmdline) and cmdline[end] != "/" and not cmdline[end].isspace():
                end += 1
            name = cmdline[p:end]
            cmd = next((c for c in table if compare_cmd(name, c.name)), None)
            if cmd is None:
                self.print(f"unknown command: '{cmdline[:end]}'\n")
                return None
            pos = _skip_space(cmdline, end)
            if cmd.sub_table is not None and pos < len(cmdline):
                table = cmd.sub_table
                continue
            return cmd, pos

    def _parse_arguments(self, cmd: HmpCommand, text: str) -> dict[str, Any]:
        """monitor_parse_arguments for the argument types emu's commands use."""
        args: dict[str, Any] = {}
        specs = [s for s in cmd.args_type.split(",") if s]
        p = 0
        name = cmd.name
        i = 0
        while i < len(specs):
            key, _, typ = specs[i].partition(":")
            i += 1
            c, opt = typ[0], typ[1:]
            if c in "sSF":
                p = _skip_space(text, p)
                if opt.startswith("?") and p >= len(text):
                    continue
                if c == "S":
                    args[key] = text[p:]
                    p = len(text)
                    continue
                value, p = _get_str(text, p)
                if value is None:
                    what = "filename" if c == "F" else "string"
                    self.print(f"{name}: {what} expected\n")
                    raise _Fail
                args[key] = value
            elif c == "/":
                fmt, p = self._parse_format(text, p)
                args.update(fmt)
            elif c in "il":
                p = _skip_space(text, p)
                if opt.startswith("?") and p >= len(text):
                    continue
                try:
                    value, p = evaluate(text, p, self._register)
                except ExprError as e:
                    self.print(f"{e}\n")
                    raise _Fail from None
                if c == "i" and (value >> 32) & 0xFFFFFFFF:
                    self.print(f"'{name}' has failed: integer is for 32-bit values\n")
                    raise _Fail
                args[key] = value
            elif c == "-":
                letter = opt[0]
                rest_types = ",".join(specs[i:])
                save = p
                p = _skip_space(text, p)
                if p < len(text) and text[p] == "-":
                    given = text[p + 1] if p + 1 < len(text) else ""
                    if given != letter:
                        if not given or f"-{given}" not in rest_types:
                            self.print(f"{name}: unsupported option -{given}\n")
                            raise _Fail
                        p = save
                    else:
                        args[key] = True
                        p += 2
                else:
                    p = save
        p = _skip_space(text, p)
        if p < len(text):
            self.print(f"{name}: extraneous characters at the end of line\n")
            raise _Fail
        return args

    def _parse_format(self, text: str, p: int) -> tuple[dict[str, Any], int]:
        """The ``/`` argument type: ``/[count][format][size]`` with QEMU's remembered
        defaults."""
        defaults = _FMT.setdefault(self.machine, _FmtDefaults())
        p = _skip_space(text, p)
        if p < len(text) and text[p] == "/":
            p += 1
            count = 1
            if p < len(text) and text[p].isdigit():
                start = p
                while p < len(text) and text[p].isdigit():
                    p += 1
                count = int(text[start:p])
            size, fmt = -1, ""
            sizes = {"b": 1, "h": 2, "w": 4, "g": 8, "L": 8}
            while p < len(text):
                ch = text[p]
                if ch in "oduxic":
                    fmt = ch
                elif ch in sizes:
                    size = sizes[ch]
                else:
                    break
                p += 1
            if p < len(text) and not text[p].isspace():
                self.print(f"invalid char in format: '{text[p]}'\n")
                raise _Fail
            fmt = fmt or defaults.format
            if fmt != "i":
                if size < 0:
                    size = defaults.size
                defaults.size = size
            defaults.format = fmt
        else:
            count, fmt = 1, defaults.format
            size = defaults.size if fmt != "i" else -1
        return {"count": count, "format": fmt, "size": size}, p

    # -- registers and memory -------------------------------------------------------------------

    def _register(self, name: str) -> int | None:
        """get_monitor_def: a register value for ``$name``, or None."""
        from emu.cpu.register_dump import monitor_register

        cpu = self.machine.cpu
        return self._wait(lambda: monitor_register(cpu, name))

    def read_memory(self, addr: int, size: int, physical: bool) -> bytes | None:
        """Guest memory for the monitor: RAM and ROM (device registers are not read);
        ``physical`` False translates through the CPU's page tables, page by page."""
        out = bytearray()
        while size > 0:
            n = min(size, PAGE - (addr & (PAGE - 1)))
            paddr = addr if physical else self.machine.cpu.translate(addr)
            if paddr is None:
                return None
            data = self.machine.read_memory(paddr, n)
            if data is None:
                return None
            out += data
            addr = (addr + n) & MASK64
            size -= n
        return bytes(out)


def _skip_space(text: str, p: int) -> int:
    while p < len(text) and text[p].isspace():
        p += 1
    return p


def _get_str(text: str, p: int) -> tuple[str | None, int]:
    """get_str: a word, or a double-quoted string with \\n \\r \\\\ \\' \\" escapes."""
    p = _skip_space(text, p)
    if p >= len(text):
        return None, p
    if text[p] != '"':
        start = p
        while p < len(text) and not text[p].isspace():
            p += 1
        return text[start:p], p
    p += 1
    out = []
    escapes = {"n": "\n", "r": "\r", "\\": "\\", "'": "'", '"': '"'}
    while p < len(text) and text[p] != '"':
        if text[p] == "\\":
            esc = text[p + 1] if p + 1 < len(text) else ""
            if esc not in escapes:
                return None, p
            out.append(escapes[esc])
            p += 2
        else:
            out.append(text[p])
            p += 1
    if p >= len(text):
        return None, p
    return "".join(out), p + 1


# -- commands -------------------------------------------------------------------------------------


def _help_lines(table: tuple[HmpCommand, ...], prefix: list[str]) -> str:
    pre = "".join(f"{a} " for a in prefix)
    return "".join(f"{pre}{c.name} {c.params} -- {c.help}\n" for c in table)


def hmp_help(mon: Hmp, args: dict[str, Any]) -> None:
    """help_cmd: every command, or the one named (``help info registers``)."""
    words = (args.get("name") or "").split()
    table: tuple[HmpCommand, ...] = COMMANDS
    index = 0
    while index < len(words):
        cmd = next((c for c in table if compare_cmd(words[index], c.name)), None)
        if cmd is None:
            mon.print(f"unknown command: '{' '.join(words[:index + 1])}'\n")
            return
        if cmd.sub_table is None:
            mon.print(_help_lines((cmd,), words[:index]))
            return
        table = cmd.sub_table
        index += 1
    mon.print(_help_lines(table, words))


def hmp_info(mon: Hmp, args: dict[str, Any]) -> None:
    """``info`` alone lists its subcommands, as QEMU's hmp_info_help."""
    mon.print(_help_lines(INFO_COMMANDS, ["info"]))


def hmp_info_status(mon: Hmp, args: dict[str, Any]) -> None:
    """hmp_info_status over query-status."""
    from emu.qmp.commands import COMMANDS as QMP

    info = QMP["query-status"](mon.host, {})
    text = "VM status: " + ("running" if info["running"] else "paused")
    if not info["running"] and info["status"] != "paused":
        text += f" ({info['status']})"
    mon.print(text + "\n")


def hmp_info_registers(mon: Hmp, args: dict[str, Any]) -> None:
    """hmp_info_registers: ``\\nCPU#0\\n`` and the CPU's register dump."""
    from emu.cpu.register_dump import format_registers

    vcpu = args.get("vcpu", -1)
    if vcpu not in (-1, 0):
        mon.print(f"CPU#{vcpu} not available\n")
        return
    m = mon.machine
    mon.print("\nCPU#0\n" + format_registers(m.cpu, m.halted))


def hmp_info_mtree(mon: Hmp, args: dict[str, Any]) -> None:
    """mtree_info: the memory tree of the machine (emu.monitor.mtree)."""
    from emu.monitor.mtree import memory_tree

    for flag, letter in (("flatview", "f"), ("dispatch_tree", "d"), ("owner", "o"),
                         ("disabled", "D")):
        if args.get(flag):
            mon.print(f"Error: info mtree -{letter} is not supported by emu (it prints the "
                      "memory tree only)\n")
            return
    mon.print(memory_tree(mon.machine))


def hmp_info_dump(mon: Hmp, args: dict[str, Any]) -> None:
    """hmp_info_dump over query-dump."""
    state = mon.host.dump
    mon.print(f"Status: {state.status}\n")
    if state.status == "active" and state.total:
        mon.print(f"Finished: {100.0 * state.completed / state.total:.2f} %\n")


def _printc(c: int) -> str:
    special = {ord("'"): "\\'", ord("\\"): "\\\\", ord("\n"): "\\n", ord("\r"): "\\r"}
    if c in special:
        return f"'{special[c]}'"
    return f"'{chr(c)}'" if 32 <= c <= 126 else f"'\\x{c:02x}'"


def memory_dump(mon: Hmp, count: int, fmt: str, wsize: int, addr: int, physical: bool) -> None:
    """QEMU's memory_dump (monitor/hmp-cmds-target.c): 8 bytes a line for bytes, 16
    otherwise, little-endian values."""
    if fmt == "i":
        from emu.cpu.register_dump import x86_code_size
        from emu.monitor.disas import disassemble

        m = mon.machine
        bits = 0
        if m.arch == "x86_64":
            bits = {2: 16, 4: 32}.get(wsize) or x86_code_size(m.cpu)
        mon.print(disassemble(m.arch, bits, addr & MASK64, count,
                              lambda a, n: mon.read_memory(a, n, physical)))
        return
    length = wsize * count
    line_size = 8 if wsize == 1 else 16
    digits = {"o": (wsize * 8 + 2) // 3, "u": (wsize * 80 + 32) // 33,
              "d": (wsize * 80 + 32) // 33}.get(fmt, wsize * 2)
    if fmt == "c":
        wsize = 1
    addr &= MASK64
    while length > 0:
        mon.print(f"{addr:016x}:")
        n = min(length, line_size)
        data = mon.read_memory(addr, n, physical)
        if data is None:
            mon.print(" Cannot access memory\n")
            break
        for i in range(0, n, wsize):
            v = int.from_bytes(data[i : i + wsize], "little")
            if fmt == "o":
                text = f"0{v:o}" if v else "0"
                mon.print(" " + text.rjust(digits))
            elif fmt == "x":
                mon.print(f" 0x{v:0{digits}x}")
            elif fmt == "u":
                mon.print(f" {v:{digits}d}")
            elif fmt == "d":
                if wsize == 8 and v >> 63:
                    v -= 1 << 64
                mon.print(f" {v:{digits}d}")
            else:
                mon.print(" " + _printc(v))
        mon.print("\n")
        addr = (addr + n) & MASK64
        length -= n


def hmp_x(mon: Hmp, args: dict[str, Any]) -> None:
    memory_dump(mon, args["count"], args["format"], args["size"], args["addr"], False)


def hmp_xp(mon: Hmp, args: dict[str, Any]) -> None:
    memory_dump(mon, args["count"], args["format"], args["size"], args["addr"], True)


def hmp_ioport_read(mon: Hmp, args: dict[str, Any]) -> None:
    """hmp_ioport_read: ``i/fmt addr [index]``; with an index, that byte goes to ``addr``
    first and ``addr + 1`` is read (an index/data register pair)."""
    bus = mon.machine.port_bus
    size = args["size"] if args["size"] in (1, 2, 4) else 1
    addr = args["addr"]
    if "index" in args:
        bus.port_write(addr & 0xFFFF, 1, args["index"] & 0xFF)
        addr += 1
    addr &= 0xFFFF
    value = bus.port_read(addr, size)
    suffix = {1: "b", 2: "w", 4: "l"}[size]
    mon.print(f"port{suffix}[0x{addr:04x}] = 0x{value:0{size * 2}x}\n")


def hmp_ioport_write(mon: Hmp, args: dict[str, Any]) -> None:
    """hmp_ioport_write: ``o/fmt addr value``."""
    size = args["size"] if args["size"] in (1, 2, 4) else 1
    mon.machine.port_bus.port_write(args["addr"] & 0xFFFF, size,
                                    args["val"] & ((1 << (8 * size)) - 1))


def _qmp(mon: Hmp, name: str, arguments: dict[str, Any]) -> None:
    """Run a QMP command for an HMP one; its error is printed as hmp_handle_error does."""
    from emu.qmp.commands import COMMANDS as QMP
    from emu.qmp.commands import QmpError

    try:
        QMP[name](mon.host, arguments)
    except QmpError as e:
        mon.print(f"Error: {e}\n")


def hmp_dump_guest_memory(mon: Hmp, args: dict[str, Any]) -> None:
    """hmp_dump_guest_memory: the QMP command with protocol ``file:FILENAME``."""
    flags = {"zlib": "kdump-zlib", "lzo": "kdump-lzo", "snappy": "kdump-snappy",
             "windmp": "win-dmp"}
    chosen = [fmt for key, fmt in flags.items() if args.get(key)]
    if len(chosen) > 1:
        mon.print("Error: only one of '-z|-l|-s|-w' can be set\n")
        return
    arguments: dict[str, Any] = {"paging": bool(args.get("paging")),
                                 "protocol": "file:" + args["filename"],
                                 "detach": bool(args.get("detach")),
                                 "format": chosen[0] if chosen else "elf"}
    for key in ("begin", "length"):
        if key in args:
            arguments[key] = args[key]
    _qmp(mon, "dump-guest-memory", arguments)


def _then_hold(mon: Hmp, fn: Callable[[], None]) -> Callable[[], None]:
    """``fn``, then (on a terminal) wait until the prompt is out before the guest goes on."""
    printed = mon.printed

    def job() -> None:
        fn()
        if printed is not None:
            printed.wait(timeout=2.0)

    if printed is not None:
        printed.clear()
    return job


def hmp_stop(mon: Hmp, args: dict[str, Any]) -> None:
    mon._wait(mon.machine.pause)


def hmp_cont(mon: Hmp, args: dict[str, Any]) -> None:
    mon._wait_posted(_then_hold(mon, mon.machine.resume))


def hmp_system_reset(mon: Hmp, args: dict[str, Any]) -> None:
    mon._wait_posted(_then_hold(mon, lambda: mon.machine.request_reset(guest=False)))


def hmp_quit(mon: Hmp, args: dict[str, Any]) -> None:
    if mon.quit is not None:
        mon.quit()
    else:
        mon.machine.quit(0, reason="host-qmp-quit")


_DUMP_HELP = "\n\t\t\t".join((
    "dump guest memory into file 'filename'.",
    "-p: do paging to get guest's memory mapping.",
    "-d: return immediately (do not wait for completion).",
    "-z: dump in kdump-compressed format, with zlib compression.",
    "-l: dump in kdump-compressed format, with lzo compression.",
    "-s: dump in kdump-compressed format, with snappy compression.",
    "-w: dump in Windows crashdump format (can be used instead of ELF-dump converting),",
    "    for Windows x86 and x64 guests with vmcoreinfo driver only.",
    "begin: the starting physical address.",
    "length: the memory size, in bytes."))

INFO_COMMANDS: tuple[HmpCommand, ...] = (
    HmpCommand("dump", "", "", "Display the latest dump status", hmp_info_dump),
    HmpCommand("mtree", "flatview:-f,dispatch_tree:-d,owner:-o,disabled:-D",
               "[-f][-d][-o][-D]",
               "show memory tree (-f: dump flat view for address spaces;-d: dump dispatch "
               "tree, valid with -f only);-o: dump region owners/parents;-D: dump disabled "
               "regions", hmp_info_mtree),
    HmpCommand("registers", "cpustate_all:-a,vcpu:i?", "[-a|vcpu]",
               "show the cpu registers (-a: show register info for all cpus; vcpu: specific "
               "vCPU to query; show the current CPU's registers if no argument is specified)",
               hmp_info_registers, on_machine=True),
    HmpCommand("status", "", "", "show the current VM status (running|paused)",
               hmp_info_status),
)

COMMANDS: tuple[HmpCommand, ...] = (
    HmpCommand("cont|c", "", "", "resume emulation", hmp_cont),
    HmpCommand("dump-guest-memory",
               "paging:-p,detach:-d,windmp:-w,zlib:-z,lzo:-l,snappy:-s,filename:F,begin:l?,"
               "length:l?", "[-p] [-d] [-z|-l|-s|-w] filename [begin length]", _DUMP_HELP,
               hmp_dump_guest_memory),
    HmpCommand("help|?", "name:S?", "[cmd]", "show the help", hmp_help),
    HmpCommand("i", "fmt:/,addr:i,index:i?", "/fmt addr", "I/O port read", hmp_ioport_read,
               on_machine=True),
    HmpCommand("info", "item:s?", "[subcommand]",
               "show various information about the system state", hmp_info,
               sub_table=INFO_COMMANDS),
    HmpCommand("o", "fmt:/,addr:i,val:i", "/fmt addr value", "I/O port write",
               hmp_ioport_write, on_machine=True),
    HmpCommand("quit|q", "", "", "quit the emulator", hmp_quit),
    HmpCommand("stop|s", "", "", "stop emulation", hmp_stop),
    HmpCommand("system_reset", "", "", "reset the system", hmp_system_reset),
    HmpCommand("x", "fmt:/,addr:l", "/fmt addr", "virtual memory dump starting at 'addr'",
               hmp_x, on_machine=True),
    HmpCommand("xp", "fmt:/,addr:l", "/fmt addr", "physical memory dump starting at 'addr'",
               hmp_xp, on_machine=True),
)
