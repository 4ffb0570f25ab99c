"""Hook specifications: the whole plugin API of emu.

A plugin is a module or object with functions decorated by :data:`emu.plugins.hookimpl` and
named after the hooks below. It is found through the entry-point group ``emu`` (in its
``pyproject.toml``: ``[project.entry-points.emu] name = "package.module"``), unless the
environment variable ``EMU_DISABLE_PLUGIN_AUTOLOAD`` is set. emu's own devices are registered
as plugins through the same hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from emu.plugins import hookspec

if TYPE_CHECKING:
    from emu.devices.fw_cfg import FwCfg
    from emu.dump import DumpNotes
    from emu.machine import Machine
    from emu.plugins.devices import DeviceType


@hookspec
def emu_device_types() -> list[DeviceType]:
    """Contribute device types for ``-device NAME,key=value,...``.

    Called once, when the plugin manager is built. Return a list of
    :class:`emu.plugins.devices.DeviceType`; each name must be unique across all plugins.
    ``emu -device help`` lists them with the plugin that contributed each.
    """


@hookspec
def emu_fw_cfg_setup(machine: Machine, fw_cfg: FwCfg) -> None:
    """Called once while the machine is built, after the board filled its fw_cfg device and
    before ``-device`` options are processed. Add items with ``fw_cfg.add_file(name, data,
    writable=..., on_write=..., on_select=...)`` or ``fw_cfg.add_bytes(key, ...)``;
    ``on_write(offset, length)`` runs after each DMA write into a writable item, as QEMU's
    ``fw_cfg_add_file_callback`` does. Return value ignored."""


@hookspec
def emu_dump_notes(machine: Machine) -> DumpNotes | None:
    """Called for every dump, on the machine's thread with the CPU stopped. Return a
    :class:`emu.dump.DumpNotes` with ELF notes to append after the CPU notes (exactly as
    they should appear in the file), an optional phys_base for the dump's metadata, and
    warnings to show (for example why the guest's note could not be used), or None."""


@hookspec
def emu_qmp_commands(machine: Machine) -> dict[str, Callable[..., object]] | None:
    """Called when a QMP client asks for the command table. Return a dict of command name
    to ``fn(server, arguments) -> result``; raise :class:`emu.qmp.commands.QmpError` for an
    error object. Commands run on the QMP thread: touch the machine only through
    ``machine.call_soon``."""


@hookspec
def emu_machine_created(machine: Machine) -> None:
    """Called once after the board, its built-in devices and every ``-device`` exist, before
    the first reset. A plugin may check the configuration here and raise
    :class:`emu.errors.ConfigError` to refuse it (the message is shown as one line)."""


@hookspec
def emu_machine_reset(machine: Machine) -> None:
    """Called on every machine reset (power-on included), after the built-in devices were reset
    and before the CPU runs. Return value ignored."""
