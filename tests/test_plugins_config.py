"""-m sizes, the pc RAM split, -device option parsing and the plugin manager."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from emu.boards.pc import pc_ram_split
from emu.config import parse_ram_size
from emu.errors import ConfigError
from emu.plugins import hookimpl, manager
from emu.plugins.devices import (
    DeviceType,
    Property,
    parse_bool,
    parse_uint,
    split_device_spec,
)
from emu.plugins.manager import PluginManager

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


# --------------------------------------------------------------------------- -m


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512", 512 * MiB),  # a plain number is MiB
        ("128", 128 * MiB),
        ("128M", 128 * MiB),
        ("128m", 128 * MiB),
        ("2048K", 2 * MiB),
        ("2048k", 2 * MiB),
        ("1G", GiB),
        ("4g", 4 * GiB),
        ("1T", TiB),
        ("1.5G", 3 * GiB // 2),
        ("size=256M", 256 * MiB),
        ("1G,slots=2,maxmem=4G", GiB),
        ("0x10", 16 * MiB),  # qemu_strtosz accepts hex, still in MiB
        ("2097152B", 2 * MiB),  # B is bytes
    ],
)
def test_ram_size_syntax(text, size):
    assert parse_ram_size(text) == size


@pytest.mark.parametrize("text", ["128MB", "12Q", "", "1 G", "-5"])
def test_ram_size_rejects_what_qemu_rejects(text):
    with pytest.raises(ConfigError, match="invalid RAM size"):
        parse_ram_size(text)


def test_ram_size_in_bytes_can_be_too_small():
    with pytest.raises(ConfigError, match="too small"):
        parse_ram_size("512B")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1025K", 1032 * KiB),  # rounded up to a multiple of 8 KiB
        ("1028K", 1032 * KiB),
        ("1032K", 1032 * KiB),
        ("1033K", 1040 * KiB),
    ],
)
def test_ram_size_rounded_up_to_8k(text, size):
    assert parse_ram_size(text) == size
    assert parse_ram_size(text) % (8 * KiB) == 0


@pytest.mark.parametrize("text", ["", "abc", "12Q", "-1", "1G2", "M"])
def test_ram_size_invalid(text):
    with pytest.raises(ConfigError):
        parse_ram_size(text)


# --------------------------------------------------------------------------- pc RAM split


@pytest.mark.parametrize(
    ("ram", "below", "above"),
    [
        (128 * MiB, 128 * MiB, 0),
        (3 * GiB, 3 * GiB, 0),
        (0xE0000000 - 8 * KiB, 0xE0000000 - 8 * KiB, 0),  # just under 3.5 GiB: all low
        (0xE0000000, 3 * GiB, GiB // 2),  # from 3.5 GiB on: 3 GiB low, rest high
        (4 * GiB, 3 * GiB, GiB),
        (8 * GiB, 3 * GiB, 5 * GiB),
    ],
)
def test_pc_ram_split(ram, below, above):
    assert pc_ram_split(ram) == (below, above)
    assert below <= 0xE0000000


# --------------------------------------------------------------------------- -device syntax


def test_split_device_spec_escaped_comma():
    assert split_device_spec("a,b=1,,2") == ("a", {"b": "1,2"})


def test_split_device_spec_plain():
    name, props = split_device_spec("isa-debug-exit,iobase=0xf4,iosize=0x04")
    assert name == "isa-debug-exit"
    assert props == {"iobase": "0xf4", "iosize": "0x04"}


def test_split_device_spec_name_only():
    assert split_device_spec("isa-debug-exit") == ("isa-debug-exit", {})


def test_split_device_spec_driver_property_names_type():
    assert split_device_spec("a,driver=x") == ("x", {})


def test_split_device_spec_leading_driver_key():
    assert split_device_spec("driver=x") == ("x", {})
    assert split_device_spec("driver=x,iobase=1") == ("x", {"iobase": "1"})


@pytest.fixture
def exit_type():
    return DeviceType(
        name="t",
        description="test",
        create=lambda machine, props: None,
        properties={"iobase": Property(parse_uint, 0x501), "iosize": Property(parse_uint, 2)},
    )


def test_device_type_parse_defaults_and_values(exit_type):
    assert exit_type.parse("t", {}) == {"iobase": 0x501, "iosize": 2}
    assert exit_type.parse("t,iobase=0xf4", {"iobase": "0xf4"}) == {"iobase": 0xF4, "iosize": 2}
    assert exit_type.parse("t,iosize=4", {"iosize": "4"}) == {"iobase": 0x501, "iosize": 4}


def test_device_type_unknown_property(exit_type):
    with pytest.raises(ConfigError, match=r"Property 't\.foo' not found"):
        exit_type.parse("t,foo=1", {"foo": "1"})


@pytest.mark.parametrize("raw", ["banana", "-1", "0xzz"])
def test_device_type_bad_value(exit_type, raw):
    with pytest.raises(ConfigError, match=r"Property 't\.iobase'"):
        exit_type.parse(f"t,iobase={raw}", {"iobase": raw})


def test_device_help_text_has_qemus_layout():
    """The layout of QEMU's ``-device isa-serial,help`` (qom/object_interfaces.c
    object_property_help): ``  name=<type>`` padded to 24 columns, `` - `` and the description,
    ``(default: JSON)``: ``wakeup=<bool>          -  (default: false)`` there."""
    t = DeviceType(name="t", description="test", create=lambda machine, props: None,
                   properties={"wakeup": Property(parse_bool, False),
                               "a-very-long-property-name": Property(parse_uint, 7, "count"),
                               "label": Property(str, "x", "a name")})
    assert t.help_text().splitlines() == [
        "t options:",
        "  a-very-long-property-name=<uint> - count (default: 7)",
        '  label=<str>            - a name (default: "x")',
        "  wakeup=<bool>          -  (default: false)",
    ]
    none = DeviceType(name="n", description="test", create=lambda machine, props: None)
    assert none.help_text() == "There are no options for n."


# --------------------------------------------------------------------------- plugin manager


def _dtype(name: str) -> DeviceType:
    return DeviceType(name=name, description=f"{name} for tests", create=lambda m, p: None)


class OnePlugin:
    def __init__(self, *names: str) -> None:
        self.names = names

    @hookimpl
    def emu_device_types(self):
        return [_dtype(n) for n in self.names]


class BadPlugin:
    def __init__(self, result) -> None:
        self.result = result

    @hookimpl
    def emu_device_types(self):
        return self.result


def test_builtin_debug_exit_present():
    pm = PluginManager(autoload=False)
    t = pm.device_types["isa-debug-exit"]
    assert t.source == "built-in"
    assert t.parse("isa-debug-exit", {}) == {"iobase": 0x501, "iosize": 2}  # QEMU's defaults


def test_registered_plugin_adds_type():
    pm = PluginManager(autoload=False)
    pm.register(OnePlugin("my-dev", "my-other-dev"), name="myplugin")
    assert "my-dev" in pm.device_types
    assert "my-other-dev" in pm.device_types
    assert "isa-debug-exit" in pm.device_types
    assert pm.device_types["my-dev"].source == "registered"


def test_duplicate_type_names_plugin():
    pm = PluginManager(autoload=False)
    with pytest.raises(ConfigError, match="dupplugin") as info:
        pm.register(OnePlugin("isa-debug-exit"), name="dupplugin")
    assert "isa-debug-exit" in str(info.value)


def test_duplicate_between_plugins():
    pm = PluginManager(autoload=False)
    pm.register(OnePlugin("shared"), name="first")
    with pytest.raises(ConfigError, match="second"):
        pm.register(OnePlugin("shared"), name="second")


@pytest.mark.parametrize("result", ["not a list", None, [object()], ["isa-debug-exit"], 42])
def test_bad_return_names_plugin(result):
    pm = PluginManager(autoload=False)
    with pytest.raises(ConfigError, match="badplugin"):
        pm.register(BadPlugin(result), name="badplugin")


def test_raising_hook_names_plugin():
    class Boom:
        @hookimpl
        def emu_device_types(self):
            raise RuntimeError("kaput")

    pm = PluginManager(autoload=False)
    with pytest.raises(ConfigError, match="boomplugin"):
        pm.register(Boom(), name="boomplugin")


@pytest.fixture
def fake_entry_point(monkeypatch):
    """One entry point in group ``emu`` whose load is recorded."""
    loaded = []

    def load():
        loaded.append(1)
        return OnePlugin("ep-dev")

    ep = SimpleNamespace(name="fakeep", value="fake.module", load=load,
                         dist_name="fake-dist", dist_version="1.0")
    real = manager.entry_points

    def entry_points(group):
        if group == "emu":
            return [ep]
        return real(group)

    monkeypatch.setattr(manager, "entry_points", entry_points)
    monkeypatch.delenv("EMU_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    return loaded


def test_autoload_false_loads_no_entry_points(fake_entry_point):
    pm = PluginManager(autoload=False)
    assert fake_entry_point == []
    assert "ep-dev" not in pm.device_types
    assert set(pm.origins.values()) == {"built-in"}


def test_autoload_loads_entry_points(fake_entry_point):
    pm = PluginManager(autoload=True)
    assert fake_entry_point == [1]
    assert "ep-dev" in pm.device_types
    assert "fakeep" in pm.device_types["ep-dev"].source


def test_env_disables_autoload(fake_entry_point, monkeypatch):
    monkeypatch.setenv("EMU_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = PluginManager()
    assert fake_entry_point == []
    assert "ep-dev" not in pm.device_types


def test_failing_entry_point_names_plugin(monkeypatch):
    def load():
        raise ImportError("no module named fake")

    ep = SimpleNamespace(name="brokenep", value="fake.module", load=load, dist_name=None,
                         dist_version=None)
    monkeypatch.setattr(manager, "entry_points", lambda group: [ep] if group == "emu" else [])
    with pytest.raises(ConfigError, match="brokenep"):
        PluginManager(autoload=True)
