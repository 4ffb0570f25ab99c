"""Bad input, with QEMU 7.2 as the reference: what emu refuses, it refuses in one line with a
non-zero exit and no traceback; what QEMU accepts, emu accepts.

Files that never end (``/dev/zero``, an endless pipe), ``-device ...,id=``, ELF kernels with
overlapping segments, long ``-append`` lines, unknown ``-M`` / ``-m`` properties, ``-trace``
patterns that match nothing.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest
from conftest import EXIT_DEVICE, MACHINES, ROOT, boot_args, emu_cmd, image, run_emu, run_qemu

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


def test_every_device_type_takes_an_id() -> None:
    """Whatever types ``-device help`` lists (plugins add theirs), on each machine they plug
    into, ``id=`` changes nothing the guest or the user sees."""
    listed = run_emu(["-device", "help"]).stdout.decode()
    types = [(line.split('"')[1], line.split(" machines ")[1].split(",")[0])
             for line in listed.splitlines() if line.startswith("name ")]
    assert {name for name, _ in types} >= {d.split(",")[0] for d in PC_DEVICES}
    for name, where in types:
        for machine in ("pc", "virt"):
            if where != "any machine" and machine not in where.split("/"):
                continue
            plain = run_emu(boot_args(machine, "hello", "-device", name))
            with_id = run_emu(boot_args(machine, "hello", "-device", f"{name},id=my-{name}"))
            assert (with_id.returncode, with_id.stdout, with_id.stderr) == \
                (plain.returncode, plain.stdout, plain.stderr), (name, machine)


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


# -- overlapping PT_LOAD segments -------------------------------------------------------------

def _overlapping(machine: str, tmp_path: Path, filesz: int | None = None) -> str:
    """The hello image with its second PT_LOAD moved 0x100 bytes into the first; ``filesz``:
    give it that many file bytes (from the first segment's offset) instead of its own."""
    raw = bytearray(Path(image(machine, "hello")).read_bytes())
    phoff, = struct.unpack_from("<Q", raw, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", raw, 0x36)
    loads = [phoff + i * phentsize for i in range(phnum)
             if struct.unpack_from("<I", raw, phoff + i * phentsize)[0] == 1]  # PT_LOAD
    offset0, _v, base = struct.unpack_from("<QQQ", raw, loads[0] + 8)
    struct.pack_into("<QQ", raw, loads[1] + 16, base + 0x100, base + 0x100)  # vaddr, paddr
    if filesz is not None:
        struct.pack_into("<Q", raw, loads[1] + 8, offset0)
        struct.pack_into("<Q", raw, loads[1] + 32, filesz)
    path = tmp_path / f"overlap-{machine}.elf"
    path.write_bytes(bytes(raw))
    return str(path)


@pytest.mark.parametrize("boot", ["firmware", "--direct-boot"])
def test_overlapping_segments_are_refused_as_qemu_refuses_them(machine: str, boot: str,
                                                               tmp_path: Path) -> None:
    """File bytes of segment 1 over those of segment 0: QEMU refuses to start ('Some ROM
    regions are overlapping', naming both); so does emu, through its firmware or not,
    instead of loading them and letting the guest crash."""
    kernel = _overlapping(machine, tmp_path, filesz=0x100)
    args = boot_args(machine, "hello")
    args[args.index("-kernel") + 1] = kernel
    qemu = run_qemu(machine, args)
    assert qemu.returncode == 1 and qemu.stdout == b""
    qemu_err = qemu.stderr.decode()
    assert "Some ROM regions are overlapping" in qemu_err
    assert f"{kernel} ELF program header segment 0 " in qemu_err
    assert f"{kernel} ELF program header segment 1 " in qemu_err
    emu_args = args + ([boot] if boot.startswith("--") else [])
    line = _one_line_error(run_emu(emu_args))
    assert line.startswith(f"emu: -kernel {kernel}: ELF program header segments 0 (0x")
    assert line.endswith(") overlap") and " and 1 (0x" in line


def test_bss_over_another_segment_is_refused(machine: str, tmp_path: Path) -> None:
    """Segment 1's zero-filled part over segment 0's code. QEMU checks only file-backed
    parts and never zero-fills, so on virt (whose hello has a bss-only segment 1) it boots
    the image with the code intact; any loader that zero-fills as the ELF specification
    says, emu's firmware among them, would clear the code. emu refuses it on every path."""
    kernel = _overlapping(machine, tmp_path)
    for boot in ([], ["--direct-boot"]):
        args = boot_args(machine, "hello", *boot)
        args[args.index("-kernel") + 1] = kernel
        line = _one_line_error(run_emu(args))
        assert line.startswith(f"emu: -kernel {kernel}: ELF program header segments 0 (0x")


# -- long -append lines -------------------------------------------------------------------------

def test_virt_direct_boot_takes_a_long_command_line_as_qemu_does() -> None:
    """Without firmware the device tree goes straight into RAM, below the kernel, as QEMU
    puts it (hw/arm/boot.c): a 70000-byte command line reaches the guest whole on both."""
    line = "x" * 70000
    args = boot_args("virt", "hello", "-append", line)
    qemu = run_qemu("virt", args)
    assert qemu.returncode == 0 and f"cmdline: {line}\n".encode() in qemu.stdout
    result = run_emu([*args, "--direct-boot"])
    assert (result.returncode, result.stdout, result.stderr) == (0, qemu.stdout, b"")


def test_virt_firmware_takes_a_long_command_line_as_qemu_does() -> None:
    """emu's firmware puts an ELF kernel's 1 MiB device tree at the base of RAM, its used
    part below the firmware's stack (firmware/README.md): a 70000-byte command line reaches
    the guest whole, as on QEMU."""
    line = "x" * 70000
    args = boot_args("virt", "hello", "-append", line)
    qemu = run_qemu("virt", args)
    assert qemu.returncode == 0 and f"cmdline: {line}\n".encode() in qemu.stdout
    result = run_emu(args)
    assert (result.returncode, result.stdout, result.stderr) == (0, qemu.stdout, b"")


def test_pc_command_line_limit_is_the_same_on_both_paths() -> None:
    """On pc the command line sits in the boot area (4095 bytes and the NUL), through the
    firmware and without it; one byte more is refused rather than cut short. QEMU 7.2's
    pvh.bin gives a 4095-byte line the same, but a 5000-byte one reaches the guest empty
    (and one of 32 KiB hangs it)."""
    ok = boot_args("pc", "hello", "-append", "y" * 4095)
    qemu = run_qemu("pc", ok)
    assert f"cmdline: {'y' * 4095}\n".encode() in qemu.stdout
    for boot in ([], ["--direct-boot"]):
        assert run_emu([*ok, *boot]).stdout == qemu.stdout
        line = _one_line_error(run_emu(boot_args("pc", "hello", "-append", "y" * 4096, *boot)))
        assert line == "emu: -append: command line longer than 4095 bytes"
    lost = run_qemu("pc", boot_args("pc", "hello", "-append", "y" * 5000))
    assert lost.stdout.endswith(b"cmdline: \n")


# -- -machine and -m properties -------------------------------------------------------------

QEMU_WORDS = [
    ("pc", ["-M", "pc,foo=bar"]),
    ("virt", ["-M", "virt,foo=bar"]),
    ("pc", ["-M", "pc,hpet=off,foo=1"]),  # hpet: a pc property; foo: checked on its own
    ("pc", ["-M", "pc,hpet=maybe"]),
    ("pc", ["-M", "pc,usb=maybe"]),
    ("pc", ["-M", "pc,dump-guest-core=2"]),
    ("pc", ["-M", "pc", "-m", "64M,slots=2"]),
    ("virt", ["-M", "virt", "-m", "64M,slots=2"]),
    ("pc", ["-M", "pc", "-m", "64M,slots=0"]),
    ("pc", ["-M", "pc", "-m", "64M,foo=2"]),
    ("pc", ["-M", "pc", "-m", "64M,maxmem=32M"]),
    ("pc", ["-M", "pc", "-m", "64,maxmem=100"]),  # maxmem: bytes; size: MiB
    ("pc", ["-M", "pc", "-m", "64M,maxmem=64M,slots=2"]),
    ("pc", ["-M", "pc", "-m", "64M,maxmem=1G,slots=two"]),
]


@pytest.mark.parametrize("machine, args", QEMU_WORDS, ids=[" ".join(a) for _, a in QEMU_WORDS])
def test_machine_and_memory_errors_in_qemus_words(machine: str, args: list[str]) -> None:
    if machine == "virt":
        args = [*args, "-cpu", "cortex-a57"]
    args = [*args, "-display", "none", "-serial", "none",
            "-kernel", image(machine, "hello")]
    qemu = run_qemu(machine, args)
    assert qemu.returncode == 1
    line = _one_line_error(run_emu(args))
    assert line == _qemu_line(qemu, MACHINES[machine][1])


def test_maxmem_beyond_the_ram_size_is_refused() -> None:
    """QEMU adds hotpluggable memory above the RAM; emu has none, and says so."""
    args = ["-M", "pc", "-m", "64M,maxmem=1G", "-kernel", PC_HELLO]
    assert run_qemu("pc", [*args, *EXIT_DEVICE, "-display", "none"]).returncode == 1  # booted
    assert _one_line_error(run_emu(args)) == ("emu: -m 64M,maxmem=1G: emu has no memory "
                                              "hotplug: maxmem must equal the RAM size")


@pytest.mark.parametrize("machine, options", [
    ("pc", "usb=off,dump-guest-core=off,mem-merge=off,suppress-vmdesc=on,accel=kvm:tcg"),
    ("virt", "secure=off,virtualization=off,mte=off,ras=off,usb=off,dump-guest-core=on"),
])
def test_properties_emu_honours_boot_as_on_qemu(machine: str, options: str) -> None:
    """The -machine properties emu takes: the defaults of what it does not model, and those
    that only concern the host; -m with maxmem equal to the size. The guest sees what QEMU's
    guest sees."""
    args = boot_args(machine, "hello", "-m", "64M,maxmem=64M,slots=0")
    args[args.index("-M") + 1] = f"{machine},{options}"
    qemu = run_qemu(machine, args)
    assert qemu.stdout.startswith(b"Hello from the guest!"), qemu.stderr
    result = run_emu(args)
    assert (result.returncode, result.stdout, result.stderr) == \
        (qemu.returncode, qemu.stdout, b"")


@pytest.mark.parametrize("options, message", [
    ("pc,usb=on", "emu: -machine pc,usb=on: emu's pc machine does not model a USB controller "
     "(usb=on)"),
    ("virt,secure=on", "emu: -machine virt,secure=on: emu's virt machine does not model the "
     "EL3 Security Extensions (secure=on)"),
    ("pc,smm=off", "emu: -machine pc,smm=off: emu does not support the machine property "
     "'smm'"),
    ("pc,accel=kvm", "emu: -machine pc,accel=kvm: emu provides the tcg and qtest "
     "accelerators"),
])
def test_properties_emu_cannot_honour(options: str, message: str) -> None:
    assert _one_line_error(run_emu(["-M", options, "-kernel", PC_HELLO])) == message


def test_machine_kernel_property_is_kernel() -> None:
    """QEMU's -kernel is the machine property kernel=; both spellings boot."""
    args = boot_args("pc", "hello")
    at = args.index("-kernel")
    kernel = args[at + 1]
    del args[at:at + 2]
    args[args.index("-M") + 1] = f"pc,kernel={kernel},append=exit=0 as a property"
    qemu = run_qemu("pc", args)
    assert b"cmdline: exit=0 as a property\n" in qemu.stdout
    assert run_emu(args).stdout == qemu.stdout


# -- -trace patterns that match nothing ----------------------------------------------------------

@pytest.mark.parametrize("pattern", ["no_such_event", "enable=fw_cfg_selekt"])
def test_unknown_trace_event_warns_as_qemu_warns(pattern: str) -> None:
    args = boot_args("pc", "hello", "-trace", pattern)
    qemu = run_qemu("pc", args)
    emu = run_emu(args)
    assert emu.stdout == qemu.stdout and emu.returncode == qemu.returncode == 1
    assert emu.stderr.decode() == _qemu_line(qemu, "qemu-system-x86_64") + "\n"
    assert "warning: trace event '" in emu.stderr.decode()


def test_wildcard_matching_nothing_warns() -> None:
    """QEMU is silent about a wildcard that enables nothing; emu says so."""
    result = run_emu(boot_args("pc", "hello", "-trace", "fwcfg_*"))
    assert result.stderr == b"emu: -trace fwcfg_*: warning: no trace event matches 'fwcfg_*'\n"
    assert result.stdout.startswith(b"Hello from the guest!")


def test_trace_events_list_every_event_emu_emits() -> None:
    """emu.trace.EVENTS is what -trace checks patterns against: every trace() call in emu
    names one of them, and each of them is emitted somewhere."""
    import re

    from emu import trace

    emitted = set()
    for source in (Path(__file__).parent.parent / "emu").rglob("*.py"):
        emitted |= set(re.findall(r'\btrace\(\s*"([a-z0-9_]+)"', source.read_text()))
    assert emitted == trace.EVENTS


# -- signals --------------------------------------------------------------------------------------

def _start(program: str, machine: str) -> subprocess.Popen:
    """emu or QEMU running the halt image (it prints a line, then halts for good)."""
    args = boot_args(machine, "halt")
    if program == "emu":
        cmd = [*emu_cmd(), *args]
    else:
        binary = shutil.which(MACHINES[machine][1])
        assert binary
        cmd = [binary, *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=ROOT)
    seen = b""
    while b"halting" not in seen:
        chunk = os.read(proc.stdout.fileno(), 4096)  # type: ignore[union-attr]
        assert chunk, f"{program} ended early: {proc.stderr.read()!r}"  # type: ignore[union-attr]
        seen += chunk
    return proc


def _signalled(program: str, machine: str, *signals: signal.Signals) -> tuple[int, str]:
    """Send ``signals`` in turn (a second apart) to a running ``program``; its exit status
    and stderr with the program's name turned into emu's."""
    proc = _start(program, machine)
    try:
        for sig in signals:
            assert proc.poll() is None, f"{program} ended before {sig.name}"
            proc.send_signal(sig)
            time.sleep(1.0)
        status = proc.wait(timeout=20)
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    return status, err.replace(f"{MACHINES[machine][1]}: ", "emu: ")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_terminating_signal_names_its_sender_as_qemu_does(machine: str,
                                                          sig: signal.Signals) -> None:
    """'terminating on signal 15 from pid N (NAME)': N and NAME are this test's process."""
    qemu = _signalled("qemu", machine, sig)
    assert qemu[1].startswith(f"emu: terminating on signal {int(sig)} from pid {os.getpid()} (")
    assert _signalled("emu", machine, sig) == qemu


def test_sigusr1_is_ignored_as_qemu_ignores_it() -> None:
    """Both keep running after SIGUSR1 and end on the SIGTERM that follows."""
    qemu = _signalled("qemu", "pc", signal.SIGUSR1, signal.SIGTERM)
    assert qemu[0] == 0 and "signal 15" in qemu[1]
    assert _signalled("emu", "pc", signal.SIGUSR1, signal.SIGTERM) == qemu


# -- --dump-on-exit on every end of the run -----------------------------------------------------

def _dump_pc(core: Path) -> str:
    """The program counter a dump holds, as emu dump-info prints it."""
    info = run_emu(["dump-info", str(core)])
    assert info.returncode == 0, info.stderr
    text = info.stdout.decode()
    for word in text.split():
        if word.startswith(("rip=", "pc=")):
            return word.split("=")[1]
    raise AssertionError(f"no program counter in {text!r}")


@pytest.mark.parametrize("name", ["trap", "unmapped"])
@pytest.mark.parametrize("boot", ["firmware", "--direct-boot"])
def test_fatal_cpu_state_is_dumped(machine: str, name: str, boot: str, tmp_path: Path) -> None:
    """A guest that leaves the CPU where emu cannot go on (a triple fault, an exception
    emu cannot deliver, a jump to nowhere): the dump holds that state, its PC the one the
    fatal message names."""
    core = tmp_path / "core"
    if machine == "pc" and name == "trap":
        name = "unmapped"  # (pc's trap is a triple fault, which resets the machine)
    args = boot_args(machine, name, "--dump-on-exit", str(core))
    result = run_emu(args + ([boot] if boot.startswith("--") else []))
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 2 and lines[0].startswith("emu: fatal: "), lines
    assert lines[1].startswith(f"emu: dump saved to {core} ("), lines
    pc = int(lines[0].rsplit("pc=", 1)[1], 16)
    assert int(_dump_pc(core), 16) == pc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_is_dumped(machine: str, sig: signal.Signals, tmp_path: Path) -> None:
    """A halted guest ended by a signal: QEMU's message, exit status 0, and the dump."""
    core = tmp_path / "core"
    args = boot_args(machine, "halt", "--dump-on-exit", str(core))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([*emu_cmd(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    try:
        seen = b""
        while b"halting" not in seen:
            chunk = os.read(proc.stdout.fileno(), 4096)  # type: ignore[union-attr]
            assert chunk, proc.stderr.read()  # type: ignore[union-attr]
            seen += chunk
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    assert err.startswith(f"emu: terminating on signal {int(sig)} from pid {os.getpid()} (")
    assert "Traceback" not in err
    assert _dump_pc(core)  # a readable dump with the CPU's registers


def test_qmp_quit_is_dumped(tmp_path: Path) -> None:
    from qemu.qmp.legacy import QEMUMonitorProtocol

    core = tmp_path / "core"
    sock = tmp_path / "qmp.sock"
    args = boot_args("virt", "halt", "--dump-on-exit", str(core), "-qmp",
                     f"unix:{sock},server=on,wait=off")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([*emu_cmd(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    try:
        for _ in range(600):
            if sock.exists():
                break
            time.sleep(0.05)
        qmp = QEMUMonitorProtocol(str(sock))
        qmp.connect()
        qmp.cmd_obj({"execute": "quit"})
        qmp.close()
        assert proc.wait(timeout=60) == 0
        err = proc.stderr.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    assert b"Traceback" not in err
    assert _dump_pc(core)


def test_guest_exit_is_still_dumped(machine: str, tmp_path: Path) -> None:
    core = tmp_path / "core"
    result = run_emu(boot_args(machine, "hello", "--dump-on-exit", str(core)))
    assert result.returncode == (1 if machine == "pc" else 0)
    assert _dump_pc(core)


# -- --dump-on-panic without a pvpanic device ---------------------------------------------------

@pytest.mark.parametrize("machine, devices, warning", [
    ("pc", [], "emu: warning: --dump-on-panic: there is no pvpanic device (-device pvpanic), "
     "so it can never fire\n"),
    ("virt", [], "emu: warning: --dump-on-panic: the virt machine has no pvpanic device, so "
     "it can never fire\n"),
    ("pc", ["-device", "pvpanic"], ""),
])
def test_dump_on_panic_warns_when_it_can_never_fire(machine: str, devices: list[str],
                                                   warning: str, tmp_path: Path) -> None:
    core = tmp_path / "core"
    result = run_emu(boot_args(machine, "hello", *devices, "--dump-on-panic", str(core)))
    assert result.stderr.decode() == warning
    assert result.stdout.startswith(b"Hello from the guest!")
    assert not core.exists()


def test_signal_while_waiting_for_a_qmp_client(tmp_path: Path) -> None:
    """-qmp ...,wait=on holds the guest until a client connects; a signal meanwhile ends emu
    with QEMU's message (QEMU itself dies of it silently: its handlers are not set yet)."""
    sock = tmp_path / "wait.qmp"
    args = boot_args("pc", "halt", "-qmp", f"unix:{sock},server=on,wait=on")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([*emu_cmd(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    try:
        for _ in range(600):
            if sock.exists():
                break
            time.sleep(0.05)
        assert sock.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
        out = proc.stdout.read()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    where = f"unix:{sock},server=on"
    assert err == (f"emu: -qmp {where},wait=on: info: emu waiting for connection on: "
                   f"disconnected:{where}\n"
                   f"emu: terminating on signal 15 from pid {os.getpid()} (" +
                   Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0].decode() +
                   ")\n")
    assert out == b"" and not sock.exists()
