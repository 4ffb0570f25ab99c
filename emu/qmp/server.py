"""The QMP server (QEMU docs/interop/qmp-spec.rst): JSON over a Unix or TCP socket.

``-qmp unix:PATH,server=on,wait=off`` or ``-qmp tcp:HOST:PORT,server=on,wait=off`` listens;
without ``server=on`` emu connects to PATH (or HOST:PORT) as a client, as QEMU's chardev does.
One client at a time, served on its own thread; clients may connect one after another. Each
connection gets the greeting (no capabilities: emu has no out-of-band execution), must
negotiate with ``qmp_capabilities``, then sends JSON messages, parsed as QEMU's stream parser
does (:mod:`emu.qmp.json_stream`) and checked as qapi/qmp-dispatch.c checks them; ``id`` is
echoed. Commands that touch the machine run on the machine's thread
(:meth:`emu.machine.Machine.call_soon`). No input stops the monitor: bad input is answered with
an error object, a bug in a command with an ``internal error`` one. Events (``STOP``,
``RESUME``, ``RESET``, ``SHUTDOWN``, ``DUMP_COMPLETED``...) go to the connected client.

A Unix socket path another process listens on is refused (QEMU 7.2 silently takes it over), a
dead one's socket file is replaced, and on exit emu removes the socket only if the file at the
path is still the one it created.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emu.errors import ConfigError
from emu.qmp.commands import COMMANDS, QEMU_VERSION, QmpError, qmp_capabilities
from emu.qmp.fds import FdStore, client_left, recv_with_fds
from emu.qmp.json_stream import JsonStream, dumps
from emu.qmp.outbox import Outbox

if TYPE_CHECKING:
    from emu.machine import Machine

@dataclass
class QmpAddress:
    """Where to listen (``server``) or connect: ``unix`` with ``path``, or ``tcp`` with
    ``host`` and ``port``."""

    spec: str
    kind: str
    path: str = ""
    host: str = ""
    port: int = 0
    wait: bool = False
    server: bool = True


_ON, _OFF = ("on", "yes", "true", "y"), ("off", "no", "false", "n")
#: sun_path's size (Linux): the longest Unix socket path QEMU accepts, in bytes
UNIX_PATH_MAX = 108


def parse_qmp_option(spec: str) -> QmpAddress:
    """``unix:PATH[,server=on|off][,wait=on|off]`` / ``tcp:HOST:PORT[,...]`` (QEMU's
    chardev syntax; ``server``/``wait`` alone mean ``=on``, ``nowait`` means ``wait=off``).
    Without ``server=on`` emu connects to PATH as a client, as QEMU does."""
    head, *opts = spec.split(",")
    flags = {"server": False, "wait": True}
    wait_given = False
    for opt in opts:
        key, eq, value = opt.partition("=")
        wait_given = wait_given or key in ("wait", "nowait")
        if key == "nowait" and not eq:
            flags["wait"] = False
            continue
        if key not in flags:
            raise ConfigError(f"-qmp {spec}: Invalid parameter '{key}'")
        value = value if eq else "on"
        if value not in _ON + _OFF:
            raise ConfigError(f"-qmp {spec}: Parameter '{key}' expects 'on' or 'off'")
        flags[key] = value in _ON
    server, wait = flags["server"], flags["wait"] and flags["server"]
    if wait_given and not server:
        raise ConfigError(f"-qmp {spec}: 'wait' option is incompatible with socket in client "
                          "connect mode")
    if head.startswith("unix:"):
        return QmpAddress(spec, "unix", path=head[5:], wait=wait, server=server)
    if head.startswith("tcp:"):
        host, _, port = head[4:].rpartition(":")
        try:
            return QmpAddress(spec, "tcp", host=host or "localhost", port=int(port), wait=wait,
                              server=server)
        except ValueError:
            raise ConfigError(f"-qmp {spec}: invalid port '{port}'") from None
    raise ConfigError(f"-qmp {spec}: expected unix:PATH or tcp:HOST:PORT")


class QmpServer:
    """Listens (or connects), serves one client at a time, and runs its commands."""

    def __init__(self, machine: Machine, address: QmpAddress) -> None:
        self.machine = machine
        self.address = address
        #: (st_dev, st_ino) of the Unix socket this server created: the only file it removes
        self._created: tuple[int, int] | None = None
        self._outgoing: socket.socket | None = None
        self.sock = self._listen(address) if address.server else None
        if not address.server:
            self._outgoing = self._connect(address)
        #: the connected client's output (emu.qmp.outbox), None when nobody is connected
        self._outbox: Outbox | None = None
        #: the connected client's socket (for the fd commands of emu/qmp/fds.py)
        self._client: socket.socket | None = None
        #: held from a message's arrival until its reply is sent (close() waits for it)
        self._busy = threading.Lock()
        self._connected = threading.Event()
        self.dump = DumpState()
        #: descriptors passed with SCM_RIGHTS and those named by getfd (emu/qmp/fds.py)
        self.fds = FdStore()
        #: actions a command wants run once its reply is on the wire
        self.after_reply: list[Any] = []
        machine.listeners.append(self.event)
        self._thread = threading.Thread(target=self._serve, name="emu-qmp", daemon=True)

    def _fail(self, message: str) -> ConfigError:
        return ConfigError(f"-qmp {self.address.spec}: {message}")

    def _listen(self, a: QmpAddress) -> socket.socket:
        if a.kind == "unix":
            return self._listen_unix(a.path)
        try:
            info = socket.getaddrinfo(a.host, a.port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(info[0], socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(info[4])
            sock.listen(1)
        except OSError as e:
            raise self._fail(f"Failed to bind socket: {e.strerror}") from None
        if not _is_loopback(info[4][0]):
            print(f"emu: -qmp {a.spec}: warning: the monitor listens on a non-loopback "
                  "address: anyone who can reach it controls the machine",
                  file=sys.stderr, flush=True)
        return sock

    def _listen_unix(self, path: str) -> socket.socket:
        """Bind a Unix socket at ``path``. A socket file nobody listens on any more (left by
        a process that died) is replaced; a path another process listens on, or any other
        kind of file, is refused (QEMU 7.2 unlinks whatever is there, taking a live monitor's
        socket over or deleting a regular file)."""
        if len(os.fsencode(path)) > UNIX_PATH_MAX:
            raise self._fail(f"UNIX socket path '{path}' is too long\n"
                             f"Path must be less than {UNIX_PATH_MAX} bytes")
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        if st is not None:
            in_use = not stat.S_ISSOCK(st.st_mode) or _unix_listener_alive(path)
            if in_use:
                raise self._fail(f"Failed to bind socket to {path}: Address already in use")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created with mode 0600
        try:
            sock.bind(path)
            st = os.stat(path)
            self._created = (st.st_dev, st.st_ino)
            sock.listen(1)
        except OSError as e:
            sock.close()
            raise self._fail(f"Failed to bind socket to {path}: {e.strerror}") from None
        finally:
            os.umask(old)
        return sock

    def _connect(self, a: QmpAddress) -> socket.socket:
        """``server=off``: connect to a listening client, as QEMU's chardev does."""
        where = a.path if a.kind == "unix" else f"{a.host}:{a.port}"
        try:
            if a.kind == "unix":
                if len(os.fsencode(a.path)) > UNIX_PATH_MAX:
                    raise self._fail(f"UNIX socket path '{a.path}' is too long\n"
                                     f"Path must be less than {UNIX_PATH_MAX} bytes")
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(a.path)
                except OSError:
                    sock.close()
                    raise
                return sock
            return socket.create_connection((a.host, a.port))
        except OSError as e:
            raise self._fail(f"Failed to connect to '{where}': {e.strerror}") from None

    @property
    def connected(self) -> bool:
        """Whether a client has connected (what ``wait=on`` waits for)."""
        return self._connected.is_set()

    def start(self, block: bool = True) -> str | None:
        """Serve on a background thread; with ``wait=on`` return once a client connected
        (saying so on stderr, as QEMU does). With ``block=False`` return at once, with the
        line to print while the caller waits for :attr:`connected` (None without wait=on)."""
        a = self.address
        self._thread.start()
        if not a.wait:
            return None
        where = f"unix:{a.path}" if a.kind == "unix" else f"tcp:{a.host}:{a.port}"
        message = (f"emu: -qmp {a.spec}: info: emu waiting for connection on: "
                   f"disconnected:{where},server=on")
        if not block:
            return message
        if threading.current_thread() is not threading.main_thread():
            print(message, file=sys.stderr, flush=True)
            self._connected.wait()
            return None
        # on the main thread, SIGINT, SIGTERM or SIGHUP end the wait with SystemExit, so
        # that the caller's cleanup (removing the socket) runs
        caught: list[int] = []
        previous = {sig: signal.signal(sig, lambda signum, _frame: caught.append(signum))
                    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            print(message, file=sys.stderr, flush=True)
            while not self._connected.wait(0.1):
                if caught:
                    print(f"emu: terminating on signal {caught[0]}", file=sys.stderr,
                          flush=True)
                    raise SystemExit(0)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return None

    def close(self, timeout: float = 10.0) -> None:
        """Stop serving: let the command being answered finish its reply first, then stop
        listening and remove the Unix socket this server created (only if it is still the
        file at that path)."""
        acquired = self._busy.acquire(timeout=timeout)
        try:
            outbox = self._outbox
            if outbox is not None:
                outbox.drain(timeout)
            for sock in (self.sock, self._outgoing):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    with contextlib.suppress(OSError):
                        sock.close()
            if self._created is not None:
                with contextlib.suppress(OSError):
                    st = os.lstat(self.address.path)
                    if (st.st_dev, st.st_ino) == self._created:
                        os.unlink(self.address.path)
                self._created = None
        finally:
            if acquired:
                self._busy.release()

    # -- connection handling -------------------------------------------------------------------

    def _serve(self) -> None:
        if self._outgoing is not None:
            self._connected.set()
            self._serve_connection(self._outgoing)
            return
        assert self.sock is not None
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._connected.set()
            with conn:
                self._serve_connection(conn)

    def _serve_connection(self, conn: socket.socket) -> None:
        outbox = self._outbox = Outbox(conn)
        self._client = conn
        try:
            self._session(conn)
        except OSError:
            pass
        except Exception as e:  # a bug must not stop the monitor: drop this client only
            print(f"emu: QMP: internal error, client disconnected: {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)
        finally:
            outbox.drain(5.0)  # a client that closed its side may still read the replies
            self._outbox = None
            self._client = None
            client_left(self)
            outbox.close()

    def _send(self, obj: dict[str, Any]) -> None:
        """Queue a message for the client (thread-safe; dropped when nobody is connected).
        Raises TypeError/ValueError for an object that is not JSON."""
        outbox = self._outbox
        if outbox is None:
            return
        outbox.put((dumps(obj) + "\r\n").encode())

    def event(self, name: str, data: dict[str, Any] | None = None) -> None:
        """Send an event to the client (thread-safe; dropped when nobody is connected).
        Events whose QAPI definition has no data (STOP, RESUME...) carry no ``data``."""
        now = time.time()
        msg: dict[str, Any] = {"event": name, "data": data,
                               "timestamp": {"seconds": int(now),
                                             "microseconds": int(now % 1 * 1e6)}}
        if data is None or (not data and name in _NO_DATA):
            del msg["data"]
        try:
            self._send(msg)
        except (TypeError, ValueError) as e:  # data that is not JSON: a bug, never fatal
            print(f"emu: QMP: event {name} not sent: {type(e).__name__}: {e}",
                  file=sys.stderr, flush=True)

    def _session(self, conn: socket.socket) -> None:
        """A stream of JSON messages (emu.qmp.json_stream), each answered in order."""
        self._send({"QMP": {"version": QEMU_VERSION, "capabilities": []}})
        stream = JsonStream()
        negotiated = False
        while True:
            chunk, fds = recv_with_fds(conn, 65536)
            self.fds.received(fds)
            if not chunk:
                return
            for value, error in stream.feed(chunk):
                with self._busy:
                    if error is not None:
                        self._send(_error("GenericError", str(error)))
                    else:
                        negotiated = self._handle(value, negotiated)

    def _handle(self, obj: Any, negotiated: bool) -> bool:
        """qapi/qmp-dispatch.c qmp_dispatch(): check the message, run the command."""
        if not isinstance(obj, dict):
            self._send(_error("GenericError", "QMP input must be a JSON object"))
            return negotiated
        reply_id = {"id": obj["id"]} if "id" in obj else {}
        problem = _check_message(obj)
        if problem:
            self._send(_error("GenericError", problem, reply_id))
            return negotiated
        name = obj["execute"]
        args = obj.get("arguments", {})
        if name == "qmp_capabilities":
            try:
                qmp_capabilities(args)
            except QmpError as e:
                self._send(_error(e.error_class, str(e), reply_id))
                return negotiated
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
            try:
                self._send({"return": {} if result is None else result, **reply_id})
            except (TypeError, ValueError) as e:  # a result that is not JSON: a bug
                self._send(_error("GenericError", f"internal error: {type(e).__name__}: {e}",
                                  reply_id))
        while self.after_reply:
            self.after_reply.pop(0)()
        return True

    def commands(self) -> dict[str, Any]:
        """Built-in commands plus those plugins contribute."""
        extra: dict[str, Any] = {}
        for contributed in self.machine.plugins.hook.emu_qmp_commands(machine=self.machine):
            extra.update(contributed or {})
        return {**COMMANDS, **extra}


#: events without a data member in their QAPI definition
_NO_DATA = frozenset({"STOP", "RESUME", "POWERDOWN", "SUSPEND", "WAKEUP"})


def _check_message(obj: dict[str, Any]) -> str:
    """qmp_dispatch_check_obj(): the members a command message may have (``exec-oob`` is
    refused like any unknown member, since emu offers no out-of-band capability)."""
    for key, value in obj.items():
        if key == "execute":
            if not isinstance(value, str):
                return "QMP input member 'execute' must be a string"
        elif key == "arguments":
            if not isinstance(value, dict):
                return "QMP input member 'arguments' must be an object"
        elif key != "id":
            return f"QMP input member '{key}' is unexpected"
    if "execute" not in obj:
        return "QMP input lacks member 'execute'"
    return ""


def _unix_listener_alive(path: str) -> bool:
    """Whether a process accepts connections on the Unix socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError as e:
        return e.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    else:
        return True
    finally:
        probe.close()


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
