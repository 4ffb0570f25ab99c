"""The plugin manager: built-in plugins plus the entry-point group ``emu``.

Set ``EMU_DISABLE_PLUGIN_AUTOLOAD=1`` to load only emu's built-in plugins (as pytest's
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``). A plugin that fails to import or returns something the
hook does not allow is reported as a :class:`~emu.errors.ConfigError` naming the plugin.
"""

from __future__ import annotations

import importlib.metadata
import os
from functools import cache

import pluggy

from emu.errors import ConfigError
from emu.plugins import hookspecs
from emu.plugins.devices import DeviceType

ENTRY_POINT_GROUP = "emu"
BUILTIN_PLUGINS = ("emu.devices.builtin", "emu.qmp.builtin", "emu.monitor.qmp")


class PluginManager:
    """emu's pluggy manager and the registries built from its hooks."""

    def __init__(self, autoload: bool | None = None) -> None:
        self.pm = pluggy.PluginManager("emu")
        self.pm.add_hookspecs(hookspecs)
        #: plugin name -> where it came from, shown by ``-device help``
        self.origins: dict[str, str] = {}
        for modname in BUILTIN_PLUGINS:
            module = importlib.import_module(modname)
            self.pm.register(module, name=modname)
            self.origins[modname] = "built-in"
        if autoload is None:
            autoload = not os.environ.get("EMU_DISABLE_PLUGIN_AUTOLOAD")
        if autoload:
            self._load_entry_points()
        self.device_types = self._collect_device_types()

    @property
    def hook(self) -> pluggy.HookRelay:
        """The hook relay (``manager.hook.emu_machine_reset(machine=m)``)."""
        return self.pm.hook

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding applications)."""
        self.pm.register(plugin, name=name)
        self.origins[self.plugin_name(plugin)] = "registered"
        self.device_types = self._collect_device_types()

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as e:  # any import failure of third-party code
                raise ConfigError(
                    f"plugin '{ep.name}' ({ep.value}) failed to load: {type(e).__name__}: {e}"
                ) from None
            self.pm.register(plugin, name=ep.name)
            dist = ep.dist
            where = f"{dist.name} {dist.version}" if dist is not None else ep.value
            self.origins[ep.name] = f"plugin {ep.name} from {where}"

    def plugin_name(self, plugin: object) -> str:
        """The name a plugin was registered under."""
        return self.pm.get_name(plugin) or repr(plugin)

    def _collect_device_types(self) -> dict[str, DeviceType]:
        types: dict[str, DeviceType] = {}
        impls = self.pm.hook.emu_device_types.get_hookimpls()
        for impl in impls:
            name = self.plugin_name(impl.plugin)
            try:
                result = impl.function()
            except Exception as e:
                raise ConfigError(f"plugin '{name}': emu_device_types failed: {e}") from None
            if not isinstance(result, list | tuple) or not all(
                isinstance(t, DeviceType) for t in result
            ):
                raise ConfigError(
                    f"plugin '{name}': emu_device_types must return a list of DeviceType")
            for t in result:
                if t.name in types:
                    raise ConfigError(
                        f"plugin '{name}': device type '{t.name}' already provided by "
                        f"'{types[t.name].source}'")
                t.source = self.origins.get(name, name)
                types[t.name] = t
        return types


@cache
def default_manager() -> PluginManager:
    """The process-wide manager used by the command line."""
    return PluginManager()
