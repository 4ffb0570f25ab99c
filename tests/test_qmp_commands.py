"""The QMP commands of a dump or debugging workflow, run with the same qemu.qmp client on emu
and on QEMU 7.2 and compared: the same members and types, the same values wherever they
do not depend on the host, the same error objects. Where emu honestly differs, the test
says why (docs/qmp.md lists the differences)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import image
from elftools.elf.elffile import ELFFile
from qemu.qmp.legacy import QEMUMonitorProtocol
from test_qmp import Vm


@contextlib.contextmanager
def pair(machine: str, tmp: Path, *extra: str, image_name: str = "halt"
         ) -> Iterator[tuple[Vm, Vm]]:
    """emu and QEMU booting the same image with the same options, each with a monitor."""
    wait = b"halt:" if image_name == "halt" else b""
    vms: list[Vm] = []
    try:
        for binary in ("emu", "qemu"):
            vms.append(Vm(binary, machine, image_name, tmp, *extra, wait_for=wait))
        yield vms[0], vms[1]
    finally:
        for vm in vms:
            with contextlib.suppress(Exception):
                vm.cmd("quit")
            vm.close()


def shape(value: Any) -> Any:
    """What a reply looks like without its values: keys and JSON types."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def ret(vm: Vm, name: str, **args: Any) -> Any:
    reply = vm.cmd(name, **args)
    assert "return" in reply, (vm.proc.args[0], name, reply)
    return reply["return"]


# -- queries --------------------------------------------------------------------------------


def test_query_name_gives_the_name_given_with_dash_name(tmp_path: Path) -> None:
    with pair("pc", tmp_path, "-name", "guest=scratch,process=emu-scratch") as (emu, qemu):
        assert ret(emu, "query-name") == ret(qemu, "query-name") == {"name": "scratch"}
    with pair("virt", tmp_path, "-name", "plain") as (emu, qemu):
        assert ret(emu, "query-name") == ret(qemu, "query-name") == {"name": "plain"}


def test_queries_match_qemu(machine: str, tmp_path: Path) -> None:
    with pair(machine, tmp_path) as (emu, qemu):
        for name in ("query-name", "query-target", "query-memory-size-summary"):
            assert ret(emu, name) == ret(qemu, name), name

        # emu has no KVM at all; QEMU's x86_64 binary is built with it (present, not enabled)
        ours, theirs = ret(emu, "query-kvm"), ret(qemu, "query-kvm")
        assert shape(ours) == shape(theirs)
        assert ours == {"enabled": False, "present": False} and theirs["enabled"] is False

        # QEMU's pc can wake a suspended guest through its ACPI PM device; emu has no ACPI
        ours, theirs = ret(emu, "query-current-machine"), ret(qemu, "query-current-machine")
        assert shape(ours) == shape(theirs)
        assert ours == {"wakeup-suspend-support": False}
        if machine == "virt":
            assert ours == theirs

        # one CPU with the same ids, QOM path and target; thread-id is the host thread
        # that runs the CPU
        ours, theirs = ret(emu, "query-cpus-fast"), ret(qemu, "query-cpus-fast")
        assert shape(ours) == shape(theirs) and len(ours) == 1
        tid = ours[0].pop("thread-id")
        theirs[0].pop("thread-id")
        assert ours == theirs
        assert os.path.isdir(f"/proc/{emu.proc.pid}/task/{tid}")

        # emu lists the board of the running architecture; QEMU lists every versioned one
        ours, theirs = ret(emu, "query-machines"), ret(qemu, "query-machines")
        qemu_by_name = {m["name"]: m for m in theirs}
        assert [m["name"] for m in ours] == [{"pc": "pc-i440fx-7.2", "virt": "virt-7.2"}[
            machine]]
        for m in ours:
            q = qemu_by_name[m["name"]]
            # emu has no default machine (-M is required): no is-default member
            assert set(q) - set(m) <= {"is-default"} and set(m) <= set(q)
            for key in ("name", "alias", "deprecated", "numa-mem-supported",
                        "default-ram-id"):
                assert m[key] == q[key], key
            # emu emulates one CPU and plugs none in; -smp accepts up to 255, as QEMU's pc
            assert m["hotpluggable-cpus"] is False and m["cpu-max"] == 255
            assert shape(m["default-cpu-type"]) == shape(q["default-cpu-type"])

        # the same chardevs, but QEMU's parallel0 (emu has no parallel port)
        ours, theirs = ret(emu, "query-chardev"), ret(qemu, "query-chardev")
        by_label = {c["label"]: c for c in theirs}
        assert set(by_label) - {c["label"] for c in ours} == {"parallel0"}
        for c in ours:
            expected = dict(by_label[c["label"]])
            expected["filename"] = expected["filename"].replace(qemu.sock, emu.sock)
            assert c == expected


def test_query_cpus_fast_answers_while_the_guest_computes(tmp_path: Path) -> None:
    """The CPU's thread need not stop to be named: a guest in a long loop that touches no
    device still gets its answer (emu serves machine requests only at device accesses)."""
    vm = Vm("emu", "pc", "spin", tmp_path, "-append", "iters=100000000000")
    try:
        cpus = ret(vm, "query-cpus-fast")
        assert os.path.isdir(f"/proc/{vm.proc.pid}/task/{cpus[0]['thread-id']}")
        assert ret(vm, "query-status")["status"] == "running"
    finally:
        vm.proc.kill()
        vm.close()


def test_query_chardev_names_files_and_tcp_monitors_as_qemu(tmp_path: Path) -> None:
    import socket

    answers = {}
    for binary in ("emu", "qemu"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        out = tmp_path / f"{binary}-serial.txt"
        vm = Vm(binary, "pc", "halt", tmp_path, "-serial", f"file:{out}", "-serial", "null",
                "-serial", "none", "-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off",
                wait_for=b"halt:")
        try:
            text = json.dumps(ret(vm, "query-chardev"))
            answers[binary] = json.loads(text.replace(vm.sock, "SOCK").replace(str(port),
                                                                                "PORT"))
        finally:
            vm.cmd("quit")
            vm.close()
    ours = {c["label"]: c for c in answers["emu"]}
    theirs = {c["label"]: c for c in answers["qemu"]}
    # "-serial none" makes no chardev; the tcp monitor has no client
    assert set(theirs) - set(ours) == {"parallel0"}
    for label, c in ours.items():
        assert c == theirs[label], label
    assert ours["serial1"]["filename"] == "file"
    # monitors are numbered in -qmp order: the tcp one (no client) comes first here
    assert ours["compat_monitor0"]["filename"] == "disconnected:tcp:127.0.0.1:PORT,server=on"
    assert ours["compat_monitor1"]["filename"] == "unix:SOCK,server=on"


# -- argument checking and errors -----------------------------------------------------------

ERRORS = [
    ("query-name", {"x": 1}),
    ("query-cpus-fast", {"x": 1}),
    ("pmemsave", {"val": 0, "size": 16}),
    ("pmemsave", {"val": "x", "size": 16, "filename": "/tmp/x"}),
    ("pmemsave", {"val": 1.5, "size": 16, "filename": "/tmp/x"}),
    ("pmemsave", {"val": 1 << 64, "size": 16, "filename": "/tmp/x"}),
    ("pmemsave", {"val": 0, "size": True, "filename": "/tmp/x"}),
    ("pmemsave", {"val": 0, "size": 16, "filename": "/nonexistent/dir/x"}),
    ("pmemsave", {"val": 0, "size": 16, "filename": "/tmp/x", "extra": 1}),
    ("memsave", {"val": 0, "size": 16, "filename": "/tmp/x", "cpu-index": 1}),
    ("memsave", {"val": 0, "size": 16, "filename": "/tmp/x", "cpu-index": -1}),
    ("memsave", {"val": 0, "size": 16, "filename": "/tmp/x", "cpu-index": True}),
    ("memsave", {"val": 0x100000, "size": 16, "filename": "/nonexistent/dir/x"}),
    ("memsave", {"val": 0x100000, "size": 16, "filename": "/tmp"}),
    ("memsave", {"val": -1, "size": 16, "filename": "/dev/null"}),
    ("memsave", {"val": 0x800000000000, "size": 16, "filename": "/dev/null"}),
    ("getfd", {"fdname": "x"}),
    ("getfd", {}),
    ("closefd", {"fdname": "x"}),
    ("add-fd", {}),
    ("add-fd", {"fdset-id": "1"}),
    ("remove-fd", {"fdset-id": 1}),
    ("remove-fd", {"fdset-id": 1, "fd": 3}),
    ("remove-fd", {"fd": 3}),
    ("set-action", {"reboot": "bogus"}),
    ("set-action", {"panic": "poweroff"}),
    ("set-action", {"watchdog": 1}),
    ("set-action", {"foo": "x", "reboot": "bogus"}),
    ("set-action", {"foo": "x"}),
    ("dumpdtb", {"filename": "/tmp/x"}),
    ("dumpdtb", {}),
    ("qom-list", {"path": "/nope"}),
    ("qom-list", {"path": "nope"}),
    ("qom-list", {"path": ""}),
    ("qom-list", {"path": "device[0]"}),
    ("qom-list", {}),
    ("qom-get", {"path": "/machine", "property": "nope"}),
    ("qom-get", {"path": "/nope", "property": "type"}),
    ("qom-get", {"path": "/machine/peripheral-anon/device[0]", "property": "nope"}),
    ("qom-get", {"path": "/machine"}),
    ("query-qmp-schema", {"x": 1}),
    ("system_powerdown", {"x": 1}),
    ("query-status", {"x": 1}),
    ("dump-guest-memory", {"protocol": 1}),
    ("dump-guest-memory", {"paging": False, "protocol": "file:/tmp/x", "begin": "x",
                           "length": 1}),
    ("dump-guest-memory", {"paging": False, "protocol": "file:/tmp/x", "format": "nope"}),
    ("dump-guest-memory", {"paging": False, "protocol": "file:/tmp/x", "begin": 0}),
]


def test_errors_match_qemu(tmp_path: Path) -> None:
    """Each bad call gets QEMU's error object, word for word; the monitor stays up."""
    with pair("pc", tmp_path, "-append", "halt") as (emu, qemu):
        for name, args in ERRORS:
            ours, theirs = emu.cmd(name, **args), qemu.cmd(name, **args)
            assert "error" in theirs, (name, args, theirs)
            assert ours == theirs, (name, args)
        assert ret(emu, "query-status")["running"] is True


# -- pmemsave / memsave ----------------------------------------------------------------------


def _first_load(machine: str) -> tuple[int, bytes]:
    with open(image(machine, "halt"), "rb") as f:
        seg = next(s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD")
        return seg["p_paddr"], seg.data()


def _symbol(machine: str, name: str) -> int:
    with open(image(machine, "halt"), "rb") as f:
        return ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0][
            "st_value"]


def test_pmemsave_sees_what_the_guest_wrote(tmp_path: Path) -> None:
    """The pc image builds its identity page tables at run time: the same entries in both,
    with the Accessed and Dirty bits (5 and 6) the CPU's own walks set in them."""
    pml4, pd = _symbol("pc", "pml4"), _symbol("pc", "pd")
    with pair("pc", tmp_path) as (emu, qemu):
        saved = []
        for vm in (emu, qemu):
            path = tmp_path / f"{vm.proc.pid}.tables"
            ret(vm, "pmemsave", val=pml4, size=pd + 4 * 4096 - pml4, filename=str(path))
            data = path.read_bytes()
            saved.append([int.from_bytes(data[i : i + 8], "little")
                          for i in range(0, len(data), 8)])
    assert saved[0] == saved[1]
    assert saved[0][0] & 1 and sum(e & 1 for e in saved[0]) > 2048  # the tables are there
    assert saved[0][0] & 0x60 == 0x20  # the PML4E the guest uses: accessed
    assert any(e & 0xE1 == 0xE1 for e in saved[0])  # a 2 MiB page it wrote: accessed, dirty


def test_pmemsave_and_memsave_save_what_qemu_saves(machine: str, tmp_path: Path) -> None:
    base, text = _first_load(machine)
    ram_end = {"pc": 128 << 20, "virt": 0x40000000 + (128 << 20)}[machine]
    unmapped = {"pc": 1 << 32, "virt": 1 << 47}[machine]  # beyond the page tables / PA size
    cases = [
        ("pmemsave", {"val": base, "size": len(text)}),  # the kernel's code
        ("memsave", {"val": base, "size": len(text)}),  # identity mapped (or MMU off)
        ("memsave", {"val": base, "size": 3000, "cpu-index": 0}),
        ("pmemsave", {"val": ram_end - 8, "size": 16}),  # RAM, then nothing: zeros
        ("pmemsave", {"val": 1 << 40, "size": 64}),
        ("pmemsave", {"val": -16, "size": 16}),  # the top of the 64-bit space
        ("pmemsave", {"val": base, "size": 0}),
        ("memsave", {"val": unmapped, "size": 16}),
        # a piece of RAM, then unbacked addresses: the whole pieces before the failing one
        # are written
        ("memsave", {"val": ram_end - 2048, "size": 4096}),
    ]
    with pair(machine, tmp_path) as (emu, qemu):
        for i, (name, args) in enumerate(cases):
            files = {}
            for vm in (emu, qemu):
                path = tmp_path / f"{vm.proc.pid}-{i}.bin"
                files[vm] = path
                reply = vm.cmd(name, filename=str(path), **args)
                files[vm, "reply"] = reply
            assert files[emu, "reply"] == files[qemu, "reply"], (name, args)
            assert files[emu].read_bytes() == files[qemu].read_bytes(), (name, args)
            if i < 2:
                assert files[emu].read_bytes() == text
        # a full device: a short save sits in the stdio buffer and succeeds; a long one fails
        for size in (16, 65536):
            for name in ("pmemsave", "memsave"):
                args = {"val": base, "size": size, "filename": "/dev/full"}
                assert emu.cmd(name, **args) == qemu.cmd(name, **args), (name, size)
        # QEMU overruns its stack buffer on a negative size; emu refuses it
        for name in ("pmemsave", "memsave"):
            assert emu.cmd(name, val=base, size=-5, filename=str(tmp_path / "neg"))[
                "error"]["desc"] == "Parameter 'size' expects a non-negative size"


# -- file descriptors -----------------------------------------------------------------------


def _fd_target(vm: Vm, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{vm.proc.pid}/fd/{fd}")
    except FileNotFoundError:
        return ""


def _send(vm: Vm, path: Path) -> None:
    with open(path, "wb") as f:
        vm.qmp.send_fd_scm(f.fileno())


def test_fd_passing_matches_qemu(tmp_path: Path) -> None:
    files = [tmp_path / f"f{i}" for i in range(4)]
    with pair("pc", tmp_path) as (emu, qemu):
        seen: dict[Vm, list[Any]] = {}
        for vm in (emu, qemu):
            log = seen[vm] = []
            _send(vm, files[0])
            log.append(vm.cmd("getfd", fdname="dump"))
            log.append(vm.cmd("closefd", fdname="dump"))
            log.append(vm.cmd("closefd", fdname="dump"))
            _send(vm, files[0])
            log.append(vm.cmd("getfd", fdname="1st"))  # refused, and the fd is consumed
            log.append(vm.cmd("getfd", fdname="again"))
            _send(vm, files[1])
            log.append(vm.cmd("getfd", fdname="kept"))
            _send(vm, files[1])
            log.append(vm.cmd("getfd", fdname="kept"))  # replaces the first
            fds = []
            for i, extra in enumerate(({}, {"fdset-id": 0, "opaque": "second"},
                                       {"fdset-id": 5}, {})):
                _send(vm, files[i])
                info = ret(vm, "add-fd", **extra)
                fds.append(info["fd"])
                assert _fd_target(vm, info["fd"]) == str(files[i])
                log.append(info["fdset-id"])
            numbering = {fd: f"fd{i}" for i, fd in enumerate(fds)}

            def sets(vm: Vm = vm, numbering: dict = numbering) -> list:
                text = json.dumps(ret(vm, "query-fdsets"))
                for fd, name in numbering.items():
                    text = re.sub(rf'"fd": {fd}\b', f'"fd": "{name}"', text)
                return json.loads(text)

            log.append(sets())
            _send(vm, files[0])
            log.append(vm.cmd("add-fd", **{"fdset-id": -1}))
            log.append(vm.cmd("remove-fd", **{"fdset-id": 0, "fd": fds[0]}))
            log.append(_fd_target(vm, fds[0]) == str(files[0]))  # closed: the guest runs
            log.append(sets())
            log.append(vm.cmd("remove-fd", **{"fdset-id": 5}))
            log.append(vm.cmd("remove-fd", **{"fdset-id": 5}))
            log.append(sets())
            # a new connection: named fds stay with the monitor; fd sets nobody uses go
            vm.qmp.close()
            vm.qmp = QEMUMonitorProtocol(vm.sock)
            vm.qmp.connect()
            log.append(sets())
            log.append(_fd_target(vm, fds[1]) == str(files[1]))
            log.append(vm.cmd("closefd", fdname="kept"))
        assert seen[emu] == seen[qemu]
        assert seen[emu][0] == {"return": {}}  # the log is what a user sees, not errors only


def test_dump_to_a_passed_descriptor_matches_qemu(tmp_path: Path) -> None:
    """dump-guest-memory with protocol fd:NAME writes into the descriptor named by getfd,
    and takes it: a second dump to the same name fails as it does on QEMU."""
    with pair("pc", tmp_path) as (emu, qemu):
        answers = {}
        for vm in (emu, qemu):
            core = tmp_path / f"{vm.proc.pid}.core"
            _send(vm, core)
            ret(vm, "getfd", fdname="dumpfd")
            first = vm.cmd("dump-guest-memory", paging=False, protocol="fd:dumpfd")
            again = vm.cmd("dump-guest-memory", paging=False, protocol="fd:dumpfd")
            missing = vm.cmd("dump-guest-memory", paging=False, protocol="fd:nobody")
            with open(core, "rb") as f:
                elf = ELFFile(f)
                loads = [(seg["p_paddr"], seg["p_filesz"]) for seg in elf.iter_segments()
                         if seg["p_type"] == "PT_LOAD"]
                notes = [n["n_name"] for seg in elf.iter_segments()
                         if seg["p_type"] == "PT_NOTE" for n in seg.iter_notes()]
            answers[vm] = (first.get("return"), again.get("error"), missing.get("error"),
                           notes)
            assert loads and sum(size for _, size in loads) >= 127 << 20
        assert answers[emu] == answers[qemu]
        assert answers[emu][1] == {"class": "GenericError",
                                   "desc": "File descriptor named 'dumpfd' has not been found"}


def test_removed_fds_stay_while_the_guest_is_paused(tmp_path: Path) -> None:
    with pair("pc", tmp_path) as (emu, qemu):
        answers = {}
        for vm in (emu, qemu):
            ret(vm, "stop")
            _send(vm, tmp_path / "paused")
            fd = ret(vm, "add-fd")["fd"]
            ret(vm, "remove-fd", **{"fdset-id": 0})
            sets = ret(vm, "query-fdsets")
            assert sets[0]["fds"][0]["fd"] == fd
            sets[0]["fds"][0]["fd"] = "FD"
            answers[vm] = (sets, _fd_target(vm, fd))
        assert answers[emu] == answers[qemu]
        assert answers[emu] == ([{"fdset-id": 0, "fds": [{"fd": "FD"}]}],
                                str(tmp_path / "paused"))


# -- set-action, system_powerdown ------------------------------------------------------------


def test_set_action_changes_the_panic_action_as_in_qemu(tmp_path: Path) -> None:
    with pair("pc", tmp_path, "-device", "pvpanic", "-S", image_name="panic") as (emu, qemu):
        for vm in (emu, qemu):
            assert vm.cmd("set-action", panic="pause", reboot="shutdown") == {"return": {}}
            assert vm.cmd("cont") == {"return": {}}
            vm.wait_output(b"panic: pvpanic features 0x03\n")
            assert vm.events("GUEST_PANICKED")[0]["data"] == {"action": "pause"}
            assert ret(vm, "query-status")["status"] == "guest-panicked"


@pytest.mark.parametrize("how", ["-no-shutdown", "set-action"])
def test_a_guest_power_off_pauses_under_no_shutdown_as_in_qemu(how: str, tmp_path: Path) -> None:
    """hello powers the virt machine off through PSCI SYSTEM_OFF: with -no-shutdown (or
    set-action shutdown=pause) the machine stops in the "shutdown" state, cont is refused
    until a reset, and a reset leaves it in prelaunch; QEMU answers the same."""
    extra = ("-no-shutdown", "-S") if how == "-no-shutdown" else ("-S",)
    with pair("virt", tmp_path, *extra, image_name="hello") as (emu, qemu):
        seen = {}
        for vm in (emu, qemu):
            if how == "set-action":
                assert vm.cmd("set-action", shutdown="pause") == {"return": {}}
            assert vm.cmd("cont") == {"return": {}}
            vm.wait_output(b"Hello from the guest!")
            shutdown = vm.events("SHUTDOWN")
            vm.events("STOP")
            after_off = ret(vm, "query-status")
            refused = vm.cmd("cont")
            assert vm.cmd("system_reset") == {"return": {}}
            vm.events("RESET")
            seen[vm] = ([e["data"] for e in shutdown], after_off, refused,
                        ret(vm, "query-status"), vm.proc.poll() is None)
        assert seen[emu] == seen[qemu]
        assert seen[emu][1]["status"] == "shutdown"
        assert seen[emu][2]["error"]["desc"] == "Resetting the Virtual Machine is required"


def test_set_action_reboot_shutdown_turns_a_guest_reset_into_an_exit(tmp_path: Path) -> None:
    """In-process: the request a guest's reset makes (PSCI SYSTEM_RESET) after set-action."""
    from emu.config import MachineConfig
    from emu.machine import Machine
    from emu.qmp.server import QmpServer, parse_qmp_option

    m = Machine(MachineConfig(machine="virt", cpu="cortex-a57", kernel=image("virt", "halt"),
                              serial=["none"]))
    sock = str(tmp_path / "action.qmp")
    server = QmpServer(m, parse_qmp_option(f"unix:{sock},server=on,wait=off"))
    server.start()
    t = threading.Thread(target=m.run)
    t.start()
    try:
        qmp = QEMUMonitorProtocol(sock)
        qmp.connect()
        assert qmp.cmd_obj({"execute": "set-action",
                            "arguments": {"reboot": "shutdown"}}) == {"return": {}}
        m.call_soon(lambda: m.request_reset(guest=True)).result(10)
        t.join(10)
        assert not t.is_alive() and m.exit_status == 0
        events = [e["event"] for e in qmp.get_events(wait=5.0)]
        assert "SHUTDOWN" in events and "RESET" not in events
        qmp.close()
    finally:
        server.close()
        m.close()


def test_system_powerdown_sends_powerdown(machine: str, tmp_path: Path) -> None:
    """The event, as QEMU sends it; the guest sees nothing (emu has no ACPI or GPIO power
    key), and so does the halted guest under QEMU: both keep running."""
    with pair(machine, tmp_path) as (emu, qemu):
        for vm in (emu, qemu):
            assert vm.cmd("system_powerdown") == {"return": {}}
        ours, theirs = emu.events("POWERDOWN")[0], qemu.events("POWERDOWN")[0]
        assert shape(ours) == shape(theirs)
        for vm in (emu, qemu):
            assert ret(vm, "query-status")["status"] == "running"


# -- dumpdtb --------------------------------------------------------------------------------


def _dts(path: Path) -> str:
    return subprocess.run(["dtc", "-I", "dtb", "-O", "dts", str(path)], capture_output=True,
                          text=True, check=True).stdout


def _node(dts: str, name: str) -> str:
    m = re.search(rf"\n\t{re.escape(name)} \{{\n(.*?)\n\t\}};", dts, re.S)
    assert m, name
    return m.group(1)


def test_dumpdtb_writes_the_virt_device_tree(tmp_path: Path) -> None:
    with pair("virt", tmp_path, "-append", "console=ttyAMA0 debug") as (emu, qemu):
        trees = {}
        for vm in (emu, qemu):
            path = tmp_path / f"{vm.proc.pid}.dtb"
            assert vm.cmd("dumpdtb", filename=str(path)) == {"return": {}}
            trees[vm] = _dts(path)
            bad = vm.cmd("dumpdtb", filename="/nonexistent/x")["error"]["desc"]
            assert re.fullmatch(r"Error saving FDT to file /nonexistent/x: Failed to create "
                                r"file “/nonexistent/x\.\w{6}”: No such file or directory",
                                bad), bad
            bad = vm.cmd("dumpdtb", filename=str(tmp_path))["error"]["desc"]
            assert re.fullmatch(rf"Error saving FDT to file {tmp_path}: Failed to rename "
                                rf"file “{tmp_path}\.\w{{6}}” to “{tmp_path}”: g_rename\(\) "
                                r"failed: Is a directory", bad), bad
        ours, theirs = trees[emu], trees[qemu]
        for node in ("memory@40000000", "psci"):  # the same properties, in another order
            assert sorted(_node(ours, node).splitlines()) == \
                sorted(_node(theirs, node).splitlines()), node
        chosen = _node(ours, "chosen")
        assert 'bootargs = "console=ttyAMA0 debug";' in chosen
        assert 'bootargs = "console=ttyAMA0 debug";' in _node(theirs, "chosen")
        assert 'compatible = "linux,dummy-virt";' in ours


# -- qom-list / qom-get ---------------------------------------------------------------------

#: properties whose value depends on what runs, not on emu: the firmware QEMU's pc loads
#: (SeaBIOS' bios-256k.bin; emu runs its own when no -bios is given)
HOST_DEPENDENT = {("/machine", "firmware")}


def _walk(vm: Vm, path: str) -> Iterator[tuple[str, list[dict]]]:
    props = ret(vm, "qom-list", path=path)
    yield path, props
    for p in props:
        if p["type"].startswith("child<"):
            yield from _walk(vm, f"{path.rstrip('/')}/{p['name']}")


def test_qom_tree_is_qemus_where_emu_has_one(machine: str, tmp_path: Path) -> None:
    extra = ("-device", "pvpanic", "-append", "halt") if machine == "pc" else ()
    with pair(machine, tmp_path, *extra) as (emu, qemu):
        paths = 0
        for path, props in _walk(emu, "/"):
            theirs = {p["name"]: p["type"] for p in ret(qemu, "qom-list", path=path)}
            for p in props:
                assert theirs.get(p["name"]) == p["type"], (path, p)
                if p["type"].startswith("child<") or (path, p["name"]) in HOST_DEPENDENT:
                    continue
                args = {"path": path, "property": p["name"]}
                ours_v, theirs_v = emu.cmd("qom-get", **args), qemu.cmd("qom-get", **args)
                assert ours_v == theirs_v, args
            paths += 1
        assert paths >= 10
        # partial paths: the one object whose path ends so
        for partial in ("fw_cfg", "peripheral-anon", "unattached/device[0]", "machine"):
            ours = {(p["name"], p["type"]) for p in ret(emu, "qom-list", path=partial)}
            theirs = {(p["name"], p["type"]) for p in ret(qemu, "qom-list", path=partial)}
            assert ours <= theirs, partial
            assert ret(emu, "qom-get", path=partial, property="type") == \
                ret(qemu, "qom-get", path=partial, property="type"), partial
        assert ret(emu, "qom-get", path="/machine", property="peripheral-anon") == \
            "/machine/peripheral-anon"


# -- query-qmp-schema -----------------------------------------------------------------------


def _resolve(schema: list[dict]) -> dict[str, dict]:
    """Index a SchemaInfo list by name and check every reference resolves, as an
    introspecting client does."""
    by_name = {e["name"]: e for e in schema}
    assert len(by_name) == len(schema), "duplicate names"
    for e in schema:
        refs = [e.get("arg-type"), e.get("ret-type"), e.get("element-type")]
        refs += [m["type"] for m in e.get("members", []) if "type" in m]
        refs += [v["type"] for v in e.get("variants", [])]
        for ref in filter(None, refs):
            assert ref in by_name, (e["name"], ref)
        if e["meta-type"] in ("command", "event"):
            assert by_name[e["arg-type"]]["meta-type"] == "object", e
    return by_name


def _flat(by_name: dict[str, dict], name: str, depth: int = 4) -> Any:
    """A type with its name hidden: what two schemas must agree on."""
    e = by_name[name]
    kind = e["meta-type"]
    if kind == "builtin":
        return e["json-type"]
    if kind == "enum":
        return ("enum", tuple(e["values"]))
    if kind == "array":
        return ("array", _flat(by_name, e["element-type"], depth))
    if kind == "object" and depth:
        flat = {m["name"]: ("default" in m, m.get("features"),
                            _flat(by_name, m["type"], depth - 1)) for m in e["members"]}
        for v in e.get("variants", []):
            flat[f"case {v['case']}"] = _flat(by_name, v["type"], depth - 1)
        return flat
    return kind


def test_schema_describes_every_command_as_qemu_does(tmp_path: Path) -> None:
    with pair("pc", tmp_path) as (emu, qemu):
        ours = _resolve(ret(emu, "query-qmp-schema"))
        theirs = _resolve(ret(qemu, "query-qmp-schema"))
        commands = {c["name"] for c in ret(emu, "query-commands")}
        qemu_commands = {c["name"] for c in ret(qemu, "query-commands")}
    assert commands == {n for n, e in ours.items() if e["meta-type"] == "command"}
    assert commands <= qemu_commands  # no command of emu's own invention
    assert ours["0"] == {"name": "0", "meta-type": "object", "members": []}
    events = {n for n, e in ours.items() if e["meta-type"] == "event"}
    assert {"SHUTDOWN", "POWERDOWN", "RESET", "STOP", "RESUME", "GUEST_PANICKED",
            "DUMP_COMPLETED"} <= events
    # emu's dump-format enum also has the kdump-raw-* names of later QEMUs (8.2), and its own
    # zstd formats
    raw = ("kdump-raw-zlib", "kdump-raw-lzo", "kdump-raw-snappy", "kdump-zstd",
           "kdump-raw-zstd")
    for e in ours.values():
        if e["meta-type"] == "enum" and "kdump-zlib" in e["values"]:
            assert set(raw) <= set(e["values"])
            e["values"] = [v for v in e["values"] if v not in raw]
    for name in sorted(commands | events):
        e, q = ours[name], theirs[name]
        assert e["meta-type"] == q["meta-type"], name
        assert _flat(ours, e["arg-type"]) == _flat(theirs, q["arg-type"]), name
        if "ret-type" in e:
            ours_ret, theirs_ret = _flat(ours, e["ret-type"]), _flat(theirs, q["ret-type"])
            assert ours_ret == theirs_ret, name


def test_plugin_commands_without_a_signature_are_listed(tmp_path: Path) -> None:
    from emu.qmp.schema import schema

    def plain(server: object, args: dict) -> dict:
        return {}

    entries = _resolve(schema({"x-plain": plain}))
    assert entries["x-plain"]["ret-type"] == "any"
    assert entries["x-plain"]["arg-type"] == "0"
    assert entries["qmp_capabilities"]["meta-type"] == "command"


def test_fd_store_hands_a_named_fd_over() -> None:
    from emu.qmp.fds import FdStore

    fds = FdStore()
    with tempfile.TemporaryFile() as f:
        fd = os.dup(f.fileno())
        fds.received([fd])
        assert fds.take_received() == fd
        fds.set_name("dumpfd", fd)
        assert fds.take("dumpfd") == fd and fds.take("dumpfd") is None
        os.close(fd)



def test_inject_nmi_is_taken_by_the_guest_as_in_qemu(machine: str, tmp_path: Path) -> None:
    """pc: the NMI reaches the halted guest, which has no IDT for it: a #GP, a double and
    then a triple fault reset the machine, on both (the RESET event). virt has no NMI:
    QEMU's error."""
    with pair(machine, tmp_path) as (emu, qemu):
        replies = [vm.cmd("inject-nmi") for vm in (emu, qemu)]
        assert replies[0] == replies[1]
        if machine == "virt":
            assert replies[0] == {"error": {"class": "GenericError", "desc":
                                  "this feature or command is not currently supported"}}
            return
        assert replies[0] == {"return": {}}
        ours, theirs = emu.events("RESET")[0], qemu.events("RESET")[0]
        assert ours["data"] == theirs["data"] == {"guest": True, "reason": "guest-reset"}
