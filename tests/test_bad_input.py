"""Bad input, with QEMU 7.2 as the reference: what emu refuses, it refuses in one line with a
non-zero exit and no traceback; what QEMU accepts, emu accepts.

Files that never end (``/dev/zero``, an endless pipe), ``-device ...,id=``, ELF kernels with
overlapping segments, long ``-append`` lines, unknown ``-M`` / ``-m`` properties, ``-trace``
patterns that match nothing.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import EXIT_DEVICE, MACHINES, boot_args, image, run_emu, run_qemu

PC_HELLO = image("pc", "hello")
VIRT_HELLO = image("virt", "hello")


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused run (and check that it is one)."""
    text = result.stderr.decode()
    assert result.returncode == 1, text
    assert text.count("\n") == 1 and text.startswith("emu: "), text
    assert "Traceback" not in text
    return text.rstrip("\n")


def _qemu_limited(machine: str, args: list[str]) -> subprocess.CompletedProcess:
    """QEMU with its address space capped at 6 GiB, so that an endless file cannot take the
    host's memory (QEMU reads some of them until an allocation fails)."""
    binary = shutil.which(MACHINES[machine][1])
    assert binary

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    return subprocess.run([binary, *args, "-display", "none", "-serial", "none"],
                          capture_output=True, timeout=60, preexec_fn=cap)


# -- files without an end ---------------------------------------------------------------------

ENDLESS = [
    (["-kernel", "/dev/zero"], "emu: -kernel /dev/zero: not a regular file or a pipe"),
    (["-kernel", PC_HELLO, "-initrd", "/dev/zero"],
     "emu: -initrd /dev/zero: not a regular file or a pipe"),
    (["-bios", "/dev/zero"], "emu: -bios /dev/zero: not a regular file or a pipe"),
    (["-kernel", PC_HELLO, "-fw_cfg", "name=opt/a,file=/dev/zero"],
     "emu: -fw_cfg name=opt/a,file=/dev/zero: can't load /dev/zero: not a regular file or a "
     "pipe"),
]


@pytest.mark.parametrize("args, message", ENDLESS, ids=["kernel", "initrd", "bios", "fw_cfg"])
def test_dev_zero_is_refused_as_qemu_refuses_it(args: list[str], message: str) -> None:
    """QEMU's pc refuses each of them (in four different ways: 'could not load kernel',
    'error reading initrd', 'could not load PC BIOS', 'can't load ... Could not allocate');
    emu says why in one line, before reading anything."""
    qemu = _qemu_limited("pc", ["-M", "pc", *args])
    assert qemu.returncode == 1, qemu.stderr
    assert qemu.stderr, "QEMU refuses with a message"
    assert _one_line_error(run_emu(["-M", "pc", *args])) == message


@pytest.mark.parametrize("args, option", [
    (["-kernel", "/dev/zero"], "-kernel"),
    (["-kernel", VIRT_HELLO, "-initrd", "/dev/zero"], "-initrd"),
    (["-bios", "/dev/zero"], "-bios"),
    (["-kernel", VIRT_HELLO, "-fw_cfg", "name=opt/a,file=/dev/zero"], "-fw_cfg"),
])
def test_dev_zero_on_virt(args: list[str], option: str) -> None:
    """QEMU's virt takes /dev/zero as an empty file (its size is 0): -kernel and -bios then
    run zeros forever, an empty initrd boots. emu refuses a device file on both machines."""
    line = _one_line_error(run_emu(["-M", "virt", "-cpu", "cortex-a57", *args]))
    assert line.startswith(f"emu: {option} ") and line.endswith("not a regular file or a pipe")


ENDLESS_PIPES = [
    ("pc", ["-m", "64M", "-kernel", "/dev/stdin"],
     "emu: -kernel /dev/stdin: a pipe giving more than the guest's 64 MiB of RAM"),
    ("virt", ["-m", "64M", "-kernel", "/dev/stdin"],
     "emu: -kernel /dev/stdin: a pipe giving more than the guest's 64 MiB of RAM"),
    ("virt", ["-m", "64M", "-kernel", VIRT_HELLO, "-initrd", "/dev/stdin"],
     "emu: -initrd /dev/stdin: a pipe giving more than the guest's 64 MiB of RAM"),
    ("pc", ["-bios", "/dev/stdin"],
     "emu: -bios /dev/stdin: could not load PC BIOS: larger than 16 MiB"),
    ("virt", ["-bios", "/dev/stdin"],
     "emu: -bios /dev/stdin: could not load ROM image: larger than the 64 MiB flash"),
]


@pytest.mark.parametrize("machine, args, message", ENDLESS_PIPES,
                         ids=[f"{m}{a[-2]}" for m, a, _ in ENDLESS_PIPES])
def test_endless_pipe_is_read_no_further_than_what_fits(machine: str, args: list[str],
                                                        message: str) -> None:
    """A pipe is allowed (a piped -kernel boots: test_firmware), but read only as far as what
    can fit: the guest's RAM for -kernel and -initrd, the ROM for -bios."""
    with subprocess.Popen(["cat", "/dev/zero"], stdout=subprocess.PIPE) as cat:
        try:
            result = run_emu(["-M", machine, *args], stdin=cat.stdout)
        finally:
            cat.kill()
    assert _one_line_error(result) == message


def test_pipe_within_the_limit_boots(machine: str, tmp_path: Path) -> None:
    """An initrd from a pipe, shorter than RAM, arrives whole: the guest prints the same size
    and checksum as when the same bytes come from a regular file, and on pc as QEMU's guest
    does (QEMU cannot take an initrd from a pipe, 'mmap() failed'; its virt gives an ELF
    kernel no initrd)."""
    data = bytes(range(256)) * 20
    initrd = tmp_path / "initrd"
    initrd.write_bytes(data)
    piped = run_emu(boot_args(machine, "hello", "-initrd", "/dev/stdin"), input=data)
    from_file = run_emu(boot_args(machine, "hello", "-initrd", str(initrd)))
    assert b"initrd: size=5120 " in piped.stdout, piped.stderr
    assert piped.stdout == from_file.stdout
    if machine == "pc":
        assert piped.stdout == run_qemu(machine, boot_args(machine, "hello", "-initrd",
                                                           str(initrd))).stdout


# -- -device ...,id= ----------------------------------------------------------------------------

#: every device type emu has, with the options that place it on pc as QEMU places it
PC_DEVICES = ["isa-debug-exit,iobase=0xf4,iosize=0x04", "pvpanic", "vmcoreinfo"]


def _qemu_line(result: subprocess.CompletedProcess, binary: str) -> str:
    """QEMU's first stderr line, with emu's program name."""
    return "emu: " + result.stderr.decode().splitlines()[0].removeprefix(f"{binary}: ")


def test_every_device_type_is_listed_here() -> None:
    listed = run_emu(["-device", "help"]).stdout.decode()
    names = {line.split('"')[1] for line in listed.splitlines() if line.startswith("name ")}
    assert names == {d.split(",")[0] for d in PC_DEVICES}


@pytest.mark.parametrize("device", PC_DEVICES)
def test_every_device_takes_an_id(device: str) -> None:
    args = boot_args("pc", "hello", "-device", f"{device},id=dev0")
    if device.startswith("isa-debug-exit"):  # instead of the one boot_args gives
        at = args.index(EXIT_DEVICE[1])
        del args[at - 1:at + 1]
    qemu = run_qemu("pc", args)
    result = run_emu(args)
    assert qemu.returncode == 1 and qemu.stdout.startswith(b"Hello from the guest!")
    assert (result.returncode, result.stdout, result.stderr) == (1, qemu.stdout, b"")


def test_vmcoreinfo_takes_an_id_on_virt() -> None:
    args = boot_args("virt", "hello", "-device", "vmcoreinfo,id=vmci")
    qemu = run_qemu("virt", args)
    result = run_emu(args)
    assert qemu.returncode == 0 and qemu.stdout.startswith(b"Hello from the guest!")
    assert (result.returncode, result.stdout, result.stderr) == (0, qemu.stdout, b"")


@pytest.mark.parametrize("devices", [
    ["pvpanic,id=foo", "vmcoreinfo,id=foo"],
    ["vmcoreinfo,id=x.y", "pvpanic,id=x.y"],
])
def test_duplicate_device_id_is_refused_as_qemu_refuses_it(devices: list[str]) -> None:
    args = ["-M", "pc", "-display", "none", "-serial", "none", "-kernel", PC_HELLO]
    for d in devices:
        args += ["-device", d]
    qemu = run_qemu("pc", args)
    assert qemu.returncode == 1
    assert _one_line_error(run_emu(args)) == _qemu_line(qemu, "qemu-system-x86_64")


@pytest.mark.parametrize("bad_id", ["1foo", "", "a b", "x/y"])
def test_malformed_device_id_is_refused(bad_id: str) -> None:
    """QEMU's error is two lines (the rule on a second one); emu's is QEMU's first line with
    the rule in parentheses."""
    args = ["-M", "pc", "-display", "none", "-serial", "none", "-kernel", PC_HELLO,
            "-device", f"pvpanic,id={bad_id}"]
    qemu = run_qemu("pc", args)
    assert qemu.returncode == 1
    line = _one_line_error(run_emu(args))
    assert line == _qemu_line(qemu, "qemu-system-x86_64") + (
        " (letters, digits, '-', '.', '_', starting with a letter)")
