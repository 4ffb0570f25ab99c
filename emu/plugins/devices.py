"""Device types for ``-device``: what a plugin contributes through ``emu_device_types``.

QEMU's option syntax ``-device NAME,prop=value,...``: properties are parsed by the type's
declared parsers, unknown properties and bad values are configuration errors in QEMU's words
(``Property 'isa-debug-exit.foo' not found``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emu.errors import ConfigError

if TYPE_CHECKING:
    from emu.machine import Machine


def parse_uint(text: str) -> int:
    """QEMU's integer property syntax: decimal, 0x-hex or 0-octal."""
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError("an integer") from None
    if value < 0:
        raise ValueError("a non-negative integer")
    return value


def parse_bool(text: str) -> bool:
    """QEMU's boolean property syntax."""
    if text in ("on", "yes", "true", "y"):
        return True
    if text in ("off", "no", "false", "n"):
        return False
    raise ValueError("'on' or 'off'")


@dataclass(frozen=True)
class Property:
    """One ``-device`` property: how to parse it and its default."""

    parse: Callable[[str], Any]
    default: Any
    help: str = ""


@dataclass
class DeviceType:
    """A device that ``-device`` can create.

    ``create(machine, props)`` builds the device on ``machine`` (mapping its regions, adding
    fw_cfg files...) and returns it; ``props`` holds every declared property, parsed, with
    defaults filled in. ``machines`` restricts the boards it plugs into (None: any).
    """

    name: str
    description: str
    create: Callable[[Machine, Mapping[str, Any]], object]
    properties: Mapping[str, Property] = field(default_factory=dict)
    machines: tuple[str, ...] | None = None
    #: filled in by the plugin manager: the plugin that contributed this type
    source: str = ""

    def help_text(self) -> str:
        """``-device NAME,help``: the properties emu honours, in QEMU's format
        (softmmu/qdev-monitor.c qdev_device_help, qom/object_interfaces.c
        object_property_help): ``  name=<type>``, padded to 24 columns, `` - `` the description
        and `` (default: JSON)``; "There are no options for NAME." when there are none."""
        if not self.properties:
            return f"There are no options for {self.name}."
        lines = [f"{self.name} options:"]
        for key, prop in sorted(self.properties.items()):
            line = f"  {key}=<{prop.parse.__name__.removeprefix('parse_')}>"
            default = json.dumps(prop.default, default=str)
            lines.append(f"{line:<24s} - {prop.help} (default: {default})")
        return "\n".join(lines)

    def parse(self, spec: str, text: Mapping[str, str]) -> dict[str, Any]:
        """Parse ``text`` (prop -> raw string) into typed values, with defaults."""
        values = {k: p.default for k, p in self.properties.items()}
        for key, raw in text.items():
            prop = self.properties.get(key)
            if prop is None:
                raise ConfigError(f"-device {spec}: Property '{self.name}.{key}' not found")
            try:
                values[key] = prop.parse(raw)
            except ValueError as e:
                raise ConfigError(
                    f"-device {spec}: Property '{self.name}.{key}' expects {e}") from None
        return values


#: QEMU's id_wellformed (util/id.c): a letter, then letters, digits, '-', '.', '_'
_DEVICE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*\Z")


def take_device_id(spec: str, props: dict[str, str]) -> str | None:
    """Remove and check the ``id`` property, which every QEMU device has (it names the device
    for the monitor; softmmu/qdev-monitor.c qdev_device_add). Not a property of the type."""
    dev_id = props.pop("id", None)
    if dev_id is not None and not _DEVICE_ID.match(dev_id):
        raise ConfigError(f"-device {spec}: Parameter 'id' expects an identifier (letters, "
                          "digits, '-', '.', '_', starting with a letter)")
    return dev_id


def split_device_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``NAME,k=v,k=v`` (QEMU keyval syntax, ``,,`` escapes a comma)."""
    parts: list[str] = []
    cur = ""
    i = 0
    while i < len(spec):
        c = spec[i]
        if c == "," and spec[i + 1 : i + 2] == ",":
            cur += ","
            i += 2
            continue
        if c == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    parts.append(cur)
    name, props = parts[0], {}
    if "=" in name:  # no implied type name: every part is key=value (driver=NAME,...)
        name, parts = "", ["", *parts]
    for item in parts[1:]:
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq:
            value = "on"
        if key == "driver":
            name = value
            continue
        props[key] = value
    return name, props
