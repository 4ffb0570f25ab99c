"""-qmp's socket: QEMU's option syntax and messages, and a socket emu never takes from another
process nor removes when it is not its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import MACHINES, ROOT, boot_args, emu_cmd, run_emu, run_qemu
from qemu.qmp.legacy import QEMUMonitorProtocol
from qemu.qmp.protocol import ConnectError

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


def _popen(cmd: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    _STARTED.append(proc)
    return proc


def _start(sock: str, *opts: str) -> subprocess.Popen:
    return _popen([*emu_cmd(), *boot_args("pc", "halt", "-qmp", f"unix:{sock}"
                                          + "".join(f",{o}" for o in opts))])


def _client(sock: str) -> QEMUMonitorProtocol:
    for _ in range(400):
        qmp = QEMUMonitorProtocol(sock)
        try:
            qmp.connect()
            return qmp
        except (OSError, ConnectError):
            time.sleep(0.05)
    raise AssertionError("no QMP socket")


def _quit(proc: subprocess.Popen, qmp: QEMUMonitorProtocol) -> None:
    assert qmp.cmd_obj({"execute": "quit"}) == {"return": {}}
    with contextlib.suppress(EOFError):  # emu may be gone already, as QEMU may
        qmp.close()
    assert proc.wait(timeout=30) == 0


def _same_error(args: list[str]) -> tuple[str, str]:
    """(emu's stderr, QEMU's stderr with its program name replaced by emu's)."""
    ours, qemu = run_emu(args), run_qemu("pc", args)
    assert ours.returncode == qemu.returncode == 1
    return ours.stderr.decode(), qemu.stderr.decode().replace(f"{MACHINES['pc'][1]}:", "emu:")


def test_a_socket_in_use_is_refused_and_keeps_serving(tmp_path: Path) -> None:
    sock = str(tmp_path / "m.qmp")
    first = _start(sock, "server=on", "wait=off")
    qmp = _client(sock)
    second = run_emu(boot_args("pc", "halt", "-qmp", f"unix:{sock},server=on,wait=off"))
    assert second.returncode == 1
    assert second.stderr.decode() == (f"emu: -qmp unix:{sock},server=on,wait=off: Failed to "
                                      f"bind socket to {sock}: Address already in use\n")
    assert qmp.cmd_obj({"execute": "query-status"})["return"]["status"] == "running"
    _quit(first, qmp)
    assert not os.path.exists(sock)


def test_a_stale_socket_is_replaced_and_other_files_are_left(tmp_path: Path) -> None:
    sock = str(tmp_path / "stale.qmp")
    with socket.socket(socket.AF_UNIX) as dead:  # bound, never listening: a dead process's
        dead.bind(sock)
    proc = _start(sock, "server=on", "wait=off")
    _quit(proc, _client(sock))
    regular = tmp_path / "file.qmp"
    regular.write_text("not a socket")  # QEMU 7.2 deletes it
    result = run_emu(boot_args("pc", "halt", "-qmp", f"unix:{regular},server=on,wait=off"))
    assert result.returncode == 1 and b"Address already in use" in result.stderr
    assert regular.read_text() == "not a socket"


def test_only_its_own_socket_is_removed(tmp_path: Path) -> None:
    sock = str(tmp_path / "own.qmp")
    proc = _start(sock, "server=on", "wait=off")
    qmp = _client(sock)
    os.unlink(sock)
    with socket.socket(socket.AF_UNIX) as other:  # another process's socket, same path
        other.bind(sock)
        other.listen(1)
        _quit(proc, qmp)
        assert os.path.exists(sock)


def test_too_long_a_path_is_qemus_error(tmp_path: Path) -> None:
    long = str(tmp_path / ("s" * 120))
    ours, qemu = _same_error(boot_args("pc", "halt", "-qmp", f"unix:{long},server=on,wait=off"))
    assert ours == qemu
    assert "is too long\nPath must be less than 108 bytes\n" in ours


def test_without_server_emu_connects_as_a_client(tmp_path: Path) -> None:
    missing = str(tmp_path / "nobody.qmp")
    ours, qemu = _same_error(boot_args("pc", "halt", "-qmp", f"unix:{missing}"))
    assert ours == qemu == (f"emu: -qmp unix:{missing}: Failed to connect to '{missing}': "
                            "No such file or directory\n")
    listening = str(tmp_path / "client.qmp")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(listening)
        server.listen(1)
        proc = _start(listening)
        conn, _ = server.accept()
        with conn, conn.makefile("rwb") as f:
            assert "QMP" in json.loads(f.readline())
            for msg in ({"execute": "qmp_capabilities"}, {"execute": "query-status"}):
                f.write(json.dumps(msg).encode() + b"\n")
                f.flush()
                assert "return" in json.loads(f.readline())
            f.write(b'{"execute": "quit"}\n')
            f.flush()
            assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""


def test_bad_wait_value_is_qemus_error(tmp_path: Path) -> None:
    sock = str(tmp_path / "w.qmp")
    ours, qemu = _same_error(boot_args("pc", "halt", "-qmp", f"unix:{sock},server=on,"
                                       "wait=maybe"))
    assert ours == qemu.splitlines(keepends=True)[0]  # QEMU adds a second "parse error" line
    assert ours.endswith("Parameter 'wait' expects 'on' or 'off'\n")


def test_client_mode_options_are_qemus(tmp_path: Path) -> None:
    sock = str(tmp_path / "c.qmp")
    for opts in (",wait=off", ",server=off,wait=on", ",foo=1"):
        ours, qemu = _same_error(boot_args("pc", "halt", "-qmp", f"unix:{sock}{opts}"))
        assert ours == qemu.splitlines(keepends=True)[0]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))  # a port nobody listens on
        port = probe.getsockname()[1]
        ours, qemu = _same_error(boot_args("pc", "halt", "-qmp", f"tcp:127.0.0.1:{port}"))
    assert ours == qemu == (f"emu: -qmp tcp:127.0.0.1:{port}: Failed to connect to "
                            f"'127.0.0.1:{port}': Connection refused\n")


def _first_line(proc: subprocess.Popen) -> str:
    return proc.stderr.readline().decode()


def test_wait_on_says_so_as_qemu_does(tmp_path: Path) -> None:
    lines = {}
    for binary in ("emu", "qemu"):
        sock = str(tmp_path / binary / "m.qmp")
        os.mkdir(tmp_path / binary)
        args = boot_args("pc", "halt", "-qmp", f"unix:{sock},server=on,wait=on")
        cmd = emu_cmd() if binary == "emu" else [MACHINES["pc"][1]]
        proc = _popen([*cmd, *args])
        lines[binary] = _first_line(proc).replace(str(tmp_path / binary), "DIR")
        _quit(proc, _client(sock))
    assert lines["emu"] == lines["qemu"].replace(f"{MACHINES['pc'][1]}:", "emu:").replace(
        "QEMU waiting", "emu waiting")
    assert lines["emu"] == ("emu: -qmp unix:DIR/m.qmp,server=on,wait=on: info: emu waiting "
                            "for connection on: disconnected:unix:DIR/m.qmp,server=on\n")


def test_a_signal_while_waiting_removes_the_socket(tmp_path: Path) -> None:
    sock = str(tmp_path / "w.qmp")
    proc = _start(sock, "server=on", "wait=on")
    assert "waiting for connection" in _first_line(proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    me = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert proc.stderr.read().decode() == \
        f"emu: terminating on signal 15 from pid {os.getpid()} ({me})\n"
    assert os.listdir(tmp_path) == []


def test_a_client_that_never_reads_is_dropped_and_the_next_one_served(tmp_path: Path) -> None:
    """Replies and events wait in an outbox of their own: a client that sends and never
    reads is disconnected once 128 MiB wait for it, and the monitor serves the next one
    (before, emu's monitor thread and then the machine blocked on the full socket)."""
    sock = str(tmp_path / "deaf.qmp")
    proc = _start(sock, "server=on", "wait=off")
    _client(sock).close()  # the socket is up
    deaf = socket.socket(socket.AF_UNIX)
    deaf.connect(sock)
    deaf.settimeout(60)  # a monitor that stops reading fails the test instead of hanging it
    echo = b'{"execute":"query-status","id":"' + b"e" * (1 << 20) + b'"}'
    try:
        deaf.sendall(b'{"execute":"qmp_capabilities"}')
        for _ in range(200):  # 200 MiB of replies, none read
            deaf.sendall(echo)
    except (BrokenPipeError, ConnectionResetError):  # emu hung up, as expected
        pass
    with socket.socket(socket.AF_UNIX) as next_client:
        next_client.settimeout(60)
        next_client.connect(sock)
        with next_client.makefile("rwb") as f:
            assert "QMP" in json.loads(f.readline())
            for msg in ({"execute": "qmp_capabilities"}, {"execute": "query-status"}):
                f.write(json.dumps(msg).encode() + b"\n")
                f.flush()
                reply = json.loads(f.readline())
            assert reply["return"]["status"] == "running"
    _quit(proc, _client(sock))
    deaf.close()
    assert b"client disconnected: it left" in proc.stderr.read()
