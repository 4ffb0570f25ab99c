"""The QMP monitor, driven with the qemu.qmp client exactly as it drives qemu-system-*."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import drgn
import pytest
from conftest import MACHINES, ROOT, boot_args, emu_cmd
from qemu.qmp.legacy import QEMUMonitorProtocol
from qemu.qmp.protocol import ConnectError

from emu.qmp.commands import QmpError, qmp_dump_guest_memory


class Vm:
    """A running emulator (emu or QEMU) with a QMP socket: one helper, two binaries."""

    def __init__(self, binary: str, machine: str, image: str, tmp: Path, *extra: str,
                 wait_for: bytes = b"") -> None:
        self.sock = str(tmp / f"{binary}-{machine}.qmp")
        args = boot_args(machine, image, "-device", "vmcoreinfo", *extra, "-qmp",
                         f"unix:{self.sock},server=on,wait=off")
        cmd = emu_cmd() if binary == "emu" else [MACHINES[machine][1]]
        self.proc = subprocess.Popen([*cmd, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=ROOT,
                                     env=dict(os.environ, PYTHONPATH=str(ROOT)))
        self.out = b""
        #: events received but not yet asked for (events() takes them by name)
        self.backlog: list[dict] = []
        if wait_for:
            self.wait_output(wait_for)
        for _ in range(200):
            self.qmp = QEMUMonitorProtocol(self.sock)
            try:
                self.greeting = self.qmp.connect(negotiate=True)
                break
            except (OSError, ConnectError):
                time.sleep(0.05)
        else:
            raise AssertionError("no QMP socket")

    def wait_output(self, text: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out:
            assert time.monotonic() < deadline, self.out
            chunk = self.proc.stdout.read1(4096)
            assert chunk, self.out
            self.out += chunk

    def cmd(self, name: str, **args: object) -> dict:
        return self.qmp.cmd_obj({"execute": name, **({"arguments": args} if args else {})})

    def events(self, name: str, wait: bool = True) -> list[dict]:
        deadline = time.monotonic() + 10
        while True:
            self.backlog += self.qmp.get_events(wait=False)
            found = [e for e in self.backlog if e["event"] == name]
            if found or not wait or time.monotonic() > deadline:
                self.backlog = [e for e in self.backlog if e["event"] != name]
                return found
            time.sleep(0.02)

    def close(self) -> int:
        with contextlib.suppress(Exception):  # already gone after quit
            self.qmp.close()
        try:
            return self.proc.wait(timeout=10)
        finally:
            self.proc.kill()


BINARIES = ["emu", "qemu"]
HALT = {"pc": ("-append", "halt"), "virt": ()}


@pytest.fixture(params=BINARIES)
def binary(request: pytest.FixtureRequest) -> str:
    return request.param


def test_boot_dump_read_quit(binary: str, machine: str, tmp_path: Path) -> None:
    vm = Vm(binary, machine, "vmcoreinfo", tmp_path, *HALT[machine],
            wait_for=b"vmcoreinfo: done\n")
    core = tmp_path / "vm.core"
    assert vm.cmd("query-status")["return"]["status"] == "running"
    assert vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{core}") == {"return": {}}
    assert vm.events("DUMP_COMPLETED")[0]["data"]["result"]["status"] == "completed"
    prog = drgn.Program()
    prog.set_core_dump(str(core))
    assert prog["UTS_RELEASE"].string_() == b"6.1.0-emu-test"
    assert vm.cmd("quit") == {"return": {}}
    assert vm.close() == 0


def test_detached_dump_polled_with_query_dump(binary: str, tmp_path: Path) -> None:
    vm = Vm(binary, "pc", "vmcoreinfo", tmp_path, "-append", "halt",
            wait_for=b"vmcoreinfo: done\n")
    core = tmp_path / "detached.core"
    assert vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{core}",
                  detach=True) == {"return": {}}
    for _ in range(500):
        state = vm.cmd("query-dump")["return"]
        if state["status"] == "completed":
            break
        assert state["status"] == "active"
        time.sleep(0.01)
    assert state["status"] == "completed" and state["completed"] == state["total"] > 0
    assert core.stat().st_size >= (128 << 20) - 0x20000  # all but the VGA window
    vm.cmd("quit")
    vm.close()


def test_stop_cont_and_status(binary: str, tmp_path: Path) -> None:
    vm = Vm(binary, "pc", "halt", tmp_path, wait_for=b"halt:")
    assert vm.cmd("stop") == {"return": {}}
    assert vm.events("STOP")
    assert vm.cmd("query-status")["return"] == {"status": "paused", "singlestep": False,
                                                 "running": False}
    assert vm.cmd("cont") == {"return": {}}
    assert vm.events("RESUME")
    assert vm.cmd("query-status")["return"]["running"] is True
    assert vm.cmd("system_reset") == {"return": {}}
    reset = vm.events("RESET")[0]["data"]
    assert reset == {"guest": False, "reason": "host-qmp-system-reset"}
    vm.wait_output(b"halt:", timeout=30)  # the kernel ran again after the reset
    vm.cmd("quit")
    assert vm.events("SHUTDOWN")[0]["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert vm.close() == 0


BAD_COMMANDS = [
    ({"execute": "no-such-command"}, "CommandNotFound"),
    ({"execute": "dump-guest-memory", "arguments": {"protocol": "file:/tmp/x"}},
     "GenericError"),
    ({"execute": "dump-guest-memory", "arguments": {"paging": "yes", "protocol": "file:/x"}},
     "GenericError"),
    ({"execute": "dump-guest-memory", "arguments": {"paging": False, "protocol": "tcp:x"}},
     "GenericError"),
    ({"execute": "dump-guest-memory", "arguments": {"paging": False,
                                                    "protocol": "file:/nonexistent/dir/x"}},
     "GenericError"),
    ({"execute": "dump-guest-memory", "arguments": {"paging": False, "protocol": "file:/x",
                                                    "bogus": 1}}, "GenericError"),
    ({"execute": "query-status", "arguments": []}, "GenericError"),
    ({"execute": 42}, "GenericError"),
    ({"arguments": {}}, "GenericError"),
]


@pytest.mark.parametrize("command, error_class", BAD_COMMANDS,
                         ids=[json.dumps(c)[:50] for c, _ in BAD_COMMANDS])
def test_bad_commands_get_qemus_error_class(binary: str, command: dict, error_class: str,
                                            tmp_path: Path) -> None:
    vm = Vm(binary, "pc", "halt", tmp_path, wait_for=b"halt:")
    reply = vm.qmp.cmd_obj(command)
    assert reply["error"]["class"] == error_class, reply
    assert vm.cmd("query-status")["return"]["status"] == "running"
    vm.cmd("quit")
    vm.close()


def _raw(sock: str) -> tuple[socket.socket, object]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile("rwb")
    json.loads(f.readline())
    return s, f


def _send(f, data: bytes) -> dict:
    f.write(data)
    f.flush()
    return json.loads(f.readline())


def test_malformed_input_is_answered_and_the_server_stays_up(tmp_path: Path) -> None:
    vm = Vm("emu", "pc", "halt", tmp_path, wait_for=b"halt:")
    vm.qmp.close()
    s, f = _raw(vm.sock)
    assert _send(f, b'{"execute": "query-status"}\n')["error"]["desc"] == \
        "Expecting capabilities negotiation with 'qmp_capabilities'"
    assert _send(f, b'{"execute": "qmp_capabilities", "id": 7}\n') == {"return": {}, "id": 7}
    assert _send(f, b"{not json}\n")["error"]["class"] == "GenericError"
    assert _send(f, b"[1, 2]\n")["error"]["desc"] == "QMP input must be a JSON object"
    assert _send(f, b'"text"\n')["error"]["desc"] == "QMP input must be a JSON object"
    huge = b'{"execute": "query-status", "arguments": {"x": "' + b"a" * (2 << 20) + b'"}}\n'
    assert _send(f, huge)["error"]["class"] == "GenericError"
    assert _send(f, b'{"execute": "query-status", "id": "ok"}\n')["return"]["status"] == \
        "running"
    f.close()
    s.close()
    vm.qmp = QEMUMonitorProtocol(vm.sock)  # a second client, after the first left
    vm.qmp.connect()
    assert vm.cmd("query-status")["return"]["running"] is True
    vm.cmd("quit")
    assert vm.close() == 0


def test_unix_socket_is_private(tmp_path: Path) -> None:
    vm = Vm("emu", "pc", "halt", tmp_path, wait_for=b"halt:")
    assert stat.S_IMODE(os.stat(vm.sock).st_mode) == 0o600
    names = {c["name"] for c in vm.cmd("query-commands")["return"]}
    assert {"qmp_capabilities", "stop", "cont", "quit", "dump-guest-memory", "query-dump",
            "query-dump-guest-memory-capability", "query-version"} <= names
    # (QEMU's order; every kdump format, with emu's dependencies installed)
    assert vm.cmd("query-dump-guest-memory-capability")["return"] == {"formats": [
        "elf", "kdump-zlib", "kdump-lzo", "kdump-snappy", "kdump-raw-zlib", "kdump-raw-lzo",
        "kdump-raw-snappy", "kdump-zstd", "kdump-raw-zstd"]}
    assert vm.greeting["QMP"]["version"]["qemu"]["major"] == 7
    vm.cmd("quit")
    vm.close()


def test_unknown_descriptors_and_other_formats_are_refused_clearly(tmp_path: Path) -> None:
    vm = Vm("emu", "pc", "halt", tmp_path, wait_for=b"halt:")
    reply = vm.cmd("dump-guest-memory", paging=False, protocol="fd:dumpfd")
    assert reply["error"]["desc"] == "File descriptor named 'dumpfd' has not been found"
    reply = vm.cmd("dump-guest-memory", paging=False, protocol=f"file:{tmp_path}/x",
                   format="win-dmp")
    assert reply["error"]["desc"] == ("dump format 'win-dmp' is not supported by emu yet "
                                      "(supported: elf, kdump-zlib, kdump-lzo, kdump-snappy, "
                                      "kdump-raw-zlib, kdump-raw-lzo, kdump-raw-snappy, "
                                      "kdump-zstd, kdump-raw-zstd)")
    assert not (tmp_path / "x").exists()
    vm.cmd("quit")
    vm.close()


def test_a_second_dump_while_one_runs_is_refused() -> None:
    class FakeServer:
        class dump:
            status = "active"
        machine = None

    with pytest.raises(QmpError, match=r"There is a dump in process, please wait\."):
        qmp_dump_guest_memory(FakeServer(), {"paging": False, "protocol": "file:/tmp/x"})


def test_wait_on_holds_the_guest_until_a_client_connects(tmp_path: Path) -> None:
    sock = str(tmp_path / "wait.qmp")
    proc = subprocess.Popen([*emu_cmd(), *boot_args("pc", "hello"), "-qmp",
                             f"unix:{sock},server=on,wait=on"], stdout=subprocess.PIPE,
                            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "the guest must not run before a client connects"
        qmp = QEMUMonitorProtocol(sock)
        qmp.connect()
        assert proc.wait(timeout=20) == 1
        assert proc.stdout.read().startswith(b"Hello from the guest!")
        qmp.close()
    finally:
        proc.kill()
        proc.wait()


def test_tcp_listener_warns_unless_loopback(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for host, warns in (("127.0.0.1", False), ("0.0.0.0", True)):
        proc = subprocess.Popen([*emu_cmd(), *boot_args("pc", "halt"), "-qmp",
                                 f"tcp:{host}:{port},server=on,wait=off"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        try:
            for _ in range(200):
                qmp = QEMUMonitorProtocol(("127.0.0.1", port))
                try:
                    qmp.connect()
                    break
                except (OSError, ConnectError):
                    time.sleep(0.05)
            assert qmp.cmd_obj({"execute": "quit"}) == {"return": {}}
            with contextlib.suppress(EOFError):  # emu may already be gone, as QEMU may
                qmp.close()
            assert proc.wait(timeout=10) == 0
            assert (b"warning: the monitor listens on a non-loopback address" in
                    proc.stderr.read()) == warns
        finally:
            proc.kill()
            proc.wait()


def test_panic_pauses_and_reports_like_qemu(binary: str, tmp_path: Path) -> None:
    vm = Vm(binary, "pc", "panic", tmp_path, "-device", "pvpanic", "-action", "panic=pause",
            "-S")
    assert vm.cmd("cont") == {"return": {}}  # the guest starts once the client is ready
    vm.wait_output(b"panic: pvpanic features 0x03\n")
    assert vm.events("GUEST_PANICKED")[0]["data"] == {"action": "pause"}
    assert vm.events("STOP")
    assert vm.cmd("query-status")["return"] == {"status": "guest-panicked",
                                                 "singlestep": False, "running": False}
    vm.cmd("quit")
    assert vm.close() == 0


def test_panic_shutdown_with_a_dump(tmp_path: Path) -> None:
    core = tmp_path / "panic.core"
    vm = Vm("emu", "pc", "panic", tmp_path, "-device", "pvpanic", "--dump-on-panic", str(core),
            "-S")
    assert vm.cmd("cont") == {"return": {}}  # no event is sent before the client listens
    vm.wait_output(b"panic: guest panicking\n")
    assert vm.events("GUEST_PANICKED")[0]["data"] == {"action": "poweroff"}
    assert vm.events("SHUTDOWN")[0]["data"] == {"guest": True, "reason": "guest-panic"}
    assert vm.close() == 0
    assert b"still running" not in vm.out + vm.proc.stdout.read()
    prog = drgn.Program()
    prog.set_core_dump(str(core))
    assert prog["UTS_RELEASE"].string_() == b"6.1.0-emu-test"


def test_qemu_shuts_down_on_panic_by_default_too(tmp_path: Path) -> None:
    from conftest import run_emu, run_qemu

    args = boot_args("pc", "panic", "-device", "vmcoreinfo", "-device", "pvpanic")
    ours, qemu = run_emu(args), run_qemu("pc", args)
    assert ours.stdout == qemu.stdout and ours.returncode == qemu.returncode == 0


def test_plugins_add_qmp_commands(tmp_path: Path) -> None:
    import threading

    from emu.config import MachineConfig
    from emu.machine import Machine
    from emu.plugins import hookimpl
    from emu.plugins.manager import PluginManager
    from emu.qmp.server import QmpServer, parse_qmp_option

    class Plugin:
        @hookimpl
        def emu_qmp_commands(self, machine: object) -> dict:
            def ram(server: object, args: dict) -> dict:
                if args:
                    raise QmpError("x-ram-size takes no arguments")
                return {"bytes": server.machine.address_space.ram_size}
            return {"x-ram-size": ram}

    pm = PluginManager(autoload=False)
    pm.register(Plugin(), name="test-qmp-plugin")
    m = Machine(MachineConfig(machine="pc", kernel=str(ROOT / "guest_images/x86_64/halt.elf"),
                              serial=["none"]), plugins=pm)
    sock = str(tmp_path / "plugin.qmp")
    server = QmpServer(m, parse_qmp_option(f"unix:{sock},server=on,wait=off"))
    server.start()
    t = threading.Thread(target=m.run)
    t.start()
    try:
        qmp = QEMUMonitorProtocol(sock)
        qmp.connect()
        assert qmp.cmd_obj({"execute": "x-ram-size"}) == {"return": {"bytes": 128 << 20}}
        assert qmp.cmd_obj({"execute": "x-ram-size", "arguments": {"a": 1}})["error"] == {
            "class": "GenericError", "desc": "x-ram-size takes no arguments"}
        names = {c["name"] for c in qmp.cmd_obj({"execute": "query-commands"})["return"]}
        assert "x-ram-size" in names
        qmp.cmd_obj({"execute": "quit"})
        qmp.close()
    finally:
        t.join(10)
        server.close()
        m.close()
    assert m.exit_status == 0
