"""emu's built-in ``-device`` types, registered through the same hook as any plugin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emu.devices.debug_exit import DebugExit
from emu.devices.pvpanic import PvPanic
from emu.errors import ConfigError
from emu.plugins import hookimpl
from emu.plugins.devices import DeviceType, Property, parse_uint

if TYPE_CHECKING:
    from emu.machine import Machine


def _create_debug_exit(machine: Machine, props: Mapping[str, Any]) -> DebugExit:
    iobase, iosize = props["iobase"], props["iosize"]
    if not 1 <= iosize <= 0x10000 or iobase + iosize > 0x10000:
        raise ConfigError(f"-device isa-debug-exit: ports 0x{iobase:x}+0x{iosize:x} out of range")

    def exit_at_once(status: int) -> None:
        machine.exit_at_once = True  # QEMU's exit(): no gdb_exit, no W packet
        machine.request_exit(status)

    dev = DebugExit(iosize, exit_at_once)
    machine.map_port(iobase, dev.region)
    return dev


def _create_pvpanic(machine: Machine, props: Mapping[str, Any]) -> PvPanic:
    if any(isinstance(d, PvPanic) for d in machine.devices):
        raise ConfigError("-device pvpanic: at most one pvpanic device is permitted")
    dev = PvPanic(machine.guest_panicked,
                  lambda: machine.emit("GUEST_CRASHLOADED", {"action": "run"}), props["ioport"])
    machine.map_port(props["ioport"], dev.region)
    return dev


@hookimpl
def emu_device_types() -> list[DeviceType]:
    return [
        DeviceType(
            name="pvpanic",
            description="ISA pvpanic: the guest reports a panic by writing 1 to its port",
            create=_create_pvpanic,
            properties={"ioport": Property(parse_uint, 0x505, "I/O port")},
            machines=("pc",),
        ),
        DeviceType(
            name="isa-debug-exit",
            description="ISA debug exit: a guest write of V exits emu with status (V << 1) | 1",
            create=_create_debug_exit,
            properties={
                "iobase": Property(parse_uint, 0x501, "I/O port base"),
                "iosize": Property(parse_uint, 0x02, "number of ports"),
            },
            machines=("pc",),
        ),
    ]
