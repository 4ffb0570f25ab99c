"""``human-monitor-command`` (qapi/misc.json): an HMP command line run over QMP.

A built-in plugin: it contributes the command through the ``emu_qmp_commands`` hook, as any
plugin would. Arguments: ``command-line`` (string), ``cpu-index`` (int, optional; emu has
CPU 0). The reply is the text the monitor printed. ``quit`` takes effect after the reply,
as QMP ``quit`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emu.plugins import hookimpl
from emu.qmp.qapi import Member, args, command

if TYPE_CHECKING:
    from collections.abc import Callable

    from emu.machine import Machine
    from emu.qmp.server import QmpServer


@command("human-monitor-command",
         args=args("human-monitor-command", Member("command-line", "str"),
                   Member("cpu-index", "int", optional=True)),
         returns="str")
def qmp_human_monitor_command(server: QmpServer, args: dict[str, Any]) -> Any:
    """The arguments arrive checked against the signature above (emu/qmp/qapi.py)."""
    from emu.monitor.hmp import Hmp
    from emu.qmp.commands import QmpError

    line = args["command-line"]
    if args.get("cpu-index", 0) != 0:
        raise QmpError("Parameter 'cpu-index' expects a CPU number")

    def quit_after_reply() -> None:
        server.after_reply.append(lambda: server.machine.quit(0, reason="host-qmp-quit"))

    return Hmp(server, quit=quit_after_reply).execute(line)


@hookimpl
def emu_qmp_commands(machine: Machine) -> dict[str, Callable[..., object]]:
    return {qmp_human_monitor_command.name: qmp_human_monitor_command}
