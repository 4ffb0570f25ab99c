"""File descriptors passed to the monitor (QEMU 7.2 qapi/misc.json; monitor/misc.c
qmp_getfd, qmp_closefd, qmp_add_fd, qmp_remove_fd, qmp_query_fdsets; chardev/char-socket.c
tcp_chr_recv / tcp_get_msgfds).

A client passes descriptors with ``SCM_RIGHTS`` on the Unix socket (qemu.qmp's
``send_fd_scm``). The server keeps those of the last message that carried any (a new message
with descriptors closes the ones not taken); a command takes the first and the others are
closed, as QEMU's socket chardev does.

- ``getfd``/``closefd`` name a descriptor. Names belong to the monitor (each ``-qmp``),
  and outlive a client's connection. :meth:`FdStore.take` hands a named descriptor over, as
  QEMU's ``monitor_get_fd`` does for the ``fd:NAME`` protocols.
- ``add-fd``/``remove-fd``/``query-fdsets`` manage fd sets, which are global (shared by
  all monitors) and numbered from 0. A removed descriptor is closed only while the guest
  runs; once no client is connected and the guest runs, every fd set is emptied (QEMU's
  ``monitor_fdset_cleanup``: nothing in emu holds a duplicate of a set's descriptors).
"""

from __future__ import annotations

import array
import contextlib
import os
import socket
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emu.qmp.commands import QmpError
from emu.qmp.qapi import Array, Member, Struct, args, command

if TYPE_CHECKING:
    from emu.machine import Machine
    from emu.qmp.server import QmpServer

#: descriptors one message may carry (QEMU's TCP_MAX_FDS)
MAX_FDS = 16
NO_FD = "No file descriptor supplied via SCM_RIGHTS"


def recv_with_fds(conn: socket.socket, size: int) -> tuple[bytes, list[int]]:
    """``recv`` that also returns the descriptors an ``SCM_RIGHTS`` message carried
    (close-on-exec, as QEMU receives them)."""
    if conn.family != socket.AF_UNIX:
        return conn.recv(size), []
    data, ancdata, _flags, _addr = conn.recvmsg(
        size, socket.CMSG_SPACE(MAX_FDS * array.array("i").itemsize), socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            ints = array.array("i")
            ints.frombytes(payload[: len(payload) - len(payload) % ints.itemsize])
            fds.extend(ints)
    return data, fds


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


@dataclass
class FdSetFd:
    fd: int
    opaque: str | None
    removed: bool = False


@dataclass
class FdSet:
    id: int
    #: newest first, as QEMU's list (QLIST_INSERT_HEAD)
    fds: list[FdSetFd] = field(default_factory=list)


class FdSets:
    """The fd sets of one machine (QEMU's global ``mon_fdsets``), ordered by id."""

    def __init__(self) -> None:
        self.sets: list[FdSet] = []
        self.lock = threading.Lock()

    def add(self, fd: int, fdset_id: int | None, opaque: str | None) -> dict[str, int]:
        with self.lock:
            found = next((s for s in self.sets if s.id == fdset_id), None)
            if found is None:
                if fdset_id is None:  # the first free id
                    fdset_id = 0
                    for s in self.sets:
                        if s.id != fdset_id:
                            break
                        fdset_id += 1
                elif fdset_id < 0:
                    raise QmpError("Parameter 'fdset-id' expects a non-negative value")
                found = FdSet(fdset_id)
                self.sets.append(found)
                self.sets.sort(key=lambda s: s.id)
            found.fds.insert(0, FdSetFd(fd, opaque))
            return {"fdset-id": found.id, "fd": fd}

    def remove(self, fdset_id: int, fd: int | None, running: bool) -> None:
        with self.lock:
            for s in self.sets:
                if s.id != fdset_id:
                    continue
                if fd is None:
                    for entry in s.fds:
                        entry.removed = True
                else:
                    entry = next((e for e in s.fds if e.fd == fd), None)
                    if entry is None:
                        break
                    entry.removed = True
                self._cleanup(s, running, monitors=1)
                return
        what = f"fdset-id:{fdset_id}" + ("" if fd is None else f", fd:{fd}")
        raise QmpError(f"File descriptor named '{what}' not found")

    def _cleanup(self, s: FdSet, running: bool, monitors: int) -> None:
        """QEMU's monitor_fdset_cleanup (with no duplicates of a set's descriptors)."""
        for entry in list(s.fds):
            if (entry.removed or monitors == 0) and running:
                _close(entry.fd)
                s.fds.remove(entry)
        if not s.fds:
            self.sets.remove(s)

    def cleanup_all(self, running: bool, monitors: int) -> None:
        with self.lock:
            for s in list(self.sets):
                self._cleanup(s, running, monitors)

    def query(self) -> list[dict[str, Any]]:
        """As QEMU builds the list (each level prepended): sets by decreasing id, each
        set's descriptors oldest first."""
        with self.lock:
            result = []
            for s in reversed(self.sets):
                fds = []
                for e in reversed(s.fds):
                    fds.append({"fd": e.fd} if e.opaque is None else
                               {"fd": e.fd, "opaque": e.opaque})
                result.append({"fdset-id": s.id, "fds": fds})
            return result


_fdsets: weakref.WeakKeyDictionary[Machine, FdSets] = weakref.WeakKeyDictionary()
_fdsets_lock = threading.Lock()


def fdsets(machine: Machine) -> FdSets:
    """The fd sets of ``machine``."""
    with _fdsets_lock:
        sets = _fdsets.get(machine)
        if sets is None:
            sets = _fdsets[machine] = FdSets()
        return sets


class FdStore:
    """One monitor's descriptors: those just received, and those named with ``getfd``."""

    def __init__(self) -> None:
        self._pending: list[int] = []
        self.named: dict[str, int] = {}
        self._lock = threading.Lock()

    def received(self, fds: list[int]) -> None:
        """Descriptors arrived with a message: they replace (and close) those not taken."""
        if not fds:
            return
        with self._lock:
            old, self._pending = self._pending, list(fds)
        for fd in old:
            _close(fd)

    def take_received(self) -> int | None:
        """The first descriptor received and not yet taken (the others are closed)."""
        with self._lock:
            fds, self._pending = self._pending, []
        for fd in fds[1:]:
            _close(fd)
        return fds[0] if fds else None

    def drop_received(self) -> None:
        """The connection ended: close what no command took."""
        with self._lock:
            fds, self._pending = self._pending, []
        for fd in fds:
            _close(fd)

    def take(self, name: str) -> int | None:
        """Hand over the descriptor named ``name`` (the caller closes it), or None."""
        with self._lock:
            return self.named.pop(name, None)

    def set_name(self, name: str, fd: int) -> None:
        with self._lock:
            old = self.named.get(name)
            self.named[name] = fd
        if old is not None:
            _close(old)


def store(server: QmpServer) -> FdStore:
    """The monitor's descriptor store (``server.fds``)."""
    return server.fds


@command("getfd", args("getfd", Member("fdname", "str")))
def getfd(server: QmpServer, a: dict[str, Any]) -> None:
    fds = store(server)
    fd = fds.take_received()
    if fd is None:
        raise QmpError(NO_FD)
    name = a["fdname"]
    if name[:1].isdigit():
        _close(fd)
        raise QmpError("Parameter 'fdname' expects a name not starting with a digit")
    fds.set_name(name, fd)


@command("closefd", args("closefd", Member("fdname", "str")))
def closefd(server: QmpServer, a: dict[str, Any]) -> None:
    fd = store(server).take(a["fdname"])
    if fd is None:
        raise QmpError(f"File descriptor named '{a['fdname']}' not found")
    _close(fd)


ADDFD_INFO = Struct("AddfdInfo", (Member("fdset-id", "int"), Member("fd", "int")))
FDSET_INFO = Struct("FdsetInfo", (
    Member("fdset-id", "int"),
    Member("fds", Array(Struct("FdsetFdInfo", (Member("fd", "int"),
                                               Member("opaque", "str", True))))),
))


@command("add-fd", args("add-fd", Member("fdset-id", "int", True), Member("opaque", "str", True)),
         returns=ADDFD_INFO)
def add_fd(server: QmpServer, a: dict[str, Any]) -> Any:
    fd = store(server).take_received()
    if fd is None:
        raise QmpError(NO_FD)
    try:
        return fdsets(server.machine).add(fd, a.get("fdset-id"), a.get("opaque"))
    except QmpError:
        _close(fd)
        raise


@command("remove-fd", args("remove-fd", Member("fdset-id", "int"), Member("fd", "int", True)))
def remove_fd(server: QmpServer, a: dict[str, Any]) -> None:
    fdsets(server.machine).remove(a["fdset-id"], a.get("fd"),
                                  running=server.machine.state == "running")


@command("query-fdsets", returns=Array(FDSET_INFO))
def query_fdsets(server: QmpServer, a: dict[str, Any]) -> Any:
    return fdsets(server.machine).query()


def client_left(server: QmpServer) -> None:
    """A client disconnected: close the descriptors it sent that no command took, and let
    the fd sets go if no monitor has a client any more (QEMU: ``mon_refcount == 0``)."""
    from emu.qmp.query import monitor_servers

    server.fds.drop_received()
    connected = sum(s._client is not None for s in monitor_servers(server.machine))
    fdsets(server.machine).cleanup_all(server.machine.state == "running", connected)


COMMANDS = [getfd, closefd, add_fd, remove_fd, query_fdsets]
