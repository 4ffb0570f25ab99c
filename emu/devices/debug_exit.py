"""isa-debug-exit (QEMU hw/misc/debugexit.c): a guest write ends the emulator.

A write of ``value`` of any size exits with status ``(value << 1) | 1``, so a guest can
report a result and never be mistaken for a clean exit 0. Reads return 0.
"""

from __future__ import annotations

from collections.abc import Callable

from emu.bus import Region
from emu.trace import trace


class DebugExit:
    """The device: one I/O region of ``iosize`` bytes."""

    def __init__(self, iosize: int, on_exit: Callable[[int], None]) -> None:
        self.region = Region("isa-debug-exit", iosize, self)
        self.on_exit = on_exit

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        status = (value << 1) | 1
        trace("debug_exit_write", value=value, status=status)
        self.on_exit(status)
