"""The interrupt fabric: lines that carry a level from one device to another.

An :class:`IrqLine` is QEMU's ``qemu_irq`` (hw/core/irq.c): a device that drives an interrupt
holds a line and only sets its level; whatever the board connected to the other end (a PIC
input, the CPU's INTR pin, a fan-out to several inputs) receives the level through the line's
sink. The device never knows what is on the other end, so it can be tested with a line whose
sink is a list (rust-vmm vm-superio's ``Trigger``; OpenVMM's ``LineInterrupt``).

As in QEMU, :meth:`IrqLine.set_level` passes every call on, repeated levels included: an
edge-triggered receiver (the 8259) decides itself what an edge is.

Each device gathers its lines in a :class:`Gpios` set, QEMU's qdev GPIO lists
(``qdev_init_gpio_in`` / ``qdev_init_gpio_out``): inputs (lines whose sink is the device) and
outputs (lines the device drives), each under a name (``None`` for QEMU's unnamed list). The
board registers the sets under QEMU's QOM paths; the qtest server finds them there for
``irq_intercept_in`` / ``irq_intercept_out`` / ``set_irq_in``. An intercept is a tap on a
line: it sees every level after the sink has received it (QEMU's ``qtest_irq_handler`` also
forwards first, then reports).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Sink = Callable[[int], None]


class IrqLine:
    """One interrupt line: ``set_level`` delivers the level to the connected sink."""

    __slots__ = ("_sink", "_taps", "level", "name")

    def __init__(self, name: str = "", sink: Sink | None = None) -> None:
        self.name = name
        #: the last level set (0 until the first call)
        self.level = 0
        self._sink = sink
        self._taps: list[Sink] = []

    def connect(self, sink: Sink | None) -> None:
        """Send this line's levels to ``sink`` (``None``: nothing is connected)."""
        self._sink = sink

    def connect_to(self, other: IrqLine) -> None:
        """Wire this output to the input line ``other`` (``qdev_connect_gpio_out``)."""
        self._sink = other.set_level

    def tap(self, fn: Sink) -> None:
        """Also call ``fn(level)`` after the sink, for every level (a qtest intercept)."""
        self._taps.append(fn)

    def set_level(self, level: int) -> None:
        """QEMU's ``qemu_set_irq``."""
        self.level = level
        if self._sink is not None:
            self._sink(level)
        for fn in self._taps:
            fn(level)

    def raise_(self) -> None:
        """QEMU's ``qemu_irq_raise``."""
        self.set_level(1)

    def lower(self) -> None:
        """QEMU's ``qemu_irq_lower``."""
        self.set_level(0)

    def pulse(self) -> None:
        """QEMU's ``qemu_irq_pulse``: raise, then lower."""
        self.set_level(1)
        self.set_level(0)

    def __repr__(self) -> str:
        return f"IrqLine({self.name!r}, level={self.level})"


def fan_out(*sinks: Sink) -> Sink:
    """A sink that passes each level to all of ``sinks`` in order (QEMU's ``qemu_irq_split``)."""

    def deliver(level: int) -> None:
        for sink in sinks:
            sink(level)

    return deliver


def input_lines(prefix: str, count: int, handler: Callable[[int, int], None]) -> list[IrqLine]:
    """``count`` input lines whose sink calls ``handler(n, level)``
    (QEMU's ``qdev_init_gpio_in(dev, handler, count)``)."""

    def make(n: int) -> IrqLine:
        return IrqLine(f"{prefix}[{n}]", lambda level: handler(n, level))

    return [make(n) for n in range(count)]


@dataclass
class Gpios:
    """A device's GPIO lists: ``inputs[name]`` and ``outputs[name]`` (``None``: unnamed)."""

    type: str
    inputs: dict[str | None, list[IrqLine]] = field(default_factory=dict)
    outputs: dict[str | None, list[IrqLine]] = field(default_factory=dict)
