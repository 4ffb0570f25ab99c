"""Character backends for ``-serial``: where a UART's bytes go.

QEMU's spellings: ``stdio``, ``file:PATH``, ``none`` (also ``null``). Output is unbuffered and
byte-exact: each byte the guest writes reaches the backend immediately and unchanged.
"""

from __future__ import annotations

import os

from emu.errors import ConfigError


class CharBackend:
    """Sink for a device's output bytes."""

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


def open_backend(spec: str, option: str = "-serial") -> CharBackend:
    """Open the backend named by ``spec`` (``stdio``, ``file:PATH``, ``none``, ``null``)."""
    if spec == "stdio":
        return FdBackend(1, owned=False)
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
