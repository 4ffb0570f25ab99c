"""QEMU's monitor expressions (monitor/hmp.c: expr_sum, expr_logic, expr_prod, expr_unary).

``+ -`` bind loosest, then ``& | ^``, then ``* / %``; unary ``+ - ~``, parentheses, C
numbers (``0x10``, ``010``, ``16``), character constants (``'a'``) and registers (``$eax``).
Arithmetic is on signed 64-bit values, as in QEMU. Errors carry QEMU's messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_REGNAME = re.compile(r"[A-Za-z0-9_.]*")

#: looks a register up by name: its value, or None for an unknown register
RegisterReader = Callable[[str], int | None]


class ExprError(Exception):
    """A malformed expression; the message is QEMU's."""


def _wrap(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


class _Parser:
    def __init__(self, text: str, pos: int, registers: RegisterReader) -> None:
        self.text = text
        self.pos = pos
        self.registers = registers

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def next(self) -> None:
        if self.pos < len(self.text):
            self.pos += 1
            self.skip_space()

    def unary(self) -> int:
        ch = self.peek()
        if ch == "+":
            self.next()
            return self.unary()
        if ch == "-":
            self.next()
            return _wrap(-self.unary())
        if ch == "~":
            self.next()
            return _wrap(~self.unary())
        if ch == "(":
            self.next()
            n = self.sum()
            if self.peek() != ")":
                raise ExprError("')' expected")
            self.next()
            return n
        if ch == "'":
            self.pos += 1
            if not self.peek():
                raise ExprError("character constant expected")
            n = ord(self.peek())
            self.pos += 1
            if self.peek() != "'":
                raise ExprError("missing terminating ' character")
            self.next()
            return n
        if ch == "$":
            self.pos += 1
            m = _REGNAME.match(self.text, self.pos)
            assert m is not None
            self.pos = m.end()
            self.skip_space()
            value = self.registers(m.group())
            if value is None:
                raise ExprError("unknown register")
            return _wrap(value)
        if not ch:
            raise ExprError("unexpected end of expression")
        m = _NUMBER.match(self.text, self.pos)
        if m is None:
            raise ExprError(f"invalid char '{ch}' in expression")
        value = int(m.group(), 0) if not m.group().startswith("0") or m.group() == "0" \
            or m.group()[1] in "xX" else int(m.group(), 8)
        if value >> 64:
            raise ExprError("number too large")
        self.pos = m.end()
        self.skip_space()
        return _wrap(value)

    def prod(self) -> int:
        val = self.unary()
        while (op := self.peek()) in ("*", "/", "%") and op:
            self.next()
            val2 = self.unary()
            if op == "*":
                val = _wrap(val * val2)
            else:
                if val2 == 0:
                    raise ExprError("division by zero")
                quotient = abs(val) // abs(val2) * (1 if (val < 0) == (val2 < 0) else -1)
                val = _wrap(quotient) if op == "/" else _wrap(val - quotient * val2)
        return val

    def logic(self) -> int:
        val = self.prod()
        while (op := self.peek()) in ("&", "|", "^") and op:
            self.next()
            val2 = self.prod()
            val = val & val2 if op == "&" else val | val2 if op == "|" else val ^ val2
        return val

    def sum(self) -> int:
        val = self.logic()
        while (op := self.peek()) in ("+", "-") and op:
            self.next()
            val2 = self.logic()
            val = _wrap(val + val2 if op == "+" else val - val2)
        return val


def evaluate(text: str, pos: int, registers: RegisterReader) -> tuple[int, int]:
    """get_expr: the value of the expression at ``text[pos:]`` (a signed 64-bit int) and
    the position after it. Raises :class:`ExprError`."""
    parser = _Parser(text, pos, registers)
    parser.skip_space()
    return parser.sum(), parser.pos
