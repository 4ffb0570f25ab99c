"""The plugin API: pluggy hook specifications and the plugin manager.

Built-in devices and third-party plugins (entry-point group ``emu``) register through the
same hooks; see :mod:`emu.plugins.hookspecs` for the documented API.
"""

import pluggy

hookimpl = pluggy.HookimplMarker("emu")
hookspec = pluggy.HookspecMarker("emu")

__all__ = ["hookimpl", "hookspec"]
