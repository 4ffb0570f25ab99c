"""pvpanic, ISA variant (QEMU hw/misc/pvpanic.c, pvpanic-isa.c; docs/specs/pvpanic.rst).

One I/O port (0x505 by default). Reading it returns the events the device supports
(PANICKED | CRASH_LOADED = 3). Writing bit 0 reports a guest panic, bit 1 that a crash kernel
was loaded; the machine decides what happens (``-action panic=...``).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.bus import Region
from emu.trace import trace

PVPANIC_PANICKED = 1
PVPANIC_CRASH_LOADED = 2
PVPANIC_EVENTS = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED


class PvPanic:
    """The device: a 1-byte port."""

    def __init__(self, on_panic: Callable[[], None], on_crash_loaded: Callable[[], None],
                 port: int = 0x505) -> None:
        self.region = Region("pvpanic", 1, self)
        self.port = port  # for the board's ACPI description
        self.on_panic = on_panic
        self.on_crash_loaded = on_crash_loaded

    def read(self, offset: int, size: int) -> int:
        return PVPANIC_EVENTS

    def write(self, offset: int, size: int, value: int) -> None:
        trace("pvpanic_write", value=value)
        if value & PVPANIC_PANICKED:
            self.on_panic()
        elif value & PVPANIC_CRASH_LOADED:
            self.on_crash_loaded()
