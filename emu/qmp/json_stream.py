"""QMP's JSON dialect, parsed from a byte stream as QEMU 7.2's qobject/json-lexer.c,
json-streamer.c and json-parser.c do.

The dialect: RFC 8259 JSON plus single-quoted strings (``'a"b'``) and the ``\\'`` escape, in
UTF-8. Messages follow each other with or without whitespace between them. Bytes are lexed as
they arrive; a token is decoded only once it is complete, so a UTF-8 character split across
two reads is one character.

Limits, as json-streamer.c: a message may hold at most ``MAX_TOKEN_SIZE`` bytes of tokens
(64 MiB), ``MAX_TOKEN_COUNT`` tokens (2 Mi) and ``MAX_NESTING`` open brackets and braces
(1024). The parser keeps its own stack (no recursion), so no input can exhaust Python's.

Errors carry QEMU's texts (``JSON parse error, stray '%s'``, ``JSON nesting depth limit
exceeded``, ``JSON parse error, expecting value``...). After an error in the middle of a
message, the rest of that message is dropped up to the point where its brackets balance
(QEMU after 7.2 does this; 7.2 itself answers every leftover closing bracket with an error of
its own). A lexical error (a stray byte) resets the stream, as in QEMU: the bytes 0xFE and 0xFF
can never occur in UTF-8, so a client may send one to bring the parser to a known state.

Where emu is stricter than QEMU 7.2, on purpose: a number too large for a double is refused
(QEMU turns it into ``inf`` and sends that back, which is not JSON), and the overlong encoding
``C0 80`` of NUL is refused like any other invalid UTF-8 (``\\u0000`` is accepted, as in JSON).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_TOKEN_SIZE = 64 << 20
MAX_TOKEN_COUNT = 2 << 20
MAX_NESTING = 1 << 10

INT64_MIN, INT64_MAX, UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1

# token kinds
LCURLY, RCURLY, LSQUARE, RSQUARE, COLON, COMMA = "{", "}", "[", "]", ":", ","
STRING, INTEGER, FLOAT, KEYWORD, ERROR = "string", "integer", "float", "keyword", "error"
DISCARDED = "discarded"  # the end of a token dropped for its size
_STRUCTURAL = {ord(c): c for c in "{}[]:,"}
_WS = re.compile(rb"[ \t\r\n]*")
_DIGITS = re.compile(rb"[0-9]*")
_LETTERS = re.compile(rb"[a-z]*")
#: string bodies: anything but the quote, a backslash, control characters and 0xFE/0xFF
_BODY = {q: re.compile(rb"[^\\\x00-\x1f\xfe\xff" + bytes((q,)) + rb"]*") for q in b"\"'"}
#: where lexical error recovery ends: a structural character, a control character other
#: than tab, or one of the bytes UTF-8 never uses (json-lexer.c IN_RECOVERY)
_RECOVER = re.compile(rb"[^\x00-\x08\x0a-\x1f\[\]{}:,\xfe\xff]*")


#: the fast path: whitespace, then a structural character, a double-quoted string without
#: escapes, or an integer or keyword that a structural character or whitespace ends
_FAST = re.compile(rb'[ \t\r\n]*(?:([\[\]{}:,])|("[^"\\\x00-\x1f\xfe\xff]*")'
                   rb"|(-?(?:0|[1-9][0-9]*))(?=[ \t\r\n\[\]{}:,])|([a-z]+)(?=[ \t\r\n\[\]{}:,]))")
_FAST_KINDS = {2: STRING, 3: INTEGER, 4: KEYWORD}


class JsonError(Exception):
    """A message that is not valid JSON, or breaks a limit; ``str()`` is QEMU's text."""


@dataclass
class Token:
    kind: str
    text: bytes


class _Lexer:
    """json-lexer.c: splits bytes into tokens. Long tokens are scanned incrementally, so
    feeding a 64 MiB string in small reads costs time linear in its size."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.state = "start"  # start, string, number, keyword, recovery
        self.start = 0  # where the token being scanned began
        self.scan = 0  # how far it has been scanned
        self.sub = ""  # number sub-state
        self._done = Token(ERROR, b"")
        self.quote = 0x22
        #: the token being scanned is too large: scan it to its end, keeping none of it
        self.discard = False

    def pending(self) -> int:
        """Bytes of the token being scanned (not yet complete) held in memory."""
        if self.discard or self.state not in ("string", "number", "keyword"):
            return 0
        return len(self.buf) - self.start

    def feed(self, data: bytes) -> Iterator[Token]:
        self.buf += data
        yield from self._run()
        if self.discard:
            self.start = self.scan
        keep = self.start if self.state in ("string", "number", "keyword") else self.pos
        if keep:
            del self.buf[:keep]
            self.pos -= keep
            self.scan -= keep
            self.start -= keep

    def abandon(self) -> None:
        """Drop the token being scanned: it is scanned to its end but not kept."""
        self.discard = True
        self.start = self.scan

    def _error(self, end: int) -> Token:
        tok = Token(DISCARDED, b"") if self.discard else \
            Token(ERROR, bytes(self.buf[self.start:end]))
        self.pos = self.start = end
        self.state = "recovery"
        self.discard = False
        return tok

    def _emit(self, kind: str, end: int) -> Token:
        tok = Token(DISCARDED, b"") if self.discard else \
            Token(kind, bytes(self.buf[self.start:end]))
        self.pos = self.start = end
        self.state = "start"
        self.discard = False
        return tok

    def _run(self) -> Iterator[Token]:
        buf = self.buf
        while True:
            n = len(buf)
            if self.state == "recovery":
                self.pos = _RECOVER.match(buf, self.pos).end()
                if self.pos == n:
                    return
                if buf[self.pos] not in _STRUCTURAL:
                    self.pos += 1  # a control byte or 0xFE/0xFF: consumed
                self.state = "start"
            if self.state == "start":
                fast = _FAST.match(buf, self.pos)
                if fast is not None:  # a common token, complete (the slow path agrees)
                    self.pos = self.start = fast.end()
                    group = fast.lastindex or 1
                    text = fast.group(group)
                    yield Token(_STRUCTURAL[text[0]] if group == 1 else _FAST_KINDS[group], text)
                    continue
                self.pos = _WS.match(buf, self.pos).end()
                self.start = self.scan = self.pos
                if self.pos == n:
                    return
                c = buf[self.pos]
                if c in _STRUCTURAL:
                    yield self._emit(_STRUCTURAL[c], self.pos + 1)
                elif c in b"\"'":
                    self.state, self.scan, self.quote = "string", self.pos + 1, c
                elif c == 0x2D or 0x30 <= c <= 0x39:
                    self.state, self.sub = "number", "begin"
                elif 0x61 <= c <= 0x7A:
                    self.state = "keyword"
                else:
                    yield self._error(self.pos + 1)
                continue
            if self.state == "string":
                quote = self.quote
                while True:
                    self.scan = _BODY[quote].match(buf, self.scan).end()
                    if self.scan == n:
                        return
                    c = buf[self.scan]
                    if c == quote:
                        yield self._emit(STRING, self.scan + 1)
                        break
                    if c != 0x5C:  # a control character, 0xFE or 0xFF
                        yield self._error(self.scan + 1)
                        break
                    if self.scan + 1 == n:
                        return
                    if not 0x20 <= buf[self.scan + 1] <= 0xFD:
                        yield self._error(self.scan + 2)
                        break
                    self.scan += 2
                continue
            if self.state == "keyword":
                self.scan = _LETTERS.match(buf, self.scan).end()
                if self.scan == n:
                    return
                if buf[self.scan] >= 0x80:
                    yield self._error(self.scan + 1)
                else:
                    yield self._emit(KEYWORD, self.scan)
                continue
            # number: json-lexer.c's IN_NEG_NONZERO_NUMBER ... IN_DIGITS states
            if not self._number(n):
                return
            yield self._done

    def _number(self, n: int) -> bool:
        """Scan a number; False when it needs more input, else True with the token in
        ``self._done``."""
        buf = self.buf
        while True:
            if self.scan == n:
                return False
            c = buf[self.scan]
            digit = 0x30 <= c <= 0x39
            sub = self.sub
            if sub == "begin":
                self.scan += 1
                self.sub = "neg" if c == 0x2D else "zero" if c == 0x30 else "int"
                continue
            if sub == "neg":
                if not digit:
                    self._done = self._error(self.scan + 1)
                    return True
                self.scan += 1
                self.sub = "zero" if c == 0x30 else "int"
                continue
            if sub in ("int", "frac", "exp"):
                self.scan = _DIGITS.match(buf, self.scan).end()
                if self.scan == n:
                    return False
                c = buf[self.scan]
            if sub in ("zero", "int") and c == 0x2E:
                self.scan += 1
                self.sub = "dot"
            elif sub in ("int", "frac") and c in b"eE":
                self.scan += 1
                self.sub = "e"
            elif sub == "zero" and digit:
                self._done = self._error(self.scan + 1)
                return True
            elif sub in ("dot", "e", "esign"):
                if digit:
                    self.scan += 1
                    self.sub = "frac" if sub == "dot" else "exp"
                elif sub == "e" and c in b"+-":
                    self.scan += 1
                    self.sub = "esign"
                else:
                    self._done = self._error(self.scan + 1)
                    return True
            elif c >= 0x80:
                self._done = self._error(self.scan + 1)
                return True
            else:
                self._done = self._emit(INTEGER if sub in ("zero", "int") else FLOAT, self.scan)
                return True


class _Parser:
    """json-parser.c's grammar and messages, as a push-down automaton fed one token at a
    time (an explicit stack instead of recursion)."""

    def __init__(self) -> None:
        self.stack: list[list[Any]] = []  # [container, state, key]

    def reset(self) -> None:
        self.stack.clear()

    def feed(self, tok: Token) -> tuple[bool, Any]:
        """Returns (True, value) when a top-level value is complete."""
        kind = tok.kind
        if self.stack:
            frame = self.stack[-1]
            container, state = frame[0], frame[1]
            if isinstance(container, dict):
                if kind == RCURLY and state in ("key-or-end", "comma-or-end"):
                    return self._close()
                if state in ("key-or-end", "key"):
                    if kind == STRING:
                        frame[1], frame[2] = "colon", _string(tok.text)
                        return False, None
                    if kind == KEYWORD:
                        _keyword(tok.text)
                    if kind in (LCURLY, LSQUARE, STRING, INTEGER, FLOAT, KEYWORD):
                        raise JsonError("JSON parse error, key is not a string in object")
                    raise JsonError("JSON parse error, expecting value")
                if state == "colon":
                    if kind != COLON:
                        raise JsonError("JSON parse error, missing : in object pair")
                    frame[1] = "value"
                    return False, None
                if state == "comma-or-end":
                    if kind != COMMA:
                        raise JsonError("JSON parse error, expected separator in dict")
                    frame[1] = "key"
                    return False, None
            else:
                if kind == RSQUARE and state in ("value-or-end", "comma-or-end"):
                    return self._close()
                if state == "comma-or-end":
                    if kind != COMMA:
                        raise JsonError("JSON parse error, expected separator in list")
                    frame[1] = "value"
                    return False, None
        return self._value(tok)

    def _value(self, tok: Token) -> tuple[bool, Any]:
        kind = tok.kind
        if kind == LCURLY:
            self.stack.append([{}, "key-or-end", None])
            return False, None
        if kind == LSQUARE:
            self.stack.append([[], "value-or-end", None])
            return False, None
        if kind == STRING:
            value: Any = _string(tok.text)
        elif kind == INTEGER:
            value = _integer(tok.text)
        elif kind == FLOAT:
            value = _float(tok.text)
        elif kind == KEYWORD:
            value = _keyword(tok.text)
        else:
            raise JsonError("JSON parse error, expecting value")
        return self._store(value)

    def _close(self) -> tuple[bool, Any]:
        return self._store(self.stack.pop()[0])

    def _store(self, value: Any) -> tuple[bool, Any]:
        if not self.stack:
            return True, value
        frame = self.stack[-1]
        if isinstance(frame[0], dict):
            if frame[2] in frame[0]:
                raise JsonError("JSON parse error, duplicate key")
            frame[0][frame[2]] = value
        else:
            frame[0].append(value)
        frame[1] = "comma-or-end"
        return False, None


def _keyword(text: bytes) -> Any:
    try:
        return {b"true": True, b"false": False, b"null": None}[text]
    except KeyError:
        raise JsonError(f"JSON parse error, invalid keyword '{text.decode()}'") from None


def _integer(text: bytes) -> int | float:
    """json-parser.c: an int64 if it fits, else a uint64, else a double."""
    value = int(text)
    if INT64_MIN <= value <= UINT64_MAX:
        return value
    return _float(text)


def _float(text: bytes) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonError("JSON parse error, number out of range")
    return value


_ESCAPES = {ord('"'): '"', ord("'"): "'", ord("\\"): "\\", ord("/"): "/", ord("b"): "\b",
            ord("f"): "\f", ord("n"): "\n", ord("r"): "\r", ord("t"): "\t"}
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")


def _string(token: bytes) -> str:
    """json-parser.c parse_string(): escapes, surrogate pairs, strict UTF-8."""
    body = token[1:-1]
    if b"\\" not in body:
        return _utf8(body)
    out: list[str] = []
    i = 0
    while True:
        j = body.find(b"\\", i)
        if j < 0:
            out.append(_utf8(body[i:]))
            return "".join(out)
        out.append(_utf8(body[i:j]))
        esc = body[j + 1]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i = j + 2
            continue
        if esc != ord("u"):
            raise JsonError("JSON parse error, invalid escape sequence in string")
        cp, i = _hex4(body, j + 2)
        if 0xD800 <= cp <= 0xDBFF and body[i:i + 2] == b"\\u":
            trail, after = _hex4(body, i + 2)
            if 0xDC00 <= trail <= 0xDFFF:
                cp, i = 0x10000 + ((cp & 0x3FF) << 10) + (trail & 0x3FF), after
            else:
                cp = -1
        if cp < 0 or 0xD800 <= cp <= 0xDFFF or _noncharacter(cp):
            shown = token[j + 1:i + 1].decode(errors="replace")
            raise JsonError(f"JSON parse error, {shown} is not a valid Unicode character")
        out.append(chr(cp))


def _hex4(body: bytes, at: int) -> tuple[int, int]:
    """Four hex digits at ``at``: (code point or -1, index after them)."""
    if _HEX4.fullmatch(body, at, at + 4):
        return int(body[at:at + 4], 16), at + 4
    return -1, min(at + 4, len(body) + 1)


#: Unicode noncharacters: U+FDD0..U+FDEF and the last two code points of every plane, which
#: QEMU refuses in strings (util/unicode.c is_valid_codepoint())
_NONCHARACTERS = re.compile("[\ufdd0-\ufdef" + "".join(
    chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(17)) + "]")


def _noncharacter(cp: int) -> bool:
    return 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE


def _utf8(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonError("JSON parse error, invalid UTF-8 sequence in string") from None
    if not text.isascii() and _NONCHARACTERS.search(text):
        raise JsonError("JSON parse error, invalid UTF-8 sequence in string")
    return text


class JsonStream:
    """json-streamer.c: feed bytes, get back each complete message or the error that
    replaced it, in order: a list of ``(value, None)`` or ``(None, JsonError)``."""

    def __init__(self) -> None:
        self.lexer = _Lexer()
        self.parser = _Parser()
        self._reset()

    def _reset(self) -> None:
        self.braces = self.brackets = 0
        self.token_count = self.token_size = 0
        self.recovering = False
        self.parser.reset()

    def feed(self, data: bytes) -> list[tuple[Any, JsonError | None]]:
        out: list[tuple[Any, JsonError | None]] = []
        for tok in self.lexer.feed(data):
            self._token(tok, out)
        # a token still being scanned counts against the message's size limit
        if self.token_size + self.lexer.pending() > MAX_TOKEN_SIZE:
            self.lexer.abandon()
            if not self.recovering:
                out.append((None, JsonError("JSON token size limit exceeded")))
                self.recovering = True
        return out

    def _token(self, tok: Token, out: list[tuple[Any, JsonError | None]]) -> None:
        if tok.kind == DISCARDED:
            if self.braces == 0 and self.brackets == 0:
                self._reset()
            return
        if tok.kind == ERROR:
            text = tok.text.decode(errors="replace")
            out.append((None, JsonError(f"JSON parse error, stray '{text}'")))
            self._reset()
            return
        kind = tok.kind
        if kind == LCURLY:
            self.braces += 1
        elif kind == RCURLY:
            self.braces = max(self.braces - 1, 0)
        elif kind == LSQUARE:
            self.brackets += 1
        elif kind == RSQUARE:
            self.brackets = max(self.brackets - 1, 0)
        self.token_count += 1
        self.token_size += len(tok.text)
        if not self.recovering:
            error = None
            if self.token_size > MAX_TOKEN_SIZE:
                error = JsonError("JSON token size limit exceeded")
            elif self.token_count > MAX_TOKEN_COUNT:
                error = JsonError("JSON token count limit exceeded")
            elif self.braces + self.brackets > MAX_NESTING:
                error = JsonError("JSON nesting depth limit exceeded")
            else:
                try:
                    done, value = self.parser.feed(tok)
                except JsonError as e:
                    error = e
                else:
                    if done:
                        out.append((value, None))
            if error is not None:
                out.append((None, error))
                self.recovering = True
        if self.braces == 0 and self.brackets == 0:
            self._reset()


def dumps(value: Any) -> str:
    """``json.dumps(value, allow_nan=False)`` without recursion: an echoed ``id`` may be
    nested as deep as the input limit allows, deeper than Python's encoder goes."""
    try:
        return json.dumps(value, allow_nan=False)
    except RecursionError:
        pass
    out: list[str] = []
    stack: list[list[Any]] = []  # [closing bracket, iterator, first item?]

    def open_or_leaf(v: Any) -> None:
        if isinstance(v, dict):
            out.append("{")
            stack.append(["}", iter(v.items()), True])
        elif isinstance(v, (list, tuple)):
            out.append("[")
            stack.append(["]", iter(v), True])
        else:
            out.append(json.dumps(v, allow_nan=False))

    open_or_leaf(value)
    while stack:
        frame = stack[-1]
        item = next(frame[1], _END)
        if item is _END:
            out.append(frame[0])
            stack.pop()
            continue
        if not frame[2]:
            out.append(", ")
        frame[2] = False
        if frame[0] == "}":
            key, item = item
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            out.append(json.dumps(key) + ": ")
        open_or_leaf(item)
    return "".join(out)


_END = object()
