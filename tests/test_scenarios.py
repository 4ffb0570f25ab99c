"""The shipped scenario scripts run on emu and on QEMU 7.2 and read back the same answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, boot_args, run_emu, run_qemu
from elftools.elf.elffile import ELFFile

SCENARIOS = sorted((ROOT / "scenarios").glob("*.txt"))


def _machines(script: Path) -> list[str]:
    name = script.stem
    if name.endswith("-pc"):
        return ["pc"]
    if name.endswith("-virt"):
        return ["virt"]
    return ["pc", "virt"]


def _normalised(out: bytes) -> str:
    """fw_cfg selectors depend on the machine's file list: name them by file instead."""
    text = out.decode()
    for name, key in re.findall(r"find (\S+): key=(0x[0-9a-f]{4})", text):
        text = text.replace(key, f"<{name}>")
    return text


def _runnable(script: Path, tmp_path: Path) -> Path:
    """The script with a final `halt` turned into `exit`, so both emulators end by themselves."""
    copy = tmp_path / script.name
    copy.write_text(re.sub(r"^halt\s*$", "exit", script.read_text(), flags=re.MULTILINE))
    return copy


CASES = [(s, m) for s in SCENARIOS for m in _machines(s)]


@pytest.mark.parametrize("script, machine", CASES, ids=[f"{s.stem}-{m}" for s, m in CASES])
def test_scenario_reads_back_what_qemu_reads(script: Path, machine: str, tmp_path) -> None:
    path = _runnable(script, tmp_path)
    args = boot_args(machine, "scenario", "-device", "vmcoreinfo", "-fw_cfg",
                     f"name=opt/scenario,file={path}")
    ours, qemu = run_emu(args, timeout=60), run_qemu(machine, args, timeout=60)
    assert b"error:" not in qemu.stdout, qemu.stdout
    assert _normalised(ours.stdout) == _normalised(qemu.stdout)
    assert ours.returncode == qemu.returncode


def test_at_least_three_vmcoreinfo_scenarios_ship() -> None:
    assert len([s for s in SCENARIOS if s.name.startswith("vmcoreinfo-")]) >= 3


def test_full_write_scenario_gives_a_dump_with_the_scripted_note(tmp_path) -> None:
    script = _runnable(ROOT / "scenarios" / "vmcoreinfo-full-write-pc.txt", tmp_path)
    core = tmp_path / "scenario.core"
    result = run_emu(boot_args("pc", "scenario", "-device", "vmcoreinfo", "-fw_cfg",
                               f"name=opt/scenario,file={script}", "--dump-on-exit", str(core)))
    assert result.stderr.decode() == (f"emu: dump saved to {core} (127.9 MiB, notes: PRSTATUS, "
                                      "QEMU, VMCOREINFO)\n")
    with open(core, "rb") as f:
        notes = [n for seg in ELFFile(f).iter_segments() if seg["p_type"] == "PT_NOTE"
                 for n in seg.iter_notes()]
    vmci = [n["n_descdata"] for n in notes if n["n_name"] == "VMCOREINFO"]
    assert len(vmci) == 1
    text = vmci[0] if isinstance(vmci[0], str) else vmci[0].decode(errors="replace")
    assert text.startswith("OSRELEASE=")
