"""dump-guest-memory and query-dump over QMP, message for message against QEMU 7.2: the
events and their order, what query-dump counts, the error texts, and that no failure leaves
a dump "active"."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, boot_args, emu_cmd
from elftools.elf.elffile import ELFFile

INT64_MAX = (1 << 63) - 1


class Monitor:
    """An emulator and a raw QMP connection that keeps events in order with replies."""

    def __init__(self, binary: str, tmp: Path, *extra: str, image: str = "halt") -> None:
        self.sock_path = str(tmp / f"{binary}.qmp")
        args = boot_args("pc", image, *extra, "-qmp",
                         f"unix:{self.sock_path},server=on,wait=off")
        cmd = emu_cmd() if binary == "emu" else [MACHINES["pc"][1]]
        self.proc = subprocess.Popen([*cmd, *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=ROOT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        _STARTED.append(self.proc)
        for _ in range(400):
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(self.sock_path)
                break
            except OSError:
                self.sock.close()
                time.sleep(0.05)
        self.file = self.sock.makefile("rb")
        assert "QMP" in self.read()
        assert self.cmd("qmp_capabilities") == [{"return": {}}]

    def read(self) -> dict:
        line = self.file.readline()
        assert line, "the monitor closed the connection"
        msg = json.loads(line)
        msg.pop("timestamp", None)
        return msg

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, name: str, **args: object) -> list[dict]:
        """Send a command; the messages up to and including its reply."""
        msg: dict = {"execute": name, **({"arguments": args} if args else {})}
        self.send(json.dumps(msg).encode() + b"\n")
        return self.until_reply()

    def until_reply(self) -> list[dict]:
        out = [self.read()]
        while "event" in out[-1]:
            out.append(self.read())
        return out

    def until_event(self, name: str) -> list[dict]:
        out = [self.read()]
        while out[-1].get("event") != name:
            out.append(self.read())
        return out

    def reply(self, name: str, **args: object) -> dict:
        """The reply alone (events dropped)."""
        return self.cmd(name, **args)[-1]

    def quit(self) -> str:
        """Quit; returns stderr."""
        with self.sock, contextlib.suppress(ConnectionResetError):  # QEMU may reset it
            self.send(b'{"execute":"quit"}\n')
            while self.file.readline():
                pass
        assert self.proc.wait(timeout=30) == 0
        return self.proc.stderr.read().decode()


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    """A failing test must not leave its emulator running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(params=["emu", "qemu"])
def binary(request: pytest.FixtureRequest) -> str:
    return request.param


def _event(name: str, data: dict | None = None) -> dict:
    return {"event": name} if data is None else {"event": name, "data": data}


def _err(desc: str) -> dict:
    return {"error": {"class": "GenericError", "desc": desc}}


def _dumped(total: int) -> dict:
    return {"status": "completed", "completed": total, "total": total}


def _guest_bytes(core: Path) -> int:
    """The guest memory a core holds: its PT_LOAD sizes."""
    with open(core, "rb") as f:
        return sum(s["p_memsz"] for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD")


def test_synchronous_dump_events_in_qemus_order(binary: str, tmp_path: Path) -> None:
    vm = Monitor(binary, tmp_path)
    core = tmp_path / "sync.core"
    answer = vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{core}", begin=0,
                    length=-1)  # QEMU: from 0 with a negative length is everything
    total = _guest_bytes(core)
    assert total >= 127 << 20  # RAM less the VGA window, and the BIOS ROM
    assert answer == [_event("STOP"), _event("DUMP_COMPLETED", {"result": _dumped(total)}),
                      _event("RESUME"), {"return": {}}]
    assert vm.reply("query-dump") == {"return": _dumped(total)}
    assert vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{core}", begin=1,
                  length=4096)[1] == _event("DUMP_COMPLETED", {"result": _dumped(4096)})
    assert stat.S_IMODE(core.stat().st_mode) & 0o077 == 0  # QEMU: 0400, emu: 0600
    assert vm.cmd("quit")[0] == _event("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})


def test_a_detached_dump_keeps_the_guest_stopped_until_it_completes(binary: str,
                                                                    tmp_path: Path) -> None:
    vm = Monitor(binary, tmp_path)
    core = tmp_path / "detached.core"
    assert vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{core}",
                  detach=True) == [_event("STOP"), {"return": {}}]
    events = vm.until_event("RESUME")
    assert events == [_event("DUMP_COMPLETED", {"result": _dumped(_guest_bytes(core))}),
                      _event("RESUME")]
    assert vm.reply("query-status")["return"]["status"] == "running"
    vm.quit()


BAD = [
    ({"protocol": "file:"}, "Could not open '': No such file or directory", False),
    ({"protocol": "file:{tmp}/x.core/"}, "Could not open '{tmp}/x.core/': Is a directory",
     False),
    ({"protocol": "file:{tmp}/no/x.core"},
     "Could not open '{tmp}/no/x.core': No such file or directory", False),
    ({"protocol": "file:{tmp}/a", "begin": INT64_MAX + 1, "length": 4096},
     "Invalid parameter type for 'begin', expected: integer", False),
    ({"protocol": "file:{tmp}/a", "begin": 0, "length": 1 << 64},
     "Invalid parameter type for 'length', expected: integer", False),
    ({"protocol": "file:{tmp}/a", "begin": 0, "length": 1.5},
     "Invalid parameter type for 'length', expected: integer", False),
    ({"protocol": "file:{tmp}/a", "begin": 0}, "Parameter 'length' is missing", False),
    ({"protocol": "file:{tmp}/a", "format": "foo"},
     "Parameter 'format' does not accept value 'foo'", False),
    ({"protocol": "nfs:{tmp}/a"}, "Invalid parameter 'protocol'", False),
    ({"protocol": "file:{tmp}/a", "begin": 0, "length": 0}, "Invalid parameter 'length'", True),
    ({"protocol": "file:{tmp}/a", "begin": -1, "length": 4096}, "Invalid parameter 'begin'",
     True),
    ({"protocol": "file:{tmp}/a", "begin": 1 << 32, "length": 4096},
     "dump: no guest memory to dump", True),
    ({"protocol": "file:{tmp}/a", "begin": 4096, "length": -1},
     "dump: no guest memory to dump", True),
]


@pytest.mark.parametrize("args, desc, fails", BAD, ids=[b[1][:40] for b in BAD])
def test_refused_dumps_change_nothing_and_the_next_one_works(binary: str, tmp_path: Path,
                                                            args: dict, desc: str,
                                                            fails: bool) -> None:
    vm = Monitor(binary, tmp_path)
    args = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in args.items()}
    answer = vm.cmd("dump-guest-memory", paging=False, **args)
    assert answer[-1] == _err(desc.format(tmp=tmp_path))
    if binary == "emu":  # QEMU sends STOP and RESUME around the range checks
        assert answer == [answer[-1]]
    # a dump refused by its range checks is "failed" (QEMU's status), others change nothing;
    # a failed dump counts no bytes (QEMU 7.2 keeps a total for begin -1)
    state = vm.reply("query-dump")["return"]
    assert state["status"] == ("failed" if fails else "none")
    if binary == "emu":
        assert state == {"status": state["status"], "completed": 0, "total": 0}
    if binary == "emu":
        assert sorted(os.listdir(tmp_path)) == ["emu.qmp"]  # not even an empty file
    good = tmp_path / "good.core"
    assert vm.reply("dump-guest-memory", paging=False, protocol=f"file:{good}") == \
        {"return": {}}
    assert vm.reply("query-dump") == {"return": _dumped(_guest_bytes(good))}
    vm.quit()


def _reader(fifo: Path) -> tuple[int, int]:
    """Open ``fifo`` for reading (and a writer end, so reads wait instead of seeing EOF)."""
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(r, True)
    return r, os.open(fifo, os.O_WRONLY)


def test_a_second_dump_waits_for_the_first(binary: str, tmp_path: Path) -> None:
    vm = Monitor(binary, tmp_path)
    fifo = tmp_path / "slow.fifo"
    os.mkfifo(fifo)
    r, w = _reader(fifo)
    assert vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{fifo}",
                  detach=True)[-1] == {"return": {}}
    state = vm.reply("query-dump")["return"]
    assert state["status"] == "active" and state["total"] >= 127 << 20
    assert vm.reply("dump-guest-memory", paging=False,
                    protocol=f"file:{tmp_path}/b.core") == _err(
        "There is a dump in process, please wait.")
    os.close(w)
    size = 0
    while chunk := os.read(r, 1 << 20):
        size += len(chunk)
    os.close(r)
    assert vm.until_event("DUMP_COMPLETED")[-1]["data"]["result"] == _dumped(state["total"])
    assert size > state["total"]
    assert vm.reply("dump-guest-memory", paging=False,
                    protocol=f"file:{tmp_path}/b.core") == {"return": {}}
    vm.quit()


def test_a_dump_failing_midway_is_failed_not_active(tmp_path: Path) -> None:
    vm = Monitor("emu", tmp_path)
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a /dev/full
    error = f"could not write '{full}': No space left on device"
    assert vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{full}") == [
        _event("STOP"),
        _event("DUMP_COMPLETED", {"result": {"status": "failed", "completed": 0, "total": 0},
                                  "error": error}),
        _event("RESUME"), _err(error)]
    assert vm.reply("query-dump") == {"return": {"status": "failed", "completed": 0,
                                                 "total": 0}}
    assert vm.reply("dump-guest-memory", paging=False,
                    protocol=f"file:{tmp_path}/next.core") == {"return": {}}
    assert stat.S_ISCHR(full.lstat().st_mode)
    vm.quit()


def test_no_guest_note_is_qemus_warning(binary: str, tmp_path: Path) -> None:
    vm = Monitor(binary, tmp_path, "-device", "vmcoreinfo")
    assert vm.reply("dump-guest-memory", paging=False,
                    protocol=f"file:{tmp_path}/nonote.core") == {"return": {}}
    assert vm.quit() == "warning: guest note is not present\n"


def test_a_path_split_inside_a_character_is_one_path(binary: str, tmp_path: Path) -> None:
    vm = Monitor(binary, tmp_path)
    msg = json.dumps({"execute": "dump-guest-memory", "arguments": {
        "paging": False, "protocol": f"file:{tmp_path}/ö.core"}}, ensure_ascii=False).encode()
    cut = msg.index("ö".encode()) + 1
    vm.send(msg[:cut])
    time.sleep(0.2)  # two reads on the other side (the result does not depend on it)
    vm.send(msg[cut:] + b"\n")
    assert vm.until_reply()[-1] == {"return": {}}
    assert "ö.core" in os.listdir(tmp_path)
    vm.quit()


def test_sigterm_during_a_dump_finishes_it_answers_and_cleans_up(tmp_path: Path) -> None:
    vm = Monitor("emu", tmp_path)
    fifo = tmp_path / "slow.fifo"
    os.mkfifo(fifo)
    r, w = _reader(fifo)
    vm.send(json.dumps({"execute": "dump-guest-memory", "arguments": {
        "paging": False, "protocol": f"file:{fifo}"}}).encode() + b"\n")
    assert vm.read() == _event("STOP")
    first = os.read(r, 65536)  # the dump is under way, waiting for its reader
    vm.proc.terminate()
    time.sleep(3)  # longer than emu used to wait before giving up on the CPU thread
    assert vm.proc.poll() is None, "emu must finish the dump before it exits"
    os.close(w)
    size = len(first)
    while chunk := os.read(r, 1 << 20):
        size += len(chunk)
    os.close(r)
    rest = []
    while line := vm.file.readline():
        rest.append(json.loads(line))
    names = [m.get("event", "return" if "return" in m else "error") for m in rest]
    assert names == ["SHUTDOWN", "DUMP_COMPLETED", "RESUME", "return"]
    total = rest[1]["data"]["result"]["total"]
    assert rest[1]["data"]["result"] == _dumped(total) and total >= 127 << 20
    assert vm.proc.wait(timeout=30) == 0
    assert size > total
    assert sorted(os.listdir(tmp_path)) == ["slow.fifo"]  # the socket is gone too
    assert "Traceback" not in vm.proc.stderr.read().decode()


def test_a_second_signal_ends_a_dump_that_cannot_finish(tmp_path: Path) -> None:
    vm = Monitor("emu", tmp_path)
    fifo = tmp_path / "stuck.fifo"
    os.mkfifo(fifo)
    r, w = _reader(fifo)  # a reader that never reads: the dump waits forever
    vm.send(json.dumps({"execute": "dump-guest-memory", "arguments": {
        "paging": False, "protocol": f"file:{fifo}"}}).encode() + b"\n")
    assert vm.read() == _event("STOP")
    vm.proc.terminate()
    time.sleep(3)
    assert vm.proc.poll() is None  # the first signal waits for the dump
    vm.proc.terminate()
    assert vm.proc.wait(timeout=30) == 0
    os.close(r)
    os.close(w)
