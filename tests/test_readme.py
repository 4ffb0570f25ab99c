"""README.md's examples, run as a user pastes them: in order, in one fresh shell.

The command blocks are read from the README with markdown-it-py. Each command runs in one bash
process (a command may leave a job in the background for the next ones, as the QMP example
does), in a scratch directory that holds the checkout's directories as symlinks (so
``guest_images/...`` resolves and the files the examples write stay out of the checkout), with
``emu`` and ``python3`` on the PATH being this checkout's emu and this test's Python (the one
that has drgn and qemu.qmp). Every command must have an expectation below, taken from what the
README says it prints and exits with, and the README must still say it.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT
from markdown_it import MarkdownIt

#: sections whose blocks are not run, and why
NOT_RUN = {
    "Set up": "installs Debian and Python packages (the test command, tests/run.sh, did that "
              "already; running it again would reinstall)",
    "Test": "runs this whole suite, this test included",
    "Debug a kernel with gdb": "interactive: emu waits for gdb, and gdb for its user at its "
                               "prompt (tests/test_gdbstub.py runs such sessions in batch "
                               "mode against emu and QEMU)",
    "Tour": "a map of the source tree, not commands",
}

RELEASE = "6.1.0-emu-test"


@dataclass(frozen=True)
class Expect:
    """What the README says one command does."""

    command: str  # a regular expression that finds the command
    readme_says: str  # the words of the README that promise it (checked to be there)
    status: int
    stdout: str | None = None  # exact, when given
    stdout_has: tuple[str, ...] = ()
    stderr: str | None = ""  # exact, when not None


EXPECTED = [
    Expect(r"^emu -M pc .*hello\.elf -append exit=3", "prints, exits with status 7", 7,
           stdout="Hello from the guest! (x86_64)\ncmdline: exit=3\n"),
    Expect(r"^emu -M virt .*aarch64/hello\.elf", "status 0", 0,
           stdout="Hello from the guest! (aarch64)\ncmdline: \n"),
    Expect(r"^emu -M pc .*vmcoreinfo\.elf --dump-on-exit vmcore$",
           "emu: dump saved to vmcore (127.9 MiB, notes: PRSTATUS, QEMU, VMCOREINFO)", 1,
           stdout_has=("vmcoreinfo: done\n",),
           stderr="emu: dump saved to vmcore (127.9 MiB, notes: PRSTATUS, QEMU, VMCOREINFO)\n"),
    Expect(r"^emu dump-info vmcore ", "the VMCOREINFO text", 0,
           stdout_has=("VMCOREINFO, 203 bytes:\n", f"OSRELEASE={RELEASE}\n", "memory:\n")),
    Expect(r"^crash --osrelease vmcore", f"# {RELEASE}", 0, stdout=f"{RELEASE}\n", stderr=None),
    Expect(r"^python3 -c \"import drgn", f"# {RELEASE}", 0, stdout=f"{RELEASE}\n"),
    Expect(r"^rm -f console\.txt; emu -M virt .*&$", "-qmp unix:emu.qmp,server=on,wait=off &",
           0, stdout=""),
    Expect(r"^until grep", "the client waits until the guest's console", 0, stdout=""),
    Expect(r"^python3 -c \"from qemu\.qmp", "The client prints `{'return': {}}`", 0,
           stdout="{'return': {}}\n"),
    Expect(r"^wait \$!", "status 0", 0, stdout=""),
    Expect(r"^emu dump-info vmcore-virt \| grep OSRELEASE", f"# OSRELEASE={RELEASE}", 0,
           stdout=f"    OSRELEASE={RELEASE}\n"),
    Expect(r"^python3 tools/linux/build\.py x86_64 arm64", "prints each kernel's cached path",
           0, stdout_has=("x86_64: ", "arm64: "), stderr=None),
    Expect(r"^emu -M virt .*print-path arm64.*--dump-on-exit vmcore-linux",
           "etc/vmcoreinfo size: 16", 0,
           stdout_has=("emu-linux init: uname: Linux 6.1.",
                       "emu-linux init: fw_cfg etc/vmcoreinfo size: 16",
                       "Kernel panic - not syncing: sysrq triggered crash"), stderr=None),
    Expect(r"^emu dump-info vmcore-linux \| grep OSRELEASE", "Linux's own note: OSRELEASE=6.1",
           0, stdout_has=("    OSRELEASE=6.1.",)),
    Expect(r"^emu -M pc .*print-path x86_64.*--dump-on-panic vmcore-pc$",
           "`--dump-on-panic` saves the dump at the panic and emu ends", 0,
           stdout_has=("emu-linux init: fw_cfg etc/vmcoreinfo size: 16",
                       "Kernel panic - not syncing: sysrq triggered crash"),
           stderr="emu: dump saved to vmcore-pc (255.9 MiB, notes: PRSTATUS, QEMU, VMCOREINFO)\n"),
    Expect(r"^python3 -m drgn -q -c vmcore-pc", "through `panic` and `sysrq_handle_crash` to the "
           "`write` system call", 0,
           stdout_has=("pvpanic_panic_notify\n", "\npanic\nsysrq_handle_crash\n__handle_sysrq\n"
                       "write_sysrq_trigger\n", "ksys_write\n"), stderr=None),
    Expect(r"^printf 'log\\nbt\\nquit\\n' \| crash",
           "crash prints the kernel's log and its backtrace from `panic` on", 0,
           stdout_has=("sysrq: Trigger a crash", "] panic at ", "] __handle_sysrq at "),
           stderr=None),
]


def readme_blocks() -> list[tuple[str, str]]:
    """(section heading, code) for every code block of README.md, in order."""
    tokens = MarkdownIt().parse((ROOT / "README.md").read_text())
    blocks, section = [], ""
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            section = tokens[i + 1].content
        elif tok.type in ("code_block", "fence"):
            blocks.append((section, tok.content))
    return blocks


def commands(code: str) -> list[str]:
    """The shell commands of a block: lines joined at a trailing backslash, blanks dropped."""
    out, current = [], ""
    for line in code.splitlines():
        if line.endswith("\\"):
            current += line + "\n"
            continue
        current += line
        if current.strip():
            out.append(current.strip())
        current = ""
    return out


def test_every_block_is_run_or_skipped_for_a_stated_reason() -> None:
    sections = {section for section, _ in readme_blocks()}
    assert {"Set up", "Run", "Test"} <= sections
    assert set(NOT_RUN) <= sections  # no stale reason


@dataclass
class ReadmeRun:
    """The outcome of the README's commands: (command, status, stdout, stderr) each, and the
    directory they ran in."""

    results: list[tuple[str, int, str, str]]
    workdir: Path


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> ReadmeRun:
    """Run every command of the run blocks, in order, in one bash."""
    base = tmp_path_factory.mktemp("readme")
    work, results, bindir = base / "work", base / "results", base / "bin"
    for d in (work, results, bindir):
        d.mkdir()
    for entry in ROOT.iterdir():
        if entry.is_dir() and not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    # scripts, not symlinks: a virtual environment's python reached through a symlink in
    # another directory does not find its pyvenv.cfg, so it would lack drgn and qemu.qmp
    for name, args in (("emu", " -m emu"), ("python3", "")):
        (bindir / name).write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)}{args} "$@"\n')
        (bindir / name).chmod(0o755)
    cmds = [c for section, code in readme_blocks() if section not in NOT_RUN
            for c in commands(code)]
    script = []
    for i, cmd in enumerate(cmds):
        script.append(f"{{ {cmd}\n}} >{results}/{i}.out 2>{results}/{i}.err </dev/null; "
                      f"echo $? >{results}/{i}.status")
    # what is still running once the examples are done (the README's examples end emu)
    script.append(f"jobs -p >{results}/left; kill $(jobs -p) 2>/dev/null; wait")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    shell = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=work, env=env,
                             start_new_session=True)
    try:
        status = shell.wait(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(shell.pid, signal.SIGKILL)  # the shell and whatever it left running
        status = shell.wait()
        done = len(list(results.glob("*.status")))
        pytest.fail(f"the README's commands did not finish: stuck at {cmds[done]!r}",
                    pytrace=False)
    assert status == 0
    assert (results / "left").read_text() == "", "a README example left a process running"
    return ReadmeRun([(cmd, int((results / f"{i}.status").read_text()),
                       (results / f"{i}.out").read_text(), (results / f"{i}.err").read_text())
                      for i, cmd in enumerate(cmds)], work)


def test_readme_commands_do_what_the_readme_says(readme_run: ReadmeRun) -> None:
    readme = re.sub(r"\s+", " ", (ROOT / "README.md").read_text())
    used = set()
    for cmd, status, out, err in readme_run.results:
        matches = [e for e in EXPECTED if re.search(e.command, cmd, re.DOTALL)]
        assert len(matches) == 1, f"no single expectation for the README command {cmd!r}"
        e = matches[0]
        used.add(e)
        assert e.readme_says in readme, f"the README no longer says {e.readme_says!r}"
        detail = f"{cmd}\nstatus {status}\nstdout:\n{out}\nstderr:\n{err}"
        assert status == e.status, detail
        if e.stdout is not None:
            assert out == e.stdout, detail
        for text in e.stdout_has:
            assert text in out, detail
        if e.stderr is not None:
            assert err == e.stderr, detail
    assert used == set(EXPECTED), "an expectation matches no README command"


def test_readme_examples_write_only_files_git_ignores(readme_run: ReadmeRun) -> None:
    """The examples write the dumps and the console file where they run (in a checkout: files
    .gitignore lists) and nothing else; emu removed its socket when it quit."""
    written = {p.name for p in readme_run.workdir.iterdir() if not p.is_symlink()}
    assert written == {"vmcore", "vmcore-virt", "console.txt", "vmcore-linux", "vmcore-pc"}
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for name in (*written, "emu.qmp"):
        assert f"/{name}" in ignored, name


def test_guest_images_readme_counts_and_lists_every_image() -> None:
    """guest_images/README.md names as many kernels as guest_images/build.py builds, and its
    table of images has a row for each."""
    build = (ROOT / "guest_images" / "build.py").read_text()
    images = re.findall(r'"(\w+)"', re.search(r"^IMAGES = \[(.*?)\]", build, re.S | re.M)[1])
    text = (ROOT / "guest_images" / "README.md").read_text()
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
             "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
             "seventeen", "eighteen", "nineteen", "twenty"]
    count = re.search(r"^(\w+) small kernels", text, re.M)[1].lower()
    assert count == words[len(images)]
    table = text.split("## The images\n\n", 1)[1].split("\n\n", 1)[0]
    assert sorted(re.findall(r"^\| `(\w+)` \|", table, re.M)) == sorted(images)
