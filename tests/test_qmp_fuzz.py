"""A seeded fuzz run against a running emu's QMP monitor: 12,000 random and mutated
messages (deep nesting, long strings, invalid UTF-8, random types for every argument of every
command emu offers). Every answer must be JSON and no answer an internal error; the monitor
must still answer query-status at the end, and emu's stderr must hold no traceback."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, emu_cmd, image

MESSAGES = 12_000
#: bytes to printable ASCII other than the quote and the backslash
_ALLOWED = [c for c in range(0x20, 0x7F) if c not in b'"\\']
PRINTABLE = bytes(_ALLOWED[i % len(_ALLOWED)] for i in range(256))
SYNC_EVERY = 100
#: the arguments of the commands whose parameters emu knows (others get random names)
KNOWN_ARGS = {
    "dump-guest-memory": ["paging", "protocol", "detach", "begin", "length", "format"],
    "qmp_capabilities": ["enable"],
}


class Reader(threading.Thread):
    """Reads every line the monitor sends, so that it never blocks on a full socket."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.file = sock.makefile("rb")
        self.lines: list[bytes] = []
        self.cond = threading.Condition()
        self.eof = False

    def run(self) -> None:
        for line in self.file:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_for(self, marker: bytes, timeout: float = 120) -> list[bytes]:
        """All lines up to the one containing ``marker``; they are removed."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, line in enumerate(self.lines):
                    if marker in line:
                        out, self.lines = self.lines[: i + 1], self.lines[i + 1 :]
                        return out
                assert not self.eof, "the monitor closed the connection"
                assert self.cond.wait(max(0.0, deadline - time.monotonic())), \
                    f"no answer with {marker!r}"


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 4096, (1 << 63) - 1, 1 << 63, -(1 << 63), (1 << 64) - 1,
                           1 << 64, rng.randrange(-(1 << 70), 1 << 70)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e300, 3.0, rng.uniform(-1e9, 1e9)])
    if kind in (4, 5, 6, 7):
        return rng.choice(["", "elf", "file:", "fd:x", "oob", "x" * rng.randrange(300),
                           "é€😀", "\u0000", "file:/nonexistent/dir/x.core",
                           "kdump-zlib", "\\", "'\""])
    if kind in (8, 9):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["a", "enable", "paging", ""]): _value(rng, depth + 1)
            for _ in range(rng.randrange(3))}


def _command(rng: random.Random, commands: list[str], tmp: Path) -> dict:
    name = rng.choice(commands)
    params = [*KNOWN_ARGS.get(name, []), "bogus", "x" * rng.randrange(1, 40)]
    args = {p: _value(rng) for p in rng.sample(params, rng.randrange(len(params) + 1))}
    if name == "dump-guest-memory" and rng.random() < 0.1:  # now and then, a real dump
        args = {"paging": False, "protocol": f"file:{tmp}/f{rng.randrange(3)}.core",
                **({"detach": True} if rng.random() < 0.5 else {}),
                **({"begin": 0, "length": rng.choice([4096, -1, 1 << 20])}
                   if rng.random() < 0.5 else {})}
    if name == "quit":  # quit answers only with an error: an argument it does not take
        args["bogus"] = 1
    msg: dict = {"execute": name}
    if args or rng.random() < 0.3:
        msg["arguments"] = args
    if rng.random() < 0.5:
        msg["id"] = _value(rng)
    if rng.random() < 0.05:
        msg[rng.choice(["exec-oob", "control", "foo"])] = _value(rng)
    return msg


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(6)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[min(pos, len(b) - 1)]
        elif op == 1:
            b[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2:
            b[pos:pos] = rng.choice([b"\x80", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                     b"\xc0\x80", b"\xfe", b"\\u", b"\\ud800", b"'", b'"'])
        elif op == 3:
            b[pos:pos] = rng.choice([b"{", b"}", b"[", b"]", b",", b":", b"NaN", b"1e999"])
        elif op == 4:
            b = b[:pos]
        else:
            b += bytes(b)
    return bytes(b)


def _message(rng: random.Random, commands: list[str], tmp: Path) -> bytes:
    kind = rng.randrange(10)
    if kind < 4:
        return json.dumps(_command(rng, commands, tmp), ensure_ascii=rng.random() < 0.5).encode()
    if kind < 7:
        return _mutate(rng, json.dumps(_command(rng, commands, tmp)).encode())
    if kind == 7:
        depth = rng.choice([10, 1023, 1024, 1025, 3000])
        return (b'{"execute":"query-status","id":' + b"[" * depth + b"]" * depth
                + b"}")
    if kind == 8:
        size = rng.choices([1, 1000, 1 << 20], weights=[50, 45, 5])[0]
        return b'{"execute":"query-status","id":"' + rng.randbytes(size).translate(
            PRINTABLE) + b'"}'
    return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))


@pytest.fixture
def deep_json() -> Iterator[None]:
    """Echoed ids nest as deep as the monitor accepts (1024): deeper than json.loads goes
    with Python's default recursion limit."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10000)
    yield
    sys.setrecursionlimit(limit)


def test_fuzzed_monitor_keeps_serving(tmp_path: Path, deep_json: None) -> None:
    sock_path = str(tmp_path / "fuzz.qmp")
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [*emu_cmd(), "-M", "pc", "-m", "16M", "-display", "none", "-serial", "none",
             "-device", "vmcoreinfo", "-kernel", image("pc", "halt"),
             "-qmp", f"unix:{sock_path},server=on,wait=off"],
            stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        for _ in range(400):
            sock = socket.socket(socket.AF_UNIX)
            try:
                sock.connect(sock_path)
                break
            except OSError:
                sock.close()
                time.sleep(0.05)
        reader = Reader(sock)
        reader.start()
        reader.wait_for(b'"QMP"')
        sock.sendall(b'{"execute":"qmp_capabilities","id":"start"}')
        reader.wait_for(b'"start"')
        sock.sendall(b'{"execute":"query-commands","id":"commands"}')
        names = json.loads(reader.wait_for(b'"commands"')[-1])["return"]
        commands = [c["name"] for c in names] + ["no-such-command"]
        assert "dump-guest-memory" in commands
        rng = random.Random(20261201)
        answers = 0
        for n in range(1, MESSAGES + 1):
            sock.sendall(_message(rng, commands, tmp_path) + rng.choice([b"", b"\n", b" "]))
            if n % SYNC_EVERY == 0 or n == MESSAGES:
                # 0xFF ends whatever unbalanced input came before (QEMU's resynchronisation)
                sock.sendall(b'\xff\n{"execute":"query-status","id":"sync-%d"}\n' % n)
                lines = reader.wait_for(b'"sync-%d"' % n)
                for line in lines:
                    msg = json.loads(line)  # every answer is JSON
                    assert "internal error" not in msg.get("error", {}).get("desc", ""), msg
                answers += len(lines)
                status = json.loads(lines[-1])["return"]["status"]
                assert status in ("running", "paused")
                if status == "paused":  # a fuzzed stop: let the guest go on
                    sock.sendall(b'{"execute":"cont","id":"cont-%d"}\n' % n)
                    reader.wait_for(b'"cont-%d"' % n)
        assert answers > MESSAGES // 2
        sock.sendall(b'{"execute":"query-status","id":"end"}\n')
        assert json.loads(reader.wait_for(b'"end"')[-1])["return"]["running"] is True
        sock.sendall(b'{"execute":"quit"}\n')
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    err = stderr_path.read_text()
    assert "Traceback" not in err and "internal error" not in err, err[-2000:]
