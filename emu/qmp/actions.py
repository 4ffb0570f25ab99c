"""``set-action`` and ``system_powerdown`` (QEMU 7.2 qapi/run-state.json,
softmmu/runstate-action.c, softmmu/runstate.c).

``set-action`` changes at run time what ``-no-reboot`` and ``-action panic=`` set on the
command line, in the machine's configuration, where the machine reads them at each event:

- ``reboot``: ``reset`` (default) or ``shutdown`` (``-no-reboot``: a guest reset ends emu);
- ``panic``: ``shutdown`` (default), ``pause``, ``exit-failure`` or ``none``, acted on when
  the guest reports a panic through ``-device pvpanic``;
- ``shutdown``: ``poweroff`` (default) or ``pause`` (``-no-shutdown``). emu records it in
  the configuration as ``-no-shutdown`` does, but does not act on it yet: a guest power-off
  ends emu whatever this says;
- ``watchdog``: recorded and accepted as QEMU does; emu has no watchdog device to apply it.

As QEMU, the only errors are those of the arguments (an unknown value names the parameter).

``inject-nmi`` sends the machine an NMI, as QEMU's x86_nmi on pc; virt has none.

``system_powerdown`` asks the guest to power down: QEMU sends the ``POWERDOWN`` event and
presses the ACPI power button (or the virt GPIO power key). emu sends the event; it has no
ACPI and no GPIO controller, so the guest sees nothing and keeps running.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from emu.qmp.commands import QmpError, _on_machine
from emu.qmp.qapi import Enum, Member, args, command
from emu.qmp.query import monitor_servers

if TYPE_CHECKING:
    from emu.machine import Machine
    from emu.qmp.server import QmpServer

REBOOT_ACTION = Enum("RebootAction", ("reset", "shutdown"))
SHUTDOWN_ACTION = Enum("ShutdownAction", ("poweroff", "pause"))
PANIC_ACTION = Enum("PanicAction", ("pause", "shutdown", "exit-failure", "none"))
WATCHDOG_ACTION = Enum("WatchdogAction", ("reset", "shutdown", "poweroff", "pause", "debug",
                                          "none", "inject-nmi"))

#: the watchdog action set per machine (emu has no watchdog device that would read it)
watchdog_actions: weakref.WeakKeyDictionary[Machine, str] = weakref.WeakKeyDictionary()


@command("set-action", args("set-action", Member("reboot", REBOOT_ACTION, True),
                            Member("shutdown", SHUTDOWN_ACTION, True),
                            Member("panic", PANIC_ACTION, True),
                            Member("watchdog", WATCHDOG_ACTION, True)))
def set_action(server: QmpServer, a: dict[str, Any]) -> None:
    m = server.machine
    if "reboot" in a:
        m.config.no_reboot = a["reboot"] == "shutdown"
    if "panic" in a:
        m.config.panic_action = a["panic"]
    if "watchdog" in a:
        watchdog_actions[m] = a["watchdog"]
    if "shutdown" in a:
        m.config.no_shutdown = a["shutdown"] == "pause"


@command("system_powerdown")
def system_powerdown(server: QmpServer, a: dict[str, Any]) -> None:
    """The event follows the reply, as QEMU's main loop sends it after the command."""

    def send() -> None:
        for s in monitor_servers(server.machine):
            s.event("POWERDOWN")

    server.after_reply.append(send)


@command("inject-nmi")
def inject_nmi(server: QmpServer, a: dict[str, Any]) -> None:
    """QEMU's qmp_inject_nmi (hw/core/nmi.c): the machine's NMI handler, which on pc is
    x86_nmi (every CPU gets an NMI through its local APIC's LINT1, or straight to the CPU
    without an APIC); a machine without one (virt) gets QEMU's error."""
    inject = getattr(server.machine.board, "inject_nmi", None)
    if inject is None:
        raise QmpError("this feature or command is not currently supported")
    _on_machine(server, inject)


COMMANDS = [set_action, system_powerdown, inject_nmi]
