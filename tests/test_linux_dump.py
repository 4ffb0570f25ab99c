"""The main job on a real kernel: Linux 6.1 boots on emu, its own fw_cfg driver registers its
VMCOREINFO note with ``-device vmcoreinfo``, its /init crashes it through
/proc/sysrq-trigger, and QMP ``dump-guest-memory`` saves a dump that the kernel-dump readers
read as the kernel's, with the same answers as for QEMU 7.2's dump of the same boot:

* drgn (both machines): ``init_uts_ns``, the crashed thread's stack through
  ``sysrq_handle_crash``, the task list;
* crash (x86_64): ``sys``, ``log``, ``bt``, ``ps``. (On x86_64, crash's ``bt`` goes from
  ``panic`` to ``__handle_sysrq``: ``sysrq_handle_crash`` ends in its call to the noreturn
  ``panic``, so the return address on the stack is past its end; drgn names it. crash 8.0.2
  also warns about this tinyconfig kernel and lists only the active tasks, for QEMU's dump as
  for emu's.)
* makedumpfile ``-d 31`` filters emu's dump with its VMCOREINFO, and crash opens the result.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import drgn
import pytest
from drgn.helpers.linux.pid import for_each_task
from linux_boot import BOOTS, FW_CFG_ITEM, Crash, boot_to_panic, init_lines, kernel_log, vmlinux

EMULATORS = ("emu", "qemu")


@pytest.fixture(scope="module")
def crashes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Crash]:
    """Each machine booted to the sysrq crash and dumped, on emu and on QEMU."""
    work = tmp_path_factory.mktemp("linux-dumps")
    return {(emulator, machine): boot_to_panic(emulator, machine, work)
            for machine in BOOTS for emulator in EMULATORS}


def _arch(machine: str) -> str:
    return BOOTS[machine][0]


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_init_lines_are_qemus(crashes: dict[tuple[str, str], Crash], machine: str) -> None:
    qemu = init_lines(crashes["qemu", machine].console)
    assert qemu[1:] == [f"emu-linux init: fw_cfg {FW_CFG_ITEM[0]}: {FW_CFG_ITEM[1]}",
                        "emu-linux init: fw_cfg etc/vmcoreinfo size: 16",
                        "emu-linux init: crashing the kernel through /proc/sysrq-trigger"]
    assert init_lines(crashes["emu", machine].console) == qemu


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_the_panic_is_printed_as_on_qemu(crashes: dict[tuple[str, str], Crash],
                                         machine: str) -> None:
    """From the sysrq line to the end of the panic: the same lines (the register values and
    stack addresses of the report aside, which depend on timing)."""
    def panic_report(console: str) -> list[str]:
        lines = kernel_log(console)
        start = lines.index("sysrq: Trigger a crash")
        return [re.sub(r"\b[0-9a-f]{8,16}\b", "X", line) for line in lines[start:]
                if not re.match(r"^(R|E|F|C|GS|CS|DS|x\d|sp |pc |lr |pstate|RSP|RIP|Code:)",
                                line.strip())]
    qemu = panic_report(crashes["qemu", machine].console)
    emu = panic_report(crashes["emu", machine].console)
    assert "Kernel panic - not syncing: sysrq triggered crash" in qemu
    assert [line for line in emu if "sysrq_handle_crash" in line] == \
        [line for line in qemu if "sysrq_handle_crash" in line]
    assert emu[0] == qemu[0] and emu[-1] == qemu[-1]


def _program(crash: Crash, machine: str) -> drgn.Program:
    prog = drgn.Program()
    prog.set_core_dump(str(crash.dump))
    prog.load_debug_info([vmlinux(_arch(machine))])
    return prog


def _drgn_answers(crash: Crash, machine: str) -> dict[str, object]:
    prog = _program(crash, machine)
    frames = [frame.name for frame in prog.crashed_thread().stack_trace()]
    return {
        "release": prog["init_uts_ns"].name.release.string_().decode(),
        "machine": prog["init_uts_ns"].name.machine.string_().decode(),
        # outward from the crash: where the CPU spins in panic() depends on timing
        "stack": frames[frames.index("sysrq_handle_crash"):],
        # (kworkers come and go with the timing of their work, on QEMU from run to run too,
        # and a thread kthreadd is creating carries its name for a moment)
        "tasks": sorted({comm for t in for_each_task(prog)
                         if not (comm := t.comm.string_().decode()).startswith("kworker/")}),
        "kworkers": any(t.comm.string_().decode().startswith("kworker/")
                        for t in for_each_task(prog)),
    }


@pytest.mark.parametrize("machine", sorted(BOOTS))
def test_drgn_reads_emus_dump_as_qemus(crashes: dict[tuple[str, str], Crash],
                                       machine: str) -> None:
    qemu = _drgn_answers(crashes["qemu", machine], machine)
    emu = _drgn_answers(crashes["emu", machine], machine)
    assert qemu["release"].startswith("6.1.")
    assert qemu["stack"][:2] == ["sysrq_handle_crash", "__handle_sysrq"]
    assert "init" in qemu["tasks"]
    assert emu == qemu


def _crash(vmlinux_path: str, dump: Path, commands: list[str]) -> str:
    run = subprocess.run(["crash", "-s", vmlinux_path, str(dump)], capture_output=True,
                         text=True, timeout=300, input="\n".join([*commands, "quit"]) + "\n")
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _crash_answers(output: str) -> dict[str, object]:
    """What crash's ``sys``, ``log``, ``bt``, ``bt -t`` and ``ps`` say (in that order)."""
    sys_fields = dict(re.findall(r"^\s*([A-Z ]+): (.*)$", output, re.M))
    frames = re.findall(r"^ ?#\d+ \[[0-9a-f]+\] (\w+)", output, re.M)
    # (where in panic() the CPU spun when the dump was taken depends on timing)
    outward = frames[frames.index("__handle_sysrq"):] if "__handle_sysrq" in frames else frames
    ps = re.findall(r"^[ >]*\d+\s+\d+\s+\d+\s+[0-9a-f]+\s+\S+\s+[\d.]+\s+\d+\s+\d+\s+(.*)$",
                    output, re.M)
    return {
        "release": sys_fields.get("RELEASE"),
        "panic": sys_fields.get("PANIC"),
        "cpus": sys_fields.get("CPUS"),
        "log": "sysrq: Trigger a crash" in output,
        "bt": outward,
        "ps": sorted(name for name in ps if not name.startswith("[kworker/")),
    }


def test_crash_reads_emus_dump_as_qemus(crashes: dict[tuple[str, str], Crash]) -> None:
    commands = ["sys", "log", "bt", "ps"]
    qemu = _crash_answers(_crash(vmlinux("x86_64"), crashes["qemu", "pc"].dump, commands))
    emu = _crash_answers(_crash(vmlinux("x86_64"), crashes["emu", "pc"].dump, commands))
    assert qemu["panic"] == '"Kernel panic - not syncing: sysrq triggered crash"'
    assert qemu["log"]
    assert qemu["bt"][:2] == ["__handle_sysrq", "write_sysrq_trigger"]
    assert "init" in qemu["ps"]
    assert emu == qemu


def test_makedumpfile_filters_emus_dump_and_crash_opens_it(
        crashes: dict[tuple[str, str], Crash], tmp_path: Path) -> None:
    dump = crashes["emu", "pc"].dump
    out = tmp_path / "filtered"
    run = subprocess.run(["makedumpfile", "-d", "31", str(dump), str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.stat().st_size < dump.stat().st_size // 4
    answers = _crash_answers(_crash(vmlinux("x86_64"), out, ["sys", "bt"]))
    assert answers["panic"] == '"Kernel panic - not syncing: sysrq triggered crash"'
    assert answers["bt"][:2] == ["__handle_sysrq", "write_sysrq_trigger"]
