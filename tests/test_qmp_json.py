"""The QMP monitor's JSON input, byte for byte against QEMU 7.2: every answer compared, the
monitor still serving afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, boot_args, emu_cmd
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.qmp.json_stream import JsonStream


class Raw:
    """A running emulator and a raw socket to its monitor (negotiated)."""

    def __init__(self, binary: str, tmp: Path) -> None:
        self.sock_path = str(tmp / f"{binary}.qmp")
        args = boot_args("pc", "halt", "-qmp", f"unix:{self.sock_path},server=on,wait=off")
        cmd = emu_cmd() if binary == "emu" else [MACHINES["pc"][1]]
        self.proc = subprocess.Popen([*cmd, *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=ROOT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.connect()
        assert self.exchange(b'{"execute":"qmp_capabilities"}') == [{"return": {}}]

    def connect(self) -> dict:
        for _ in range(400):
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(self.sock_path)
                break
            except OSError:
                self.sock.close()
                time.sleep(0.05)
        self.file = self.sock.makefile("rb")
        line = self.file.readline()
        assert line, "no greeting"
        return json.loads(line)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self) -> list[dict]:
        """Answers up to the one to a synchronising query-status (events left out)."""
        self.send(b'\n{"execute":"query-status","id":"sync"}\n')
        out = []
        while True:
            line = self.file.readline()
            assert line, f"EOF after {out}"
            obj = json.loads(line)
            if obj.get("id") == "sync":
                assert obj["return"]["status"] == "running"
                return out
            if "event" not in obj:
                out.append(obj)

    def exchange(self, data: bytes) -> list[dict]:
        self.send(data)
        return self.replies()

    def close(self) -> str:
        self.proc.kill()
        self.proc.wait()
        self.sock.close()
        return self.proc.stderr.read().decode()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Raw]]:
    tmp = tmp_path_factory.mktemp("qmpjson")
    vms = {b: Raw(b, tmp) for b in ("emu", "qemu")}
    yield vms
    stderr = vms["emu"].close()
    vms["qemu"].close()
    assert "Traceback" not in stderr


def _err(desc: str) -> dict:
    return {"error": {"class": "GenericError", "desc": desc}}


QS = b'{"execute":"query-status","id":'
SAME = [
    b'{"execute":"query-status","foo":1}',
    b'{"execute":"query-status","id":5,"foo":1}',
    b'{"execute":"query-status","exec-oob":"stop"}',
    b'{"exec-oob":"query-status"}',
    b'{"execute":"query-status","control":{}}',
    b'{"execute":"query-status","arguments":null}',
    b'{"execute":"query-status","arguments":[],"id":5}',
    b'{"execute":42,"id":[1]}',
    b'{"id":5}',
    b'{"a":1}{"b":2}',
    b'{"execute":"query-status", "execute":"stop"}',
    b"NaN",
    QS + b"NaN}",
    QS + b"Infinity}",
    QS + b"-Infinity}",
    b"{'execute':'query-status','id':'x\\'y\"z'}",
    b"{'execute':\"query-status\",'id':'\\u00e9'}",
    QS + b'"\xff"}',
    QS + b'"\xfe"}',
    QS + b'"\xc3"}',
    QS + b'"\xc3\xa9\xe2\x82"}',
    QS + b'"\xed\xa0\x80"}',
    QS + b'"\xf4\x90\x80\x80"}',
    QS + b'"\xf0\x9f\x98\x80"}',
    QS + b'"\\ud83d\\ude00"}',
    QS + b'"\\ufffe"}',
    QS + b'"\\ufdd0"}',
    QS + b'"\\ud83f\\udfff"}',
    QS + b'"\xef\xbf\xbe"}',
    QS + b'"\xef\xb7\x90"}',
    QS + b'"\xf0\x9f\xbf\xbf"}',
    QS + b'"\xf4\x8f\xbf\xbd"}',
    QS + b'"\\ud83dx"}',
    QS + b'"\\ud800"}',
    QS + b'"\\udc00"}',
    QS + b'"\\u0000"}',
    QS + b'"\\x"}',
    QS + b'"\\u12"}',
    QS + b'"a\tb"}',
    QS + b'"\x7f"}',
    QS + b"01}",
    QS + b"-0}",
    QS + b"-}",
    QS + b"1.}",
    QS + b"1e}",
    QS + b"%d}",
    QS + b"18446744073709551615}",
    QS + b"-9223372036854775808}",
    QS + b"18446744073709551616}",
    QS + b"1.5}",
    b"\xff",
    b'{"a" 1}',
    b"{1:2}",
    b'{"a":}',
    b'{"a":1 "b":2}',
    b"[1 2]",
    b"[1,]",
    b'{"a":1,}',
    b"[,1]",
    b"tru",
    b"1",
    b'"text"',
    b"[]",
    b"]",
    b"}",
    b":",
    b'{"execute":"no-such-command","id":"x"}',
    b'{"execute":"qmp_capabilities","arguments":{"enable":"oob"}}',
    b'{"execute":"qmp_capabilities","arguments":{"foo":1}}',
    b'{"execute":"qmp_capabilities"}',
]


@pytest.mark.parametrize("data", SAME, ids=[repr(d)[2:40] for d in SAME])
def test_answers_are_qemus(pair: dict[str, Raw], data: bytes) -> None:
    assert pair["emu"].exchange(data) == pair["qemu"].exchange(data)


def test_deep_nesting_is_refused_and_the_monitor_keeps_serving(pair: dict[str, Raw]) -> None:
    data = QS + b"[" * 2000 + b"]" * 2000 + b"}"
    ours, qemu = pair["emu"].exchange(data), pair["qemu"].exchange(data)
    # QEMU 7.2 then answers each closing bracket past the limit with an error of its own;
    # emu drops the rest of the message, as later QEMU does
    assert ours == [_err("JSON nesting depth limit exceeded")] == qemu[:1]
    deepest = QS + b"[" * 1023 + b"]" * 1023 + b"}"  # within the limit: echoed
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10000)  # for this test's own json.loads of the echoed id
    try:
        assert pair["emu"].exchange(deepest) == pair["qemu"].exchange(deepest)
    finally:
        sys.setrecursionlimit(limit)
    pair["emu"].send(b"[" * 100000)
    # one error; the rest of the message, up to where its brackets balance, is dropped
    assert pair["emu"].exchange(b"]" * 100000) == [_err("JSON nesting depth limit exceeded")]


def test_numbers_qemu_would_send_back_as_non_json_are_refused(pair: dict[str, Raw]) -> None:
    qemu = pair["qemu"]
    qemu.send(QS + b"1.5e400}\n")
    assert b'"id": inf}' in qemu.file.readline()  # not JSON
    qemu.replies()
    assert pair["emu"].exchange(QS + b"1.5e400}") == [
        _err("JSON parse error, number out of range")]
    assert pair["emu"].exchange(QS + b"-1e999}") == [
        _err("JSON parse error, number out of range")]


def test_overlong_nul_is_invalid_utf8(pair: dict[str, Raw]) -> None:
    # QEMU accepts "modified UTF-8" C0 80 as NUL; it is not UTF-8 (RFC 3629)
    assert pair["emu"].exchange(QS + b'"\xc0\x80"}') == [
        _err("JSON parse error, invalid UTF-8 sequence in string")]


def test_no_oob_capability_is_offered(pair: dict[str, Raw]) -> None:
    emu = pair["emu"]
    emu.sock.close()
    assert emu.connect()["QMP"]["capabilities"] == []

    def ask(data: bytes) -> dict:
        emu.send(data)
        return json.loads(emu.file.readline())

    assert ask(b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}') == \
        _err("Capability oob not available")
    assert ask(b'{"execute":"qmp_capabilities","arguments":{"enable":["foo"]}}') == \
        _err("Parameter 'enable[0]' does not accept value 'foo'")
    assert ask(b'{"execute":"query-status"}') == {"error": {
        "class": "CommandNotFound",
        "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}
    assert ask(b'{"execute":"qmp_capabilities","arguments":{"enable":[]}}') == {"return": {}}


def test_oversized_messages_get_qemus_limit_errors(pair: dict[str, Raw]) -> None:
    emu = pair["emu"]
    big = QS + b'"' + b"a" * ((64 << 20) + 1) + b'"}'
    assert emu.exchange(big) == [_err("JSON token size limit exceeded")]
    many = QS + b"[" + b"0," * (1 << 20) + b"0]}"
    assert emu.exchange(many) == [_err("JSON token count limit exceeded")]
    assert emu.exchange(QS + b'"after"}') == [
        {"return": {"status": "running", "singlestep": False, "running": True},
         "id": "after"}]


def test_a_character_split_across_reads_is_one_character() -> None:
    message = '{"execute":"x","id":"ö€😀"}'.encode()
    stream = JsonStream()
    out = [v for i in range(len(message)) for v in stream.feed(message[i:i + 1])]
    assert out == [({"execute": "x", "id": "ö€😀"}, None)]


def test_unbalanced_garbage_is_resynchronised_by_0xff(pair: dict[str, Raw]) -> None:
    for binary in ("emu", "qemu"):
        vm = pair[binary]
        vm.send(b'{"execute": {"x": [1, ')
        assert vm.exchange(b"\xff") == [_err("JSON parse error, stray '\ufffd'")]


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)).filter(
    lambda c: not (0xFDD0 <= ord(c) <= 0xFDEF or ord(c) & 0xFFFE == 0xFFFE)), max_size=20)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=_JSON, ascii_only=st.booleans(), cuts=st.lists(st.integers(0, 1 << 16)))
def test_any_json_value_parses_as_pythons_json_does(value: object, ascii_only: bool,
                                                    cuts: list[int]) -> None:
    """Python's json module is the oracle; the input arrives cut at arbitrary bytes."""
    data = json.dumps(value, ensure_ascii=ascii_only).encode() + b"\n"
    stream = JsonStream()
    out = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += stream.feed(data[start:cut])
        start = cut
    assert out == [(value, None)]
