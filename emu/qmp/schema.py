"""``query-qmp-schema`` (QEMU 7.2 qapi/introspect.json, scripts/qapi/introspect.py): the
commands and events emu has, with their argument and return types, as SchemaInfo.

The entries have QEMU's form: ``meta-type`` command, event, object, enum, array or builtin;
commands name an ``arg-type`` (an object) and a ``ret-type``; optional object members carry
``"default": null``; types other than the built-ins get numeric names (``"0"`` is the
empty object, arrays are ``"[N]"``), numbered in order of first use, as QEMU hides its
type names. The numbers are emu's own, consistent within one answer.

The signatures come from the :class:`emu.qmp.qapi.CommandDef` declarations the commands
are checked with; the commands of emu/qmp/commands.py are declared here. A plugin command
given as a plain function has no declaration: it is listed taking no arguments and
returning ``any``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from emu.qmp.commands import DUMP_FORMATS
from emu.qmp.qapi import (
    BUILTINS,
    EMPTY,
    Array,
    CommandDef,
    Enum,
    EventDef,
    Member,
    Struct,
    TypeRef,
    args,
    command,
)

if TYPE_CHECKING:
    from emu.qmp.server import QmpServer

RUN_STATE = Enum("RunState", (
    "debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate", "prelaunch",
    "finish-migrate", "restore-vm", "running", "save-vm", "shutdown", "suspended", "watchdog",
    "guest-panicked", "colo"))
SHUTDOWN_CAUSE = Enum("ShutdownCause", (
    "none", "host-error", "host-qmp-quit", "host-qmp-system-reset", "host-signal", "host-ui",
    "guest-shutdown", "guest-reset", "guest-panic", "subsystem-reset", "snapshot-load"))
GUEST_PANIC_ACTION = Enum("GuestPanicAction", ("pause", "poweroff", "run"))
DUMP_GUEST_MEMORY_FORMAT = Enum("DumpGuestMemoryFormat", DUMP_FORMATS)
DUMP_STATUS = Enum("DumpStatus", ("none", "active", "completed", "failed"))
DUMP_QUERY_RESULT = Struct("DumpQueryResult", (
    Member("status", DUMP_STATUS), Member("completed", "int"), Member("total", "int")))

#: signatures of the commands in emu/qmp/commands.py (their checks live there)
CORE_SIGNATURES: dict[str, tuple[Struct, TypeRef]] = {
    "query-version": (EMPTY, Struct("VersionInfo", (
        Member("qemu", Struct("VersionTriple", (Member("major", "int"), Member("minor", "int"),
                                                 Member("micro", "int")))),
        Member("package", "str")))),
    "query-commands": (EMPTY, Array(Struct("CommandInfo", (Member("name", "str"),)))),
    "query-status": (EMPTY, Struct("StatusInfo", (
        Member("running", "bool"), Member("singlestep", "bool"),
        Member("status", RUN_STATE)))),
    "stop": (EMPTY, EMPTY),
    "cont": (EMPTY, EMPTY),
    "system_reset": (EMPTY, EMPTY),
    "quit": (EMPTY, EMPTY),
    "dump-guest-memory": (args("dump-guest-memory",
                               Member("paging", "bool"), Member("protocol", "str"),
                               Member("detach", "bool", True), Member("begin", "int", True),
                               Member("length", "int", True),
                               Member("format", DUMP_GUEST_MEMORY_FORMAT, True)), EMPTY),
    "query-dump": (EMPTY, DUMP_QUERY_RESULT),
    "query-dump-guest-memory-capability": (EMPTY, Struct("DumpGuestMemoryCapability", (
        Member("formats", Array(DUMP_GUEST_MEMORY_FORMAT)),))),
    "qmp_capabilities": (args("qmp_capabilities", Member(
        "enable", Array(Enum("QMPCapability", ("oob",))), True)), EMPTY),
}

_RESET_DATA = Struct("q_obj_RESET-arg", (Member("guest", "bool"),
                                         Member("reason", SHUTDOWN_CAUSE)))
#: what a hypervisor-specific panic report carries (emu sends none: no Hyper-V or s390)
GUEST_PANIC_INFORMATION = Struct(
    "GuestPanicInformation",
    (Member("type", Enum("GuestPanicInformationType", ("hyper-v", "s390"))),),
    tag="type",
    variants=(
        ("hyper-v", Struct("GuestPanicInformationHyperV", tuple(
            Member(f"arg{i}", "int") for i in range(1, 6)))),
        ("s390", Struct("GuestPanicInformationS390", (
            Member("core", "int"), Member("psw-mask", "int"), Member("psw-addr", "int"),
            Member("reason", Enum("S390CrashReason", (
                "unknown", "disabled-wait", "extint-loop", "pgmint-loop", "opint-loop")))))),
    ))
_PANIC_DATA = Struct("q_obj_GUEST_PANICKED-arg", (
    Member("action", GUEST_PANIC_ACTION), Member("info", GUEST_PANIC_INFORMATION, True)))

#: the events emu sends (emu/machine.py, emu/devices/builtin.py, emu/qmp/)
EVENTS = (
    EventDef("SHUTDOWN", Struct("q_obj_SHUTDOWN-arg", _RESET_DATA.members)),
    EventDef("POWERDOWN"),
    EventDef("RESET", _RESET_DATA),
    EventDef("STOP"),
    EventDef("RESUME"),
    EventDef("GUEST_PANICKED", _PANIC_DATA),
    EventDef("GUEST_CRASHLOADED", Struct("q_obj_GUEST_CRASHLOADED-arg", _PANIC_DATA.members)),
    EventDef("DUMP_COMPLETED", Struct("q_obj_DUMP_COMPLETED-arg", (
        Member("result", DUMP_QUERY_RESULT), Member("error", "str", True)))),
)


class _Namer:
    """Gives each type its SchemaInfo name and entry, in order of first use."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.entries: list[dict[str, Any]] = []
        self.builtins: set[str] = set()
        self.arrays: set[str] = set()
        self.count = 0
        self.name(EMPTY)

    def name(self, t: TypeRef) -> str:
        if isinstance(t, str):
            if t not in self.builtins:
                self.builtins.add(t)
                self.entries.append({"name": t, "meta-type": "builtin",
                                     "json-type": BUILTINS[t]})
            return t
        if isinstance(t, Struct) and not t.members and not t.variants:
            t = EMPTY  # every empty object is QEMU's one "0"
        if isinstance(t, Array):
            element = self.name(t.element)
            name = f"[{element}]"
            if name not in self.arrays:
                self.arrays.add(name)
                self.entries.append({"name": name, "meta-type": "array",
                                     "element-type": element})
            return name
        if id(t) in self.names:
            return self.names[id(t)]
        name = str(self.count)
        self.count += 1
        self.names[id(t)] = name
        entry: dict[str, Any] = {"name": name}
        self.entries.append(entry)
        if isinstance(t, Enum):
            entry.update({"meta-type": "enum", "values": list(t.values),
                          "members": [{"name": v} for v in t.values]})
            return name
        members = []
        for m in t.members:
            member: dict[str, Any] = {"name": m.name, "type": self.name(m.type)}
            if m.optional:
                member["default"] = None
            if m.features:
                member["features"] = list(m.features)
            members.append(member)
        entry.update({"meta-type": "object", "members": members})
        if t.tag is not None:
            entry["tag"] = t.tag
            entry["variants"] = [{"case": case, "type": self.name(v)} for case, v in t.variants]
        return name


def schema(commands: dict[str, Any]) -> list[dict[str, Any]]:
    """SchemaInfo for ``commands`` (name -> command, as the server has them) and emu's
    events."""
    namer = _Namer()
    entries: list[dict[str, Any]] = []
    for name in sorted([*commands, "qmp_capabilities"]):
        fn = commands.get(name)
        if isinstance(fn, CommandDef):
            arg_t, ret_t = fn.args, fn.returns
        elif name in CORE_SIGNATURES:
            arg_t, ret_t = CORE_SIGNATURES[name]
        else:
            arg_t, ret_t = EMPTY, "any"
        entries.append({"name": name, "meta-type": "command", "arg-type": namer.name(arg_t),
                        "ret-type": namer.name(ret_t)})
    for event in EVENTS:
        entries.append({"name": event.name, "meta-type": "event",
                        "arg-type": namer.name(event.data)})
    return entries + namer.entries


_STR_LIST = Array("str")
_FEATURES = Member("features", _STR_LIST, True)
SCHEMA_META_TYPE = Enum("SchemaMetaType", ("builtin", "enum", "array", "object", "alternate",
                                           "command", "event"))
#: QEMU 7.2's SchemaInfo union (qapi/introspect.json), which describes the answer itself
SCHEMA_INFO = Struct(
    "SchemaInfo", (Member("name", "str"), Member("meta-type", SCHEMA_META_TYPE), _FEATURES),
    tag="meta-type",
    variants=(
        ("builtin", Struct("SchemaInfoBuiltin", (Member("json-type", Enum("JSONType", (
            "string", "number", "int", "boolean", "null", "object", "array", "value"))),))),
        ("enum", Struct("SchemaInfoEnum", (
            Member("members", Array(Struct("SchemaInfoEnumMember", (Member("name", "str"),
                                                                     _FEATURES)))),
            Member("values", _STR_LIST, features=("deprecated",))))),
        ("array", Struct("SchemaInfoArray", (Member("element-type", "str"),))),
        ("object", Struct("SchemaInfoObject", (
            Member("members", Array(Struct("SchemaInfoObjectMember", (
                Member("name", "str"), Member("type", "str"), Member("default", "any", True),
                _FEATURES)))),
            Member("tag", "str", True),
            Member("variants", Array(Struct("SchemaInfoObjectVariant", (
                Member("case", "str"), Member("type", "str")))), True)))),
        ("alternate", Struct("SchemaInfoAlternate", (
            Member("members", Array(Struct("SchemaInfoAlternateMember", (
                Member("type", "str"),)))),))),
        ("command", Struct("SchemaInfoCommand", (
            Member("arg-type", "str"), Member("ret-type", "str"),
            Member("allow-oob", "bool", True)))),
        ("event", Struct("SchemaInfoEvent", (Member("arg-type", "str"),))),
    ))


@command("query-qmp-schema", returns=Array(SCHEMA_INFO))
def query_qmp_schema(server: QmpServer, a: dict[str, Any]) -> Any:
    return schema(server.commands())


COMMANDS: list[CommandDef] = [query_qmp_schema]
