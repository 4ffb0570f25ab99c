"""Port 0x61, the PC speaker / system control port B (QEMU 7.2 hw/audio/pcspk.c).

Write: bit 0 is the PIT's counter 2 gate, bit 1 enables the speaker data (kept; emu has no
audio). Read: bit 0 the counter 2 gate, bit 1 the speaker data enable, bit 4 a "refresh"
bit that toggles on every read (QEMU's ``dummy_refresh_clock``: old BIOSes and Linux's
``io_delay`` loops wait for it to change), bit 5 counter 2's output. Linux calibrates the TSC
by gating counter 2 on and polling bit 5 (arch/x86/kernel/tsc.c ``pit_calibrate_tsc``).

QEMU gives this device no reset handler: the bits survive a machine reset.

Trace events (emu's own; QEMU 7.2 has none here): ``pcspk_io_read``, ``pcspk_io_write``.
"""

from __future__ import annotations

from emu import trace as tracing
from emu.devices.byteio import byte_region
from emu.devices.i8254 import Pit
from emu.trace import trace

PCSPK_PORT = 0x61


class PcSpeaker:
    """``isa-pcspk``: one port next to the PIT whose counter 2 it gates."""

    def __init__(self, pit: Pit) -> None:
        self.pit = pit
        self.data_on = 0
        self.dummy_refresh_clock = 0
        self.region = byte_region("pcspk", 1, self.io_read, self.io_write)

    def io_read(self, _offset: int) -> int:
        gate, _mode, _count, out = self.pit.channel_info(2)
        self.dummy_refresh_clock ^= 1 << 4
        ret = gate | (self.data_on << 1) | self.dummy_refresh_clock | (out << 5)
        if tracing.ON:
            trace("pcspk_io_read", val=ret)
        return ret

    def io_write(self, _offset: int, val: int) -> None:
        if tracing.ON:
            trace("pcspk_io_write", val=val)
        self.data_on = (val >> 1) & 1
        self.pit.set_gate(2, val & 1)
