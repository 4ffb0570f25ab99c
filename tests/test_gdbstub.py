"""The gdb stub (-gdb, -s): Debian's gdb runs the same script against QEMU and against emu,
booting the same guest image; the transcripts must be the same.

What legitimately differs is masked in both transcripts, each for a stated reason:

* the stop where gdb attaches (``0x... in ?? ()``/``_start``): it is the machine's reset
  state, and emu's differs (its own firmware; QEMU's x86 reset vector is cs:ip
  0xf000:0xfff0, emu's linear 0xfffffff0; QEMU's virt enters an ELF kernel directly, emu
  through its firmware at 0);
* the registers the firmware leaves behind when it enters the kernel (:data:`BOOT_REGS`):
  on pc the PVH start_info pointer (rbx, rsi, rdi); on virt the registers emu's boot
  code uses (QEMU enters an ELF with them zero);
* on aarch64, QEMU's system registers (its ``system-registers.xml``, generated from its
  coprocessor register table in hash-table order), which emu does not offer: ``info
  registers`` lines of names in upper case, and the file's ``xi:include`` in target.xml;
* QEMU sends ``W00`` and closes its socket at once (gdb_exit), so gdb's ack of it may
  meet a closed socket: gdb then reports a broken pipe instead of the exit. Both are the
  same event, and that ending of QEMU's transcript reads as the exit;
* ``monitor info registers``: a few lines are compared (the PC, code segment, control
  registers, a general register line), the rest hold the firmware's leftovers too.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from conftest import MACHINES, ROOT, boot_args, emu_cmd, image

GDB = {"pc": "gdb", "virt": "gdb-multiarch"}
BOOT_REGS = {"pc": ("rbx", "rsi", "rdi"),
             "virt": ("x0", "x4", "x10", "x19", "x21", "x22")}
MONITOR_LINES = {"pc": ("RAX=", "R8 =", "RIP=", "CS =", "CR0=", "EFER="),
                 "virt": (" PC=", "X05=", "X08=", "PSTATE=")}


def spawn(which: str, machine: str, args: list[str]) -> subprocess.Popen:
    """emu or QEMU's ``machine`` with ``args``, its output piped."""
    if which == "emu":
        cmd, env = emu_cmd() + args, dict(os.environ, PYTHONPATH=str(ROOT))
    else:
        binary = shutil.which(MACHINES[machine][1])
        assert binary, f"{MACHINES[machine][1]} is not installed"
        cmd, env = [binary, *args], dict(os.environ)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=ROOT, env=env)


def _start(which: str, machine: str, name: str, gdb_dev: str, append: str,
           *extra: str) -> subprocess.Popen:
    return spawn(which, machine,
                 boot_args(machine, name, "-append", append, "-S", "-gdb", gdb_dev, *extra))


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen) -> None:
    """Until something listens on ``port`` (read from /proc: a probe connection would be
    a gdb connection, which stops the machine)."""
    deadline = time.monotonic() + 60
    while True:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                        return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"nothing listens on port {port}"
        time.sleep(0.05)


def gdb_run(which: str, machine: str, args: list[str], symbols: str, script: str,
            tmp_path: Path, timeout: float = 180) -> tuple[str, bytes, int]:
    """Start the emulator with ``args`` and a gdb stub on a Unix socket (it adds the
    ``-gdb``), run ``script`` in gdb's batch mode with ``symbols``; (gdb's transcript, the
    guest's output, the emulator's exit status)."""
    sock = tmp_path / f"{which}.sock"
    proc = spawn(which, machine, [*args, "-gdb", f"unix:{sock},server=on"])
    try:
        _wait_for(sock, proc)
        commands = tmp_path / f"{which}.gdb"
        commands.write_text(f"set pagination off\nset confirm off\ntarget remote {sock}\n"
                            + script)
        result = subprocess.run([GDB[machine], "-batch", "-nx", "-x", str(commands), symbols],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                timeout=timeout)
        out, _err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    transcript = result.stdout.replace(str(commands), "SCRIPT")
    return transcript, out, proc.returncode


def gdb_session(which: str, machine: str, name: str, script: str, tmp_path: Path,
                append: str = "iters=200000") -> tuple[str, bytes, int]:
    """Boot ``name`` under -S with a gdb stub on a Unix socket, run ``script`` in gdb's
    batch mode; (gdb's transcript, the guest's output, the emulator's exit status)."""
    return gdb_run(which, machine, boot_args(machine, name, "-append", append, "-S"),
                   image(machine, name), script, tmp_path)


def _masked(text: str, machine: str) -> str:
    """The transcript with what legitimately differs masked (see the module docstring)."""
    text = re.sub(r"SCRIPT:\d+: Error in sourced command file:\nRemote communication error. "
                  r" Target disconnected.: Broken pipe.\n$",
                  "[Inferior 1 (process 1) exited normally]\n", text)
    lines = re.sub(r"<monitor>\n.*?</monitor>\n", "<monitor output>\n", text,
                   flags=re.S).splitlines()
    out = []
    for i, line in enumerate(lines):
        if i == 0 and " in " in line:  # where gdb attached: the reset state
            out.append("<reset state>")
            continue
        m = re.match(r"^(\S+)\s+0x", line)
        if m and m.group(1) in BOOT_REGS[machine]:
            out.append(f"{m.group(1)} <firmware's value>")
            continue
        if machine == "virt" and m and re.fullmatch(r"[A-Z][A-Z0-9_]+", m.group(1)):
            continue  # QEMU's system registers
        out.append(line)
    return "\n".join(out)


def _monitor_lines(text: str, machine: str) -> list[str]:
    """The lines of ``monitor info registers`` compared (see the module docstring)."""
    found = re.search(r"<monitor>\n(.*?)</monitor>\n", text, flags=re.S)
    assert found, text
    return [line for line in found.group(1).splitlines()
            if line.startswith(MONITOR_LINES[machine])]


SESSION = """\
break *main
continue
info registers
x/16xg $pc
x/2xg $sp
stepi
stepi
stepi
stepi
x/i $pc
bt
delete
watch *(long *)&counter
continue
continue
delete
break console_puts
continue
bt
echo <monitor>\\n
monitor info registers
echo </monitor>\\n
delete
"""


def test_gdb_session_matches_qemu(machine: str, tmp_path: Path) -> None:
    """target remote, info registers, x/16xg, break on a symbol, continue, stepi x4, bt, a
    watchpoint on a global hit twice, delete, monitor info registers; then the guest runs to
    its end (pc: it exits through isa-debug-exit, which closes the connection; virt: PSCI
    SYSTEM_OFF, and gdb hears of the exit: W00)."""
    runs = {}
    for which in ("qemu", "emu"):
        runs[which] = gdb_session(which, machine, "pulse", SESSION + "continue\n", tmp_path)
    (q_text, q_out, q_status), (e_text, e_out, e_status) = runs["qemu"], runs["emu"]
    assert "Old value = 1" in q_text and "Breakpoint 3," in q_text  # the script did its work
    assert _masked(e_text, machine) == _masked(q_text, machine)
    assert _monitor_lines(e_text, machine) == _monitor_lines(q_text, machine)
    assert len(_monitor_lines(q_text, machine)) == len(MONITOR_LINES[machine])
    assert e_out == q_out  # the guest computed the same (nothing ran twice)
    assert e_status == q_status


HARDWARE_SESSION = """\
hbreak *main
continue
delete
rwatch *(long *)&counter
continue
continue
delete
awatch *(long *)&total
continue
continue
delete
maintenance packet Qqemu.PhyMemMode:1
x/2xg &counter
maintenance packet Qqemu.PhyMemMode:0
info registers pc
continue
"""


def test_hbreak_rwatch_awatch_and_physical_mode_match_qemu(machine: str,
                                                           tmp_path: Path) -> None:
    """Hardware breakpoints (Z1), read and access watchpoints (Z3, Z4: gdb's "Value =" and
    "Old value/New value" reports at the same instruction as under QEMU), and reads in
    QEMU's physical memory mode."""
    runs = {which: gdb_session(which, machine, "pulse", HARDWARE_SESSION, tmp_path)
            for which in ("qemu", "emu")}
    q_text, e_text = runs["qemu"][0], runs["emu"][0]
    assert "Hardware read watchpoint 2" in q_text and "Value = 2" in q_text
    assert "Hardware access (read/write) watchpoint 3" in q_text and "New value" in q_text
    assert _masked(e_text, machine) == _masked(q_text, machine)
    assert runs["emu"][1:] == runs["qemu"][1:]


def test_steps_take_no_interrupt(machine: str, tmp_path: Path) -> None:
    """QEMU steps with interrupts held back (SSTEP_NOIRQ, TCG's default): under storm's
    20 kHz timer, 60 steps from the start of the interrupt handler go through the handler and
    its return into the interrupted code, without taking the timer interrupt again. The
    code reached in main depends on when the interrupt came (masked), and QEMU sometimes
    reports a step on the same instruction twice (merged)."""
    handler = {"pc": "storm_tick", "virt": "storm_irq"}[machine]
    script = f"""\
break *{handler}
continue
delete
set $i = 0
while $i < 60
stepi
set $i = $i + 1
end
kill
"""
    paths = {}
    for which in ("qemu", "emu"):
        text = gdb_session(which, machine, "storm", script, tmp_path)[0]
        start = next(line for line in text.splitlines() if line.startswith("Breakpoint 1, "))
        steps = [start.removeprefix("Breakpoint 1, ")]  # where the steps start
        steps += [line for line in text.splitlines()[3:] if line.startswith("0x")]
        path = [line for i, line in enumerate(steps) if i == 0 or line != steps[i - 1]]
        back = next(i for i, line in enumerate(path) if line.endswith(" in main ()"))
        paths[which] = path[:back]
    assert paths["qemu"] and all(" in main ()" not in line for line in paths["qemu"])
    assert paths["emu"] == paths["qemu"]


def test_ctrl_c_interrupts_a_spinning_guest(machine: str, tmp_path: Path) -> None:
    """gdb's SIGINT (Ctrl-C) while the guest computes without touching a device: the stub
    stops it (0x03 -> T02), gdb says so. Then on pc `kill` ends the emulator, as QEMU's 'k';
    on virt `detach` lets the guest run on (it still spins when gdb is gone). The stop's
    address depends on when the signal came: it is masked."""
    ending = "kill" if machine == "pc" else "detach"
    script = f"""\
python
import os, signal, threading
threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
end
continue
monitor info status
{ending}
"""
    runs = {}
    for which in ("qemu", "emu"):
        port = _free_port()
        proc = _start(which, machine, "spin", f"tcp::{port}", "iters=100000000000")
        try:
            _wait_for_port(port, proc)
            commands = tmp_path / f"{which}.gdb"
            commands.write_text(f"set pagination off\nset confirm off\n"
                                f"target remote :{port}\n{script}")
            result = subprocess.run([GDB[machine], "-batch", "-nx", "-x", str(commands),
                                     image(machine, "spin")], capture_output=True, text=True,
                                    timeout=120)
            if ending == "detach":
                time.sleep(0.5)
                assert proc.poll() is None  # detached, the guest runs on
                proc.terminate()
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        text = re.sub(r"0x[0-9a-f]{16} in main", "ADDR in main", result.stdout + result.stderr)
        runs[which] = (text.splitlines()[1:], proc.returncode, err.decode().splitlines()[-1:])
    assert "Program received signal SIGINT, Interrupt." in runs["qemu"][0]
    assert "ADDR in main ()" in runs["qemu"][0]
    assert runs["emu"][0] == runs["qemu"][0]
    assert runs["emu"][1] == runs["qemu"][1] == 0
    if ending == "kill":
        assert runs["qemu"][2] == [f"{Path(MACHINES[machine][1]).name}: QEMU: Terminated "
                                   "via GDBstub"]
        assert runs["emu"][2] == ["emu: QEMU: Terminated via GDBstub"]


def _answered(buf: bytes) -> bool:
    """Whether ``buf`` holds a whole answer: a NAK, or packets ending with one that is not
    monitor output (``O...``)."""
    if buf == b"-":
        return True
    packets = re.findall(rb"\$([^#]*)#[0-9a-f]{2}", buf, re.S)
    complete = re.fullmatch(rb"\+?(\$[^#]*#[0-9a-f]{2})+", buf, re.S)
    return bool(complete and packets and not (packets[-1].startswith(b"O")
                                                and packets[-1] != b"OK"))


def _exchange(sock: socket.socket, packets: list[bytes]) -> list[bytes]:
    """Send each raw packet, collect what comes back until the stub has answered."""
    replies = []
    for raw in packets:
        sock.sendall(raw)
        buf = b""
        while not _answered(buf):
            chunk = sock.recv(65536)
            if not chunk:
                replies.append(buf + b"<closed>")
                return replies
            buf += chunk
        sock.sendall(b"+")
        replies.append(buf)
    return replies


def _pkt(data: bytes) -> bytes:
    from emu.gdbstub.packets import frame

    return frame(data)


RAW_PACKETS = [
    _pkt(b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386"),
    _pkt(b"vMustReplyEmpty"),
    _pkt(b"qAttached"), _pkt(b"qC"), _pkt(b"qfThreadInfo"), _pkt(b"qsThreadInfo"),
    _pkt(b"Hg0"), _pkt(b"Hgp1.1"), _pkt(b"Hgp2.1"), _pkt(b"Hxp1.1"), _pkt(b"Tp1.1"),
    _pkt(b"Tp1.5"), _pkt(b"?"), _pkt(b"qThreadExtraInfo,p1.1"),
    _pkt(b"p10"),  # before the target description: empty, as QEMU's gdb_has_xml
    _pkt(b"qXfer:features:read:target.xml:0,ffb"),
    _pkt(b"qXfer:features:read:target.xml:10,20"),
    _pkt(b"qXfer:features:read:target.xml:ffffff,20"),
    _pkt(b"qXfer:features:read:nosuch.xml:0,ffb"),
    _pkt(b"qXfer:features:read:target.xml"),
    _pkt(b"p1ff"), _pkt(b"vCont?"), _pkt(b"qqemu.Supported"), _pkt(b"qqemu.sstepbits"),
    _pkt(b"qqemu.sstep"), _pkt(b"Qqemu.sstep=9"), _pkt(b"Qqemu.sstep=zz"),
    _pkt(b"qqemu.PhyMemMode"), _pkt(b"Qqemu.PhyMemMode:1"), _pkt(b"qqemu.PhyMemMode"),
    _pkt(b"mffffffffff000000,8"), _pkt(b"m0,zz"), _pkt(b"m0,3000"), _pkt(b"m0"),
    _pkt(b"M0,4:0"), _pkt(b"Mffffffffff000000,1:00"), _pkt(b"Qqemu.PhyMemMode:0"),
    _pkt(b"Z9,0,0"), _pkt(b"z0,123456,1"), _pkt(b"Z2,0,0"), _pkt(b"Z0"),
    _pkt(b"Z0,123456,1"), _pkt(b"z0,123456,1"), _pkt(b"Z2,8000,8"), _pkt(b"z2,8000,8"),
    _pkt(b"X0,0:"), _pkt(b"!"), _pkt(b"qnonsense"), _pkt(b"Qx"),
    _pkt(b"vCont;x"), _pkt(b"vCont;c:p9.1"), _pkt(b"vAttach;2"), _pkt(b"vAttach;1"),
    _pkt(b"qRcmd,696e666f20737461747573"),  # "info status"
    _pkt(b"qRcmd,123"),
    b"$qC#00",  # a wrong checksum: NAK
    b"junk" + _pkt(b"qC"),  # garbage before a packet is dropped
    b"$q}\x03#" + b"%02x" % (sum(b"q}\x03") & 0xFF),  # an escape: "q#"
    b"$qAtta*\"ched#" + b"%02x" % (sum(b'qAtta*"ched') & 0xFF),  # RLE: "qAttaaaaaached"
]


def test_raw_packets_get_qemus_replies(machine: str, tmp_path: Path) -> None:
    """Every packet of :data:`RAW_PACKETS` (good, malformed, unknown, out of range) gets
    byte for byte the reply QEMU gives, on both machines, and the stub keeps serving."""
    transcripts = {}
    for which in ("qemu", "emu"):
        path = tmp_path / f"{which}.sock"
        proc = _start(which, machine, "hello", f"unix:{path},server=on", "")
        try:
            _wait_for(path, proc)
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(30)
                s.connect(str(path))
                transcripts[which] = _exchange(s, RAW_PACKETS)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    q, e = transcripts["qemu"], transcripts["emu"]
    assert len(q) == len(RAW_PACKETS)
    if machine == "virt":  # emu offers no system-registers.xml (see the module docstring)
        include = b'<xi:include href="system-registers.xml"/>'
        assert include in q[RAW_PACKETS.index(_pkt(b"qXfer:features:read:target.xml:0,ffb"))]
        q = [_pkt(r[2:-3].replace(include, b"")).join((b"+", b""))
             if include in r else r for r in q]
    for packet, q_reply, e_reply in zip(RAW_PACKETS, q, e, strict=True):
        assert e_reply == q_reply, packet


def test_qmp_stop_and_a_dump_while_gdb_holds_the_cpu(machine: str, tmp_path: Path) -> None:
    """A QMP client stops the machine while gdb waits for it: gdb hears of the stop (T02),
    as with QEMU; with the CPU held by gdb the monitor dumps the guest; then `kill`."""
    qmp = tmp_path / "qmp.sock"
    transcripts = {}
    for which in ("qemu", "emu"):
        dump = tmp_path / f"{which}.dump"
        script = f"""\
python
import socket, threading
def stop():
    s = socket.socket(socket.AF_UNIX)
    s.connect("{qmp}")
    s.recv(4096)
    s.sendall(b'{{"execute": "qmp_capabilities"}}')
    s.recv(4096)
    s.sendall(b'{{"execute": "stop"}}')
    s.recv(4096)
    s.close()
threading.Timer(2.0, stop).start()
end
continue
monitor info status
monitor dump-guest-memory {dump}
kill
"""
        sock = tmp_path / f"{which}.sock"
        proc = _start(which, machine, "spin", f"unix:{sock},server=on", "iters=100000000000",
                      "-qmp", f"unix:{qmp},server=on,wait=off")
        try:
            _wait_for(sock, proc)
            commands = tmp_path / f"{which}.gdb"
            commands.write_text(f"set pagination off\nset confirm off\n"
                                f"target remote {sock}\n{script}")
            result = subprocess.run([GDB[machine], "-batch", "-nx", "-x", str(commands),
                                     image(machine, "spin")], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, timeout=120)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        transcripts[which] = re.sub(r"0x[0-9a-f]{16} in main", "ADDR in main",
                                    result.stdout).splitlines()[1:]
        assert dump.read_bytes()[:4] == b"\x7fELF"
    assert "Program received signal SIGINT, Interrupt." in transcripts["qemu"]
    assert "VM status: paused" in "\n".join(transcripts["qemu"])
    assert transcripts["emu"] == transcripts["qemu"]
