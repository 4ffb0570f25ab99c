"""Character backends for ``-serial``: where a UART's bytes go, and where its input comes from.

QEMU's spellings: ``stdio``, ``mon:stdio`` (stdio shared with the monitor through the
terminal multiplexer, emu.monitor.mux), ``file:PATH``, ``none`` (also ``null``). Output is
unbuffered and byte-exact: each byte the guest writes reaches the backend immediately and
unchanged. A device that can receive registers itself with :meth:`CharBackend.set_receiver`;
host input (keys typed on the terminal) reaches it once emu's terminal runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from emu.errors import ConfigError


class CharBackend:
    """Sink for a device's output bytes, source of its input bytes."""

    receiver: Callable[[bytes], None] | None = None

    def set_receiver(self, receiver: Callable[[bytes], None]) -> None:
        """The device's receive path: called with host input bytes (from another thread)."""
        self.receiver = receiver

    def deliver(self, data: bytes) -> None:
        """Hand host input to the device (dropped when the device cannot receive)."""
        if self.receiver is not None:
            self.receiver(data)

    def write(self, data: bytes) -> None:
        """Deliver ``data``; backends never raise on a broken sink."""

    def close(self) -> None:
        """Release the backend."""


class NullBackend(CharBackend):
    """``-serial none``: the port exists, its output goes nowhere."""


class FdBackend(CharBackend):
    """Writes straight to a file descriptor with ``os.write`` (no Python buffering)."""

    def __init__(self, fd: int, owned: bool) -> None:
        self.fd = fd
        self.owned = owned
        self.broken = False

    def write(self, data: bytes) -> None:
        if self.broken:
            return
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError:
            # A closed pipe or full disk must not take the guest down.
            self.broken = True

    def close(self) -> None:
        if self.owned:
            os.close(self.fd)


class StdioBackend(FdBackend):
    """``stdio`` / ``mon:stdio``: output on fd 1 (or through the terminal once it runs, which
    sets ``output``), input from the terminal (emu.monitor.mux)."""

    def __init__(self, mux: bool) -> None:
        super().__init__(1, owned=False)
        #: ``mon:stdio``: shared with the monitor, switched with Ctrl-A c
        self.mux = mux
        self.output: Callable[[bytes], None] | None = None

    def write(self, data: bytes) -> None:
        if self.output is not None:
            self.output(data)
        else:
            super().write(data)


def open_backend(spec: str, option: str = "-serial") -> CharBackend:
    """Open the backend named by ``spec`` (``stdio``, ``mon:stdio``, ``file:PATH``,
    ``none``, ``null``)."""
    if spec in ("stdio", "mon:stdio"):
        return StdioBackend(mux=spec == "mon:stdio")
    if spec in ("none", "null"):
        return NullBackend()
    if spec.startswith("file:"):
        path = spec[5:]
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as e:
            raise ConfigError(f"{option} {spec}: could not open '{path}': {e.strerror}") from None
        return FdBackend(fd, owned=True)
    raise ConfigError(f"{option} {spec}: unsupported backend (use stdio, file:PATH or none)")
