"""The QMP server (QEMU docs/interop/qmp-spec.rst): JSON over a Unix or TCP socket.

``-qmp unix:PATH,server=on,wait=off`` or ``-qmp tcp:HOST:PORT,server=on,wait=off``. One client
at a time, served on its own thread; clients may connect one after another. Each connection
gets the greeting, must negotiate with ``qmp_capabilities``, then sends one JSON object per
command; ``id`` is echoed. Commands that touch the machine run on the machine's thread
(:meth:`emu.machine.Machine.call_soon`). Bad input of any kind is answered with an error
object and the server stays up. Events (``STOP``, ``RESUME``, ``RESET``, ``SHUTDOWN``,
``DUMP_COMPLETED``...) go to the connected client.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emu.errors import ConfigError
from emu.qmp.commands import COMMANDS, QEMU_VERSION, QmpError
from emu.qmp.fds import FdStore, client_left, recv_with_fds

if TYPE_CHECKING:
    from emu.machine import Machine

MAX_LINE = 1 << 20  # a command longer than this is refused, the connection kept


@dataclass
class QmpAddress:
    """Where to listen: ``unix`` with ``path``, or ``tcp`` with ``host`` and ``port``."""

    spec: str
    kind: str
    path: str = ""
    host: str = ""
    port: int = 0
    wait: bool = False


def parse_qmp_option(spec: str) -> QmpAddress:
    """``unix:PATH,server=on,wait=off`` / ``tcp:HOST:PORT,server=on,wait=off`` (QEMU's)."""
    head, *opts = spec.split(",")
    flags = {}
    for opt in opts:
        key, _, value = opt.partition("=")
        if key not in ("server", "wait", "nowait"):
            raise ConfigError(f"-qmp {spec}: unsupported option '{key}'")
        flags[key] = value or "on"
    if flags.get("server", "on") not in ("on", "yes", "true"):
        raise ConfigError(f"-qmp {spec}: only server=on is supported")
    wait = flags.get("wait", "on") in ("on", "yes", "true") and "nowait" not in flags
    if head.startswith("unix:"):
        return QmpAddress(spec, "unix", path=head[5:], wait=wait)
    if head.startswith("tcp:"):
        host, _, port = head[4:].rpartition(":")
        try:
            return QmpAddress(spec, "tcp", host=host or "localhost", port=int(port), wait=wait)
        except ValueError:
            raise ConfigError(f"-qmp {spec}: invalid port '{port}'") from None
    raise ConfigError(f"-qmp {spec}: expected unix:PATH or tcp:HOST:PORT")


class QmpServer:
    """Listens, accepts one client at a time, and runs its commands."""

    def __init__(self, machine: Machine, address: QmpAddress) -> None:
        self.machine = machine
        self.address = address
        self.sock = self._listen(address)
        self._client: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._connected = threading.Event()
        self.dump = DumpState()
        #: descriptors passed with SCM_RIGHTS and those named by getfd (emu/qmp/fds.py)
        self.fds = FdStore()
        #: actions a command wants run once its reply is on the wire (quit)
        self.after_reply: list[Any] = []
        machine.listeners.append(self.event)
        self._thread = threading.Thread(target=self._serve, name="emu-qmp", daemon=True)

    def _listen(self, a: QmpAddress) -> socket.socket:
        try:
            if a.kind == "unix":
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(a.path)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                old = os.umask(0o177)  # the socket is created with mode 0600
                try:
                    sock.bind(a.path)
                finally:
                    os.umask(old)
            else:
                info = socket.getaddrinfo(a.host, a.port, type=socket.SOCK_STREAM)[0]
                sock = socket.socket(info[0], socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(info[4])
                if not _is_loopback(info[4][0]):
                    print(f"emu: -qmp {a.spec}: warning: the monitor listens on a non-loopback "
                          "address: anyone who can reach it controls the machine",
                          file=sys.stderr, flush=True)
            sock.listen(1)
        except OSError as e:
            raise ConfigError(f"-qmp {a.spec}: cannot listen: {e.strerror}") from None
        return sock

    def start(self) -> None:
        """Serve on a background thread; with ``wait=on`` return once a client connected."""
        self._thread.start()
        if self.address.wait:
            self._connected.wait()

    def close(self) -> None:
        """Stop listening (and remove the Unix socket)."""
        with contextlib.suppress(OSError):
            self.sock.close()
        if self.address.kind == "unix":
            with contextlib.suppress(OSError):
                os.unlink(self.address.path)

    # -- connection handling -------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._connected.set()
            with conn:
                self._client = conn
                try:
                    self._session(conn)
                except OSError:
                    pass
                finally:
                    self._client = None
                    client_left(self)

    def _send(self, obj: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            return
        data = (json.dumps(obj) + "\r\n").encode()
        with self._send_lock, contextlib.suppress(OSError):
            client.sendall(data)

    def event(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Send an event to the client (thread-safe; dropped when nobody is connected)."""
        now = time.time()
        msg: dict[str, Any] = {"event": name, "data": data or {},
                               "timestamp": {"seconds": int(now),
                                             "microseconds": int(now % 1 * 1e6)}}
        if data is None:
            del msg["data"]
        self._send(msg)

    def _session(self, conn: socket.socket) -> None:
        """A stream of JSON objects, with or without newlines between them (as QEMU's
        streaming parser accepts). Invalid JSON is answered with an error and skipped up to
        the next newline (or dropped whole); an incomplete object waits for more input."""
        self._send({"QMP": {"version": QEMU_VERSION, "capabilities": ["oob"]}})
        negotiated = False
        decoder = json.JSONDecoder()
        text = ""
        skipping = False  # dropping the rest of an oversized object, up to its newline
        while True:
            chunk, fds = recv_with_fds(conn, 65536)
            self.fds.received(fds)
            if not chunk:
                return
            text += chunk.decode(errors="replace")
            if skipping:
                cut = text.find("\n")
                if cut < 0:
                    text = ""
                    continue
                text, skipping = text[cut + 1 :], False
            while True:
                text = text.lstrip()
                if not text:
                    break
                try:
                    obj, end = decoder.raw_decode(text)
                except json.JSONDecodeError as e:
                    incomplete = e.pos >= len(text) or (
                        e.msg.startswith("Unterminated") and "\n" not in text[e.pos :])
                    if incomplete and len(text) <= MAX_LINE:
                        break  # wait for the rest of the object
                    too_large = len(text) > MAX_LINE
                    self._send(_error("GenericError", "JSON parse error, " + (
                        "input too large" if too_large else e.msg)))
                    cut = text.find("\n", 0 if too_large else e.pos)
                    if cut < 0:
                        text, skipping = "", too_large
                        break
                    text = text[cut + 1 :]
                    continue
                text = text[end:]
                negotiated = self._handle(obj, negotiated)

    def _handle(self, obj: Any, negotiated: bool) -> bool:
        if not isinstance(obj, dict):
            self._send(_error("GenericError", "QMP input must be a JSON object"))
            return negotiated
        reply_id = {"id": obj["id"]} if "id" in obj else {}
        name = obj.get("execute")
        if name is None:
            self._send(_error("GenericError", "QMP input lacks member 'execute'", reply_id))
            return negotiated
        if not isinstance(name, str):
            self._send(_error("GenericError", "QMP input member 'execute' must be a string",
                              reply_id))
            return negotiated
        args = obj.get("arguments", {})
        if not isinstance(args, dict):
            self._send(_error("GenericError", "QMP input member 'arguments' must be an object",
                              reply_id))
            return negotiated
        if name == "qmp_capabilities":
            if negotiated:
                self._send(_error("CommandNotFound", "Capabilities negotiation is already "
                                  "complete, command ignored", reply_id))
                return True
            self._send({"return": {}, **reply_id})
            return True
        if not negotiated:
            self._send(_error("CommandNotFound", "Expecting capabilities negotiation with "
                              "'qmp_capabilities'", reply_id))
            return False
        command = self.commands().get(name)
        if command is None:
            self._send(_error("CommandNotFound", f"The command {name} has not been found",
                              reply_id))
            return True
        try:
            result = command(self, args)
        except QmpError as e:
            self._send(_error(e.error_class, str(e), reply_id))
        except Exception as e:  # a bug must not take the monitor down
            self._send(_error("GenericError", f"internal error: {type(e).__name__}: {e}",
                              reply_id))
        else:
            self._send({"return": {} if result is None else result, **reply_id})
        while self.after_reply:
            self.after_reply.pop(0)()
        return True

    def commands(self) -> dict[str, Any]:
        """Built-in commands plus those plugins contribute."""
        extra: dict[str, Any] = {}
        for contributed in self.machine.plugins.hook.emu_qmp_commands(machine=self.machine):
            extra.update(contributed or {})
        return {**COMMANDS, **extra}


@dataclass
class DumpState:
    """What ``query-dump`` reports."""

    status: str = "none"
    completed: int = 0
    total: int = 0


def _error(cls: str, desc: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"class": cls, "desc": desc}, **(extra or {})}


def _is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in ("::1", "localhost")
