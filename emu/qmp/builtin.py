"""emu's own QMP commands beyond emu/qmp/commands.py, contributed through the
``emu_qmp_commands`` hook as any plugin's are (registered in emu/plugins/manager.py).

docs/qmp.md lists every command emu answers and where it differs from QEMU 7.2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emu.plugins import hookimpl
from emu.qmp import actions, commands, fds, fdt_cmds, memory_cmds, qom, query, schema
from emu.qmp.qapi import CommandDef

if TYPE_CHECKING:
    from emu.machine import Machine

MODULES = (query, memory_cmds, fds, actions, fdt_cmds, qom, schema)


def command_defs() -> dict[str, CommandDef]:
    """Every command these modules declare, by name, and the commands of
    emu/qmp/commands.py with their signatures (emu/qmp/schema.py), so that their arguments
    are checked in QEMU's order and words before the command's own checks run."""
    defs = {c.name: c for module in MODULES for c in module.COMMANDS}
    for name, fn in commands.COMMANDS.items():
        if name not in defs and name in schema.CORE_SIGNATURES:
            arg_t, ret_t = schema.CORE_SIGNATURES[name]
            defs[name] = CommandDef(name, fn, arg_t, ret_t)
    return defs


@hookimpl
def emu_qmp_commands(machine: Machine) -> dict[str, CommandDef]:
    return command_defs()
