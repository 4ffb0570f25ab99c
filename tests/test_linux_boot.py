"""Linux 6.1 (the test kernels of tools/linux/build.py, with their initramfs) boots on both
machines to its own /init, whose lines, and the exit at its restart, are QEMU 7.2's: the init
prints uname, reads a ``-fw_cfg`` item back through Linux's fw_cfg driver and the size of
etc/vmcoreinfo (``-device vmcoreinfo``), and restarts the machine ("restart" on the kernel
command line), which ``-no-reboot`` turns into the end of the run.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import ROOT
from linux_boot import BOOTS, FW_CFG_ITEM, command, init_lines, linux_args, run_to_end


def boot(emulator: str, machine: str) -> tuple[int, str]:
    status, lines = run_to_end([*command(emulator, machine), *linux_args(machine, "restart"),
                                "-no-reboot"])
    return status, "\n".join(lines)


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_linux_boots_to_init_as_on_qemu(machine: str) -> None:
    q_status, q_out = boot("qemu", machine)
    e_status, e_out = boot("emu", machine)
    q_init = init_lines(q_out)
    # (the kernel and init are the ones this test means)
    assert q_init[1:] == [f"emu-linux init: fw_cfg {FW_CFG_ITEM[0]}: {FW_CFG_ITEM[1]}",
                          "emu-linux init: fw_cfg etc/vmcoreinfo size: 16",
                          "emu-linux init: restarting"], q_out
    assert q_init[0].startswith("emu-linux init: uname: Linux 6.1.")
    assert init_lines(e_out) == q_init, e_out[-3000:]
    assert "reboot: Restarting system" in e_out
    assert (e_status, q_status) == (0, 0), e_out[-2000:]


def converse(emulator: str, machine: str, line: bytes) -> str:
    """Boot with the init's "echo" word, type ``line`` on the serial console (-serial stdio)
    once the init asks for it, and return what the guest printed up to its restart."""
    proc = subprocess.Popen([*command(emulator, machine),
                             *linux_args(machine, "echo", "restart"), "-no-reboot"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    assert proc.stdin is not None and proc.stdout is not None
    out = b""
    try:
        while b"emu-linux init: type a line" not in out:
            chunk = proc.stdout.read1(65536)
            assert chunk, out.decode(errors="replace")[-3000:]
            out += chunk
        proc.stdin.write(line)
        proc.stdin.flush()
        rest, _ = proc.communicate(timeout=120)
        out += rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.decode(errors="replace")


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_a_line_typed_on_the_console_reaches_the_init(machine: str) -> None:
    """Host input on -serial stdio goes through the 16550 / PL011 receive path and Linux's
    tty to the init, as on QEMU (which echoes it too: the tty is in canonical mode)."""
    line = b"typed by the host\n"
    qemu = [x for x in init_lines(converse("qemu", machine, line)) if "read:" in x]
    emu = [x for x in init_lines(converse("emu", machine, line)) if "read:" in x]
    assert qemu == ["emu-linux init: read: typed by the host"]
    assert emu == qemu


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_twenty_boots_in_a_row_print_the_same(machine: str) -> None:
    """No hang, no fatal stop, and the same init transcript every time (a timeout fails)."""
    transcripts = []
    for _ in range(20):
        status, out = boot("emu", machine)
        assert status == 0, out[-2000:]
        transcripts.append(init_lines(out))
    assert len(transcripts[0]) == 4  # uname, the fw_cfg item, etc/vmcoreinfo, restarting
    assert all(t == transcripts[0] for t in transcripts)
