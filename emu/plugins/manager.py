"""The plugin manager: built-in plugins plus the entry-point group ``emu``.

Set ``EMU_DISABLE_PLUGIN_AUTOLOAD=1`` to load only emu's built-in plugins (as pytest's
``PYTEST_DISABLE_PLUGIN_AUTOLOAD``). A plugin that fails to import or returns something the
hook does not allow is reported as a :class:`~emu.errors.ConfigError` naming the plugin.

The entry points are found as ``importlib.metadata.entry_points(group="emu")`` finds them,
but read straight from the ``entry_points.txt`` of each ``*.dist-info`` / ``*.egg-info``
directory on ``sys.path`` (:func:`entry_points`): importing ``importlib.metadata`` (email,
zipfile, csv, ...) cost about a tenth of emu's start-up. Where ``sys.path`` holds something
only importlib.metadata searches (a zip file, a meta-path finder that provides
distributions), importlib.metadata is used.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from functools import cache, reduce
from importlib.machinery import PathFinder

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
        for ep in entry_points(ENTRY_POINT_GROUP):
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as e:  # any import failure of third-party code
                raise ConfigError(
                    f"plugin '{ep.name}' ({ep.value}) failed to load: {type(e).__name__}: {e}"
                ) from None
            self.pm.register(plugin, name=ep.name)
            where = f"{ep.dist_name} {ep.dist_version}" if ep.dist_name is not None \
                else ep.value
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


@dataclass(frozen=True)
class EntryPoint:
    """What emu uses of an ``importlib.metadata.EntryPoint``: its name, its value
    (``module:attr``), and its distribution's name and version (None when unknown)."""

    name: str
    value: str
    dist_name: str | None
    dist_version: str | None

    def load(self) -> object:
        """Import the module and get the attribute (``EntryPoint.load``)."""
        match = _EP_VALUE.match(self.value)
        if match is None:
            raise ValueError(f"{self.value!r} is not a valid entry point value")
        module = importlib.import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return reduce(getattr, attrs, module)


#: importlib.metadata.EntryPoint.pattern
_EP_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group``: ``importlib.metadata.entry_points(group=group)``.

    Without importlib.metadata when every ``sys.path`` entry is a directory (or missing) and
    no meta-path finder but the standard one provides distributions: then, as
    importlib.metadata does, each directory's ``*.dist-info`` and ``*.egg-info``
    directories are distributions, the first of each (normalized) name along ``sys.path``
    counts, and its ``entry_points.txt`` is an INI text of ``name = value`` lines.
    """
    if any(f is not PathFinder for f in sys.meta_path if hasattr(f, "find_distributions")) \
            or any(p.endswith(".egg") or os.path.isfile(p) for p in sys.path if p):
        return _metadata_entry_points(group)
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path:
        try:
            with os.scandir(entry or ".") as it:
                names = [e.name for e in it if e.name.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
        for name in names:
            stem = name.rpartition(".")[0]
            key = re.sub(r"[-_.]+", "_", stem.partition("-")[0]).lower()
            path = os.path.join(entry or ".", name)
            if key in seen:
                continue
            seen.add(key)
            try:
                with open(os.path.join(path, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            pairs = _section(text, group)
            if pairs:
                dist_name, version = _dist_name_version(path)
                found += [EntryPoint(n, v, dist_name, version) for n, v in pairs]
    return found


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` pairs of section ``[group]`` (importlib.metadata's Sectioned:
    stripped lines, ``#`` comments and blank lines skipped)."""
    pairs = []
    section = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
        elif section == group:
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


def _dist_name_version(path: str) -> tuple[str | None, str | None]:
    """``Name`` and ``Version`` from the headers of the distribution's METADATA (or, for an
    egg-info, PKG-INFO) file, as ``Distribution.name`` and ``.version`` read them."""
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(path, filename), encoding="utf-8") as f:
                head = f.read().split("\n\n", 1)[0]
        except OSError:
            continue
        fields: dict[str, str] = {}
        for line in head.splitlines():
            key, sep, value = line.partition(":")
            if sep and key in ("Name", "Version") and key not in fields:
                fields[key] = value.strip()
        return fields.get("Name"), fields.get("Version")
    return None, None


def _metadata_entry_points(group: str) -> list[EntryPoint]:
    import importlib.metadata

    found = []
    for ep in importlib.metadata.entry_points(group=group):
        dist = ep.dist
        found.append(EntryPoint(ep.name, ep.value, dist.name if dist is not None else None,
                                dist.version if dist is not None else None))
    return found


@cache
def default_manager() -> PluginManager:
    """The process-wide manager used by the command line."""
    return PluginManager()
