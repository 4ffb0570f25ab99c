"""QMP commands (QEMU qapi/*.json): lifecycle, status and dump-guest-memory.

A command is ``fn(server, arguments) -> result``; it raises :class:`QmpError` for an error
object. Arguments are checked against the command's parameter table with QEMU's messages
(``Parameter 'paging' is missing``, ``Invalid parameter type for 'paging', expected: boolean``).
Anything that touches the machine runs on the machine's thread through ``call_soon``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

from emu import __version__

if TYPE_CHECKING:
    from emu.qmp.server import QmpServer

QEMU_VERSION = {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": f"emu {__version__}"}
#: QEMU 7.2's DumpGuestMemoryFormat, with QEMU 8.2's kdump-raw-* names and emu's kdump-zstd
#: and kdump-raw-zstd (makedumpfile's zstd compression)
DUMP_FORMATS = ("elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-raw-zlib",
                "kdump-raw-lzo", "kdump-raw-snappy", "win-dmp", "kdump-zstd", "kdump-raw-zstd")
#: how long a command waits for the CPU to come back before answering that it is pending
CPU_WAIT_S = 10.0

Command = Callable[["QmpServer", dict[str, Any]], Any]


class QmpError(Exception):
    """An error object: ``{"error": {"class": error_class, "desc": str(self)}}``."""

    def __init__(self, desc: str, error_class: str = "GenericError") -> None:
        super().__init__(desc)
        self.error_class = error_class


_TYPES = {bool: "boolean", int: "integer", str: "string", list: "array"}
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _check(args: dict[str, Any], params: dict[str, tuple[type, bool]]) -> None:
    """QEMU's input visitor: unknown and missing members, and types (``int`` is QAPI's
    int64: a number outside it, or with a fraction, is not an integer)."""
    for key in args:
        if key not in params:
            raise QmpError(f"Parameter '{key}' is unexpected")
    for key, (kind, required) in params.items():
        if key not in args:
            if required:
                raise QmpError(f"Parameter '{key}' is missing")
            continue
        value = args[key]
        if not isinstance(value, kind) or (kind is int and (
                isinstance(value, bool) or not INT64_MIN <= value <= INT64_MAX)):
            raise QmpError(f"Invalid parameter type for '{key}', expected: {_TYPES[kind]}")


#: what a client may enable with qmp_capabilities (emu offers none: no out-of-band)
QMP_CAPABILITIES = ("oob",)
OFFERED_CAPABILITIES: tuple[str, ...] = ()


def qmp_capabilities(args: dict[str, Any]) -> None:
    """qmp_capabilities's arguments (monitor/qmp-cmds-control.c): ``enable``, a list of
    QMPCapability values, each of which must have been offered in the greeting."""
    _check(args, {"enable": (list, False)})
    enable = args.get("enable", [])
    for i, cap in enumerate(enable):
        if not isinstance(cap, str):
            raise QmpError(f"Invalid parameter type for 'enable[{i}]', expected: string")
        if cap not in QMP_CAPABILITIES:
            raise QmpError(f"Parameter 'enable[{i}]' does not accept value '{cap}'")
    unavailable = [cap for cap in enable if cap not in OFFERED_CAPABILITIES]
    if unavailable:
        raise QmpError(f"Capability {', '.join(unavailable)} not available")


def _on_machine(server: QmpServer, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on the machine's thread and wait for it."""
    fut = server.machine.call_soon(fn)
    try:
        return fut.result(timeout=CPU_WAIT_S)
    except FutureTimeout:
        raise QmpError("the guest has been computing without touching a device for "
                       f"{CPU_WAIT_S:g} s; the request takes effect at its next device access "
                       "(emu stops the CPU only at such points)") from None


def qmp_query_version(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    return QEMU_VERSION


def qmp_query_commands(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    return [{"name": name} for name in sorted([*server.commands(), "qmp_capabilities"])]


def qmp_query_status(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    m = server.machine
    status = {"created": "prelaunch", "running": "running", "paused": "paused",
              "shutdown": "shutdown"}[m.state]
    if m.needs_reset:
        status = "shutdown"
    elif status == "paused" and not m.started:
        status = "prelaunch"
    elif status == "paused" and m.panicked:
        status = "guest-panicked"
    return {"status": status, "singlestep": False, "running": status == "running"}


def qmp_stop(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    _on_machine(server, server.machine.pause)


def qmp_cont(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    if server.machine.needs_reset:  # QEMU's qmp_cont: runstate_needs_reset()
        raise QmpError("Resetting the Virtual Machine is required")
    _on_machine(server, server.machine.resume)


def qmp_system_reset(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    _on_machine(server, lambda: server.machine.request_reset(guest=False))


def qmp_quit(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    # as QEMU: the SHUTDOWN event, then the reply; the server's close() lets the reply out
    # before the process ends
    server.machine.quit(0, reason="host-qmp-quit")


#: the vmcoreinfo plugin's warning when the guest registered no note, and QEMU's text for
#: the same case (dump/dump.c), which a QMP dump prints on stderr as QEMU does
_QEMU_WARNINGS = {"vmcoreinfo: the guest has not registered a note; the dump has no "
                  "VMCOREINFO": "guest note is not present"}


def qmp_dump_guest_memory(server: QmpServer, args: dict[str, Any]) -> Any:
    """dump-guest-memory (qapi/dump.json, dump/dump.c qmp_dump_guest_memory()).

    As QEMU: the arguments are checked, the file is opened (``Could not open ...``; nothing
    changes on failure), the range is checked (``Invalid parameter 'length'``, ``dump: no
    guest memory to dump``: the dump's status becomes "failed"), then the guest is stopped
    (STOP), the dump written, DUMP_COMPLETED sent, the guest resumed (RESUME) and the reply
    sent. With ``detach`` the reply comes once the guest is stopped. Unlike QEMU, a dump that
    fails its range checks sends no STOP/RESUME, and leaves no empty file behind. Whatever
    fails, the status ends "failed" (total 0) and the next dump can start.
    """
    from emu.dump.guest import FORMATS, available_formats, dump_ranges
    from emu.dump.kdump import check_kdump_target, kdump_format
    from emu.dump.target import DumpError, adopt_fd, open_target

    _check(args, {"paging": (bool, True), "protocol": (str, True), "detach": (bool, False),
                  "begin": (int, False), "length": (int, False), "format": (str, False)})
    fmt = args.get("format", "elf")
    if fmt not in DUMP_FORMATS:
        raise QmpError(f"Parameter 'format' does not accept value '{fmt}'")
    state = server.dump
    if state.status == "active":
        raise QmpError("There is a dump in process, please wait.")
    kdump = kdump_format(fmt)
    if kdump is not None and (args["paging"] or "begin" in args or "length" in args):
        raise QmpError("kdump-compressed format doesn't support paging or filter")
    if "begin" in args and "length" not in args:
        raise QmpError("Parameter 'length' is missing")
    if "length" in args and "begin" not in args:
        raise QmpError("Parameter 'begin' is missing")
    if kdump is not None and not kdump[0].available():
        raise QmpError(f"{fmt} is not available now")
    if fmt not in FORMATS:
        raise QmpError(f"dump format '{fmt}' is not supported by emu yet (supported: "
                       f"{', '.join(available_formats())})")
    protocol = args["protocol"]
    if not protocol.startswith(("file:", "fd:")):
        raise QmpError("Invalid parameter 'protocol'")
    m = server.machine
    begin, length = args.get("begin"), args.get("length")
    if protocol.startswith("fd:"):  # a descriptor named with getfd (QEMU: monitor_get_fd)
        name = protocol[3:]
        fd = server.fds.take(name)
        if fd is None:
            raise QmpError(f"File descriptor named '{name}' has not been found")
        target = adopt_fd(name, fd)
    else:
        try:
            target = open_target(protocol[5:])
        except DumpError as e:
            raise QmpError(str(e)) from None
    if kdump is not None:
        try:
            check_kdump_target(target, kdump[1])
        except DumpError as e:
            target.abort()
            raise QmpError(str(e)) from None
    try:
        total = sum(len(r.view) for r in dump_ranges(m, begin, length))
    except DumpError as e:
        target.abort()
        state.status, state.completed, state.total = "failed", 0, 0
        raise QmpError(str(e)) from None
    state.status, state.completed, state.total = "active", 0, total
    started = threading.Event()

    def progress(done: int, _total: int) -> None:
        state.completed = done

    def job() -> None:
        was_running = m.state == "running"
        if was_running:
            m.pause()
        started.set()
        try:
            try:
                result = m.dump(target, paging=args["paging"], begin=begin, length=length,
                                fmt=fmt, progress=progress)
            except DumpError:
                raise
            except BaseException as e:  # a bug: still a failed dump, never a stuck one
                target.abort()
                raise DumpError(f"internal error: {type(e).__name__}: {e}") from None
        except DumpError as e:
            state.status, state.completed, state.total = "failed", 0, 0
            server.event("DUMP_COMPLETED", {"result": _dump_info(state), "error": str(e)})
            raise
        else:
            state.status, state.completed = "completed", state.total
            server.event("DUMP_COMPLETED", {"result": _dump_info(state)})
            for warning in result.warnings:
                print(f"warning: {_QEMU_WARNINGS.get(warning, warning)}", file=sys.stderr,
                      flush=True)
        finally:
            if was_running:
                m.resume()

    fut = m.call_soon(job)
    if args.get("detach", False):
        started.wait(CPU_WAIT_S)  # QEMU replies once the guest is stopped
        return None
    try:
        fut.result(timeout=None if m.state != "running" else CPU_WAIT_S * 6)
    except DumpError as e:
        raise QmpError(str(e)) from None
    except FutureTimeout:
        raise QmpError("the dump is queued: the guest has touched no device for a minute; it "
                       "starts at its next device access (see query-dump)") from None
    return None


def _dump_info(state: Any) -> dict[str, Any]:
    return {"status": state.status, "completed": state.completed, "total": state.total}


def qmp_query_dump(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    return _dump_info(server.dump)


def qmp_query_dump_guest_memory_capability(server: QmpServer, args: dict[str, Any]) -> Any:
    _check(args, {})
    from emu.dump.guest import available_formats

    return {"formats": available_formats()}


COMMANDS: dict[str, Command] = {
    "query-version": qmp_query_version,
    "query-commands": qmp_query_commands,
    "query-status": qmp_query_status,
    "stop": qmp_stop,
    "cont": qmp_cont,
    "system_reset": qmp_system_reset,
    "quit": qmp_quit,
    "dump-guest-memory": qmp_dump_guest_memory,
    "query-dump": qmp_query_dump,
    "query-dump-guest-memory-capability": qmp_query_dump_guest_memory_capability,
}
