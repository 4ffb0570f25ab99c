"""What the monitor has to say to one client, written by a thread of its own.

Replies and events are queued in order and written by the outbox's thread, so that a client
that stops reading blocks neither the monitor's other work nor the machine (events come from
the machine's thread). Output the client leaves unread beyond ``MAX_PENDING`` bytes ends the
connection: the monitor is then free for the next client.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import sys
import threading
import time

MAX_PENDING = 128 << 20


class Outbox:
    """Queued output for the client on ``conn``."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self._items: collections.deque[bytes] = collections.deque()
        self._pending = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="emu-qmp-out", daemon=True)
        self._thread.start()

    def put(self, data: bytes) -> None:
        """Queue ``data`` (thread-safe, never blocks)."""
        with self._cond:
            if self._closed:
                return
            if self._pending + len(data) > MAX_PENDING:
                print(f"emu: QMP: client disconnected: it left {self._pending >> 20} MiB of "
                      "replies and events unread", file=sys.stderr, flush=True)
                self._abandon()
                return
            self._items.append(data)
            self._pending += len(data)
            self._cond.notify_all()

    def drain(self, timeout: float) -> None:
        """Wait until everything queued is written (or the connection failed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    def close(self) -> None:
        """Stop writing; what is still queued is dropped."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._pending = 0
            self._cond.notify_all()
        self._thread.join(5)

    def _abandon(self) -> None:
        """With the lock held: drop the client (its reads and our writes end at once)."""
        self._closed = True
        self._items.clear()
        self._pending = 0
        self._cond.notify_all()
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                data = self._items[0]
            try:
                self.conn.sendall(data)
            except OSError:
                with self._cond:
                    self._abandon()
                return
            with self._cond:
                if self._items and self._items[0] is data:
                    self._items.popleft()
                    self._pending -= len(data)
                self._cond.notify_all()
