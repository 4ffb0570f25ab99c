"""Every user mistake: one line on stderr in QEMU's style, exit status 1, no traceback."""

from __future__ import annotations

import re

import pytest
from conftest import MACHINES, ROOT, image, run_emu, run_qemu

BAD_ELF_ARCH = image("virt", "hello")  # an aarch64 file given to the pc machine


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("files")
    text = d / "notelf.txt"
    text.write_text("just text\n")
    # an x86_64 ELF without the PVH note: the hello image with the note's type changed
    raw = bytearray((ROOT / "guest_images/x86_64/hello.elf").read_bytes())
    at = raw.find(b"Xen\0")
    assert at > 0
    raw[at - 4 : at] = (99).to_bytes(4, "little")  # n_type 18 -> 99
    nopvh = d / "nopvh.elf"
    nopvh.write_bytes(raw)
    return {"text": str(text), "nopvh": str(nopvh), "dir": str(d)}


CASES = [
    (["-M", "pc", "-frobnicate"], "emu: -frobnicate: invalid option"),
    (["-M", "pc", "-m"], "emu: -m: requires an argument"),
    (["-M", "pc", "-m", "lots"], "emu: -m lots: invalid RAM size"),
    (["-M", "pc", "-m", "0"], "emu: -m 0: RAM size too small (at least 1M)"),
    (["-M", "q35"], "emu: -machine q35: unsupported machine type "
     "(use -machine help to list supported machines)"),
    (["-M", "pc", "-device", "foo"], "emu: -device foo: 'foo' is not a valid device model name"),
    (["-M", "pc", "-device", "isa-debug-exit,colour=red"],
     "emu: -device isa-debug-exit,colour=red: Property 'isa-debug-exit.colour' not found"),
    (["-M", "pc", "-device", "isa-debug-exit,iobase=port"],
     "emu: -device isa-debug-exit,iobase=port: Property 'isa-debug-exit.iobase' expects an "
     "integer"),
    (["-M", "virt", "-device", "isa-debug-exit"],
     "emu: -device isa-debug-exit: 'isa-debug-exit' is not available on machine 'virt'"),
    (["-M", "pc", "-cpu", "pentium9"], "emu: -cpu pentium9: unable to find CPU model 'pentium9'"),
    (["-M", "virt", "-cpu", "qemu64"], "emu: -cpu qemu64: unable to find CPU model 'qemu64'"),
    (["-M", "pc", "-kernel", "/nonexistent/kernel"],
     "emu: -kernel /nonexistent/kernel: could not open: No such file or directory"),
    (["-M", "pc", "-kernel", "{text}"], "emu: -kernel {text}: not an ELF file"),
    (["-M", "pc", "-kernel", "{dir}"], "emu: -kernel {dir}: could not open: Is a directory"),
    (["-M", "pc", "-kernel", BAD_ELF_ARCH],
     f"emu: -kernel {BAD_ELF_ARCH}: aarch64 ELF file, but machine 'pc' needs x86_64"),
    (["-M", "pc", "-kernel", "{nopvh}"],
     "emu: -kernel {nopvh}: no PVH entry point (ELF note Xen/XEN_ELFNOTE_PHYS32_ENTRY)"),
    (["-M", "virt", "-m", "64M", "-kernel", image("virt", "hello")], None),  # fits: no error
    (["-M", "pc", "-m", "1M", "-kernel", image("pc", "hello")],
     f"emu: -kernel {image('pc', 'hello')}: segment 0x100000-0x1005cb is outside RAM"),
    (["-M", "pc", "-serial", "tcp:1.2.3.4:5", "-kernel", image("pc", "hello")],
     "emu: -serial tcp:1.2.3.4:5: unsupported backend (use stdio, file:PATH or none)"),
    (["-M", "pc", "-serial", "file:/nonexistent/dir/out", "-kernel", image("pc", "hello")],
     "emu: -serial file:/nonexistent/dir/out: could not open '/nonexistent/dir/out': "
     "No such file or directory"),
    (["-M", "pc", "-display", "gtk"], "emu: -display gtk: emu has no graphical display (use none)"),
    (["-M", "pc", "-uuid", "not-a-uuid"], "emu: -uuid not-a-uuid: invalid UUID"),
    (["-M", "pc", "-smp", "4,maxcpus=2"], "emu: -smp 4,maxcpus=2: invalid CPU count"),
    (["-M", "pc", "-smp", "two"], "emu: -smp two: invalid number 'two'"),
    (["-M", "pc"], "emu: no -kernel given: emu's firmware boots a -kernel FILE "
                   "(there are no disks to boot from)"),
    (["-kernel", image("pc", "hello")],
     "emu: no machine given: use -M pc (x86_64) or -M virt (aarch64)"),
    (["stray"], "emu: stray: unexpected argument (options start with '-')"),
]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_user_error(args: list[str], message: str | None, odd_files: dict[str, str]) -> None:
    args = [a.format(**odd_files) for a in args]
    result = run_emu([*args, "-display", "none", "-serial", "none"]
                     if message is None else args)
    if message is None:
        assert result.returncode == 0, result.stderr
        return
    message = message.format(**odd_files)
    assert result.stderr.decode() == message + "\n"
    assert result.returncode == 1
    assert result.stdout == b""


def test_device_help_lists_types_with_their_source() -> None:
    result = run_emu(["-device", "help"])
    assert result.returncode == 0
    assert b'name "isa-debug-exit"' in result.stdout and b"from built-in" in result.stdout


PROPERTY_LINE = re.compile(r"  (\S+)=<\S+>\s+ - .*\(default: (\S+)\)$")


@pytest.mark.parametrize("device", ["isa-debug-exit", "pvpanic"])
def test_device_property_help_has_qemus_format_and_defaults(device: str) -> None:
    """QEMU lists every property of the type; emu lists the ones it honours, in QEMU's layout
    and with QEMU's defaults."""
    emu, qemu = run_emu(["-device", f"{device},help"]), run_qemu("pc", ["-device",
                                                                        f"{device},help"])
    assert emu.returncode == qemu.returncode == 0 and emu.stderr == b""
    emu_lines, qemu_lines = emu.stdout.decode().splitlines(), qemu.stdout.decode().splitlines()
    assert emu_lines[0] == qemu_lines[0] == f"{device} options:"
    qemu_defaults = dict(m.groups() for m in map(PROPERTY_LINE.match, qemu_lines) if m)
    emu_defaults = dict(m.groups() for m in map(PROPERTY_LINE.match, emu_lines) if m)
    assert len(emu_defaults) == len(emu_lines) - 1 and emu_defaults
    for name, default in emu_defaults.items():
        assert qemu_defaults[name] == default, name
    for line in emu_lines[1:]:  # the description starts in column 25, as QEMU's does
        assert line.index(" - ") == 24, line


def test_device_without_properties_says_so_like_qemu() -> None:
    emu, qemu = run_emu(["-device", "vmcoreinfo,help"]), run_qemu("pc", ["-device",
                                                                         "vmcoreinfo,help"])
    assert emu.stdout == qemu.stdout == b"There are no options for vmcoreinfo.\n"
    assert emu.returncode == qemu.returncode == 0


def _qemu_cpu_names(machine: str) -> set[str]:
    result = run_qemu(machine, ["-cpu", "help"])
    assert result.returncode == 0
    lines = result.stdout.decode().split("\n\n")[0].splitlines()
    assert lines[0] == "Available CPUs:"
    return {line.split()[1] if machine == "pc" else line.strip() for line in lines[1:]}


@pytest.mark.parametrize("machine", ["pc", "virt"])
def test_cpu_help_lists_qemu_models_like_qemu(machine: str) -> None:
    """``-cpu help`` prints on stdout and exits 0, as qemu-system-* does; every model emu
    lists is one QEMU lists, in QEMU's line format for that machine."""
    result = run_emu(["-M", machine, "-cpu", "help"])
    assert result.returncode == 0 and result.stderr == b""
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "Available CPUs:"
    shape = r"x86 \S+( {2,}\S.*)?" if machine == "pc" else r"  \S+"
    assert all(re.fullmatch(shape, line) for line in lines[1:]), lines
    names = [line.split()[1] if machine == "pc" else line.strip() for line in lines[1:]]
    assert set(names) <= _qemu_cpu_names(machine)
    assert {"pc": "qemu64", "virt": "cortex-a57"}[machine] in names and "max" in names


def test_cpu_help_without_machine_lists_both() -> None:
    result = run_emu(["-cpu", "help"])
    assert result.returncode == 0 and result.stderr == b""
    pc, virt = result.stdout.decode().split("\n\n")
    assert pc.splitlines()[1:] == run_emu(["-M", "pc", "-cpu", "help"]).stdout.decode() \
        .splitlines()[1:]
    assert virt.splitlines()[1:] == run_emu(["-M", "virt", "-cpu", "?"]).stdout.decode() \
        .splitlines()[1:]
    assert (pc.splitlines()[0], virt.splitlines()[0]) == ("Available CPUs on -M pc:",
                                                          "Available CPUs on -M virt:")


@pytest.mark.parametrize("display", [["-display", "none"], ["-nographic"],
                                     ["-display", "none", "-serial", "stdio"],
                                     ["-display", "none", "-nographic"],
                                     ["-nographic", "-display", "none"]],
                         ids=" ".join)
@pytest.mark.parametrize("machine", ["pc", "virt"])
def test_display_none_hides_the_default_serial_like_qemu(machine: str,
                                                         display: list[str]) -> None:
    """QEMU's default serial backend is a console of the display (vc): with -display none
    and no -serial the guest's output goes nowhere; -nographic puts it on stdio (on pc after
    SeaBIOS's own output, which emu's firmware does not print)."""
    args = [*MACHINES[machine][2], *display, "-kernel", image(machine, "hello")]
    emu, qemu = run_emu(args), run_qemu(machine, args)
    assert emu.returncode == qemu.returncode
    if display == ["-display", "none"]:
        assert emu.stdout == qemu.stdout == b""
    else:
        assert emu.stdout.startswith(b"Hello from the guest!")
        assert qemu.stdout.endswith(emu.stdout)


@pytest.mark.parametrize("args, message", [
    (["-fw_cfg", "name=opt/a"],
     "emu: -fw_cfg name=opt/a: name, plus exactly one of file, string and gen_id, are needed"),
    (["-fw_cfg", "name=opt/a,file=/x,string=y"],
     "emu: -fw_cfg name=opt/a,file=/x,string=y: name, plus exactly one of file, string and "
     "gen_id, are needed"),
    (["-fw_cfg", "name=opt/a,file=/nonexistent"],
     "emu: -fw_cfg name=opt/a,file=/nonexistent: can't load /nonexistent: No such file or "
     "directory"),
    (["-fw_cfg", "name=opt/a,string=1", "-fw_cfg", "name=opt/a,string=2"],
     "emu: duplicate fw_cfg file name: opt/a"),
    (["-fw_cfg", "name=opt/" + "x" * 60 + ",string=1"],
     "emu: -fw_cfg name=opt/" + "x" * 60 + ",string=1: name too long (max. 55 char)"),
    (["-fw_cfg", "name=opt/a,colour=1"], "emu: -fw_cfg name=opt/a,colour=1: Invalid parameter "
     "'colour'"),
    (["-global", "fw_cfg_io.speed=9"], "emu: -global fw_cfg_io.speed=9: Property "
     "'fw_cfg_io.speed' not found"),
    (["-global", "e1000.mac=1"], "emu: -global e1000.mac=1: emu has no global properties for "
     "'e1000'"),
    (["-device", "vmcoreinfo", "-device", "vmcoreinfo"],
     "emu: -device vmcoreinfo: at most one vmcoreinfo device is permitted"),
    (["-global", "fw_cfg_io.dma_enabled=off", "-device", "vmcoreinfo"],
     "emu: -device vmcoreinfo: vmcoreinfo device requires fw_cfg with DMA"),
])
def test_fw_cfg_option_errors(args: list[str], message: str) -> None:
    result = run_emu(["-M", "pc", "-kernel", image("pc", "hello"), *args])
    assert result.stderr.decode() == message + "\n"
    assert result.returncode == 1


def test_fw_cfg_name_outside_opt_warns_like_qemu() -> None:
    result = run_emu(["-M", "pc", "-display", "none", "-serial", "none", "-device",
                      "isa-debug-exit,iobase=0xf4,iosize=0x04", "-kernel", image("pc", "hello"),
                      "-fw_cfg", "name=mine,string=x"])
    assert result.stderr.decode() == ('emu: -fw_cfg name=mine,string=x: warning: externally '
                                      'provided fw_cfg item names should be prefixed with '
                                      '"opt/"\n')
    assert result.returncode == 1  # hello's own exit value 0 through isa-debug-exit
