"""emu's own QMP commands beyond emu/qmp/commands.py, contributed through the
``emu_qmp_commands`` hook as any plugin's are (registered in emu/plugins/manager.py).

docs/qmp.md lists every command emu answers and where it differs from QEMU 7.2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu.plugins import hookimpl
from emu.qmp import actions, fds, fdt_cmds, memory_cmds, qom, query, schema
from emu.qmp.qapi import CommandDef

if TYPE_CHECKING:
    from emu.machine import Machine

MODULES = (query, memory_cmds, fds, actions, fdt_cmds, qom, schema)


def command_defs() -> dict[str, CommandDef]:
    """Every command these modules declare, by name."""
    return {c.name: c for module in MODULES for c in module.COMMANDS}


@hookimpl
def emu_qmp_commands(machine: Machine) -> dict[str, CommandDef]:
    return command_defs()
