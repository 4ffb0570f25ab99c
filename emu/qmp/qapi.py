"""QAPI types for emu's own QMP commands: argument checking and the introspection schema.

A command declared with :class:`CommandDef` names its argument object and its return type
the way QEMU's ``qapi/*.json`` does. The declaration does two jobs:

- its arguments are checked before the command runs, with the QEMU 7.2 messages and in
  QEMU's order (qapi/qobject-input-visitor.c: members are visited in declaration order, so
  a missing or mistyped member is reported before an unexpected one);
- ``query-qmp-schema`` (emu/qmp/schema.py) describes it from the same declaration, so
  what introspection says and what the command accepts cannot drift apart.

Types: the built-ins ``int`` (int64), ``str``, ``bool``, ``number``, ``any`` and ``null``;
:class:`Enum`; :class:`Struct` (optionally a flat union through ``tag``/``variants``);
:class:`Array`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from emu.qmp.commands import QmpError

if TYPE_CHECKING:
    from emu.qmp.server import QmpServer

BUILTINS = {"int": "int", "str": "string", "bool": "boolean", "number": "number",
            "any": "value", "null": "null"}
INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True, eq=False)
class Enum:
    """A QAPI enum: the strings a member accepts."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Array:
    """A QAPI array of ``element``."""

    element: TypeRef


@dataclass(frozen=True)
class Member:
    """One member of an object: ``optional`` members may be absent."""

    name: str
    type: TypeRef
    optional: bool = False
    #: QAPI features of the member (``deprecated``...)
    features: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Struct:
    """A QAPI object type. ``tag``/``variants``: a flat union, the members of the variant
    chosen by the tag member's value added to the common ones."""

    name: str
    members: tuple[Member, ...] = ()
    tag: str | None = None
    variants: tuple[tuple[str, Struct], ...] = ()


TypeRef = Union[str, Enum, Struct, Array]  # noqa: UP007 (a runtime alias)

#: the empty object: arguments of a command that takes none, the return of one that returns
#: nothing (``{}``)
EMPTY = Struct("empty")

Handler = Callable[["QmpServer", dict[str, Any]], Any]


def _json_name(t: TypeRef) -> str:
    if isinstance(t, str):
        return BUILTINS[t] if t != "int" else "integer"
    if isinstance(t, Enum):
        return "string"
    if isinstance(t, Array):
        return "array"
    return "object"


def _matches(value: Any, t: TypeRef) -> bool:
    if isinstance(t, Enum) or t == "str":
        return isinstance(value, str)
    if t == "int":
        return (isinstance(value, int) and not isinstance(value, bool)
                and INT64[0] <= value <= INT64[1])
    if t == "bool":
        return isinstance(value, bool)
    if t == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if t == "any":
        return True
    if t == "null":
        return value is None
    if isinstance(t, Array):
        return isinstance(value, list)
    return isinstance(value, dict)


def check_args(args: dict[str, Any], struct: Struct) -> None:
    """Check ``args`` against ``struct`` with QEMU's messages; raise :class:`QmpError`."""
    for m in struct.members:
        if m.name not in args:
            if not m.optional:
                raise QmpError(f"Parameter '{m.name}' is missing")
            continue
        value = args[m.name]
        if not _matches(value, m.type):
            raise QmpError(f"Invalid parameter type for '{m.name}', expected: "
                           f"{_json_name(m.type)}")
        if isinstance(m.type, Enum) and value not in m.type.values:
            raise QmpError(f"Parameter '{m.name}' does not accept value '{value}'")
    known = {m.name for m in struct.members}
    for key in args:
        if key not in known:
            raise QmpError(f"Parameter '{key}' is unexpected")


@dataclass
class CommandDef:
    """A QMP command with its QAPI signature; called as ``fn(server, arguments)`` like any
    command, it checks the arguments first."""

    name: str
    fn: Handler
    args: Struct = EMPTY
    #: the return type; :data:`EMPTY` for commands that return ``{}``
    returns: TypeRef = EMPTY
    features: tuple[str, ...] = field(default=())

    def __call__(self, server: QmpServer, args: dict[str, Any]) -> Any:
        check_args(args, self.args)
        return self.fn(server, args)


@dataclass(frozen=True)
class EventDef:
    """An event emu can send, and its ``data`` object."""

    name: str
    data: Struct = EMPTY


def command(name: str, args: Struct = EMPTY, returns: TypeRef = EMPTY
            ) -> Callable[[Handler], CommandDef]:
    """Decorator: declare ``fn`` as the QMP command ``name``."""

    def wrap(fn: Handler) -> CommandDef:
        return CommandDef(name, fn, args, returns)

    return wrap


def args(name: str, *members: Member) -> Struct:
    """The argument object of command ``name`` (QEMU's implicit ``q_obj_NAME-arg``)."""
    return Struct(f"q_obj_{name}-arg", members)
