"""Booting the Linux test kernels (tools/linux/build.py) on emu and on QEMU the same way:
shared by the Linux tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT, emu_cmd
from qemu.qmp.legacy import QEMUMonitorProtocol

#: machine -> (tools/linux/build.py architecture, QEMU binary, machine options, console)
BOOTS = {
    "pc": ("x86_64", "qemu-system-x86_64", ["-M", "pc"], "ttyS0"),
    "virt": ("arm64", "qemu-system-aarch64", ["-M", "virt", "-cpu", "cortex-a57"], "ttyAMA0"),
}
FW_CFG_ITEM = ("opt/emu/test", "hello from the host")
PANIC = b"Kernel panic - not syncing: sysrq triggered crash"
PANIC_END = b"---[ end Kernel panic - not syncing: sysrq triggered crash ]---"


def built(arch: str, what: str = "--print-path") -> str:
    """A test kernel's (or with ``--print-initrd``, its initramfs's) cached path, built if
    missing."""
    out = subprocess.run([sys.executable, str(ROOT / "tools/linux/build.py"), what, arch],
                         capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def vmlinux(arch: str) -> str:
    """The kernel's ELF with symbols and DWARF (next to the Image on arm64)."""
    return str(Path(built(arch)).with_name("vmlinux"))


def linux_args(machine: str, *append: str, memory: str = "256M") -> list[str]:
    """The options that boot the test kernel with its initramfs, the same for emu and QEMU
    (``append``: more of the kernel command line; "restart" makes /init restart)."""
    arch, _qemu, options, console = BOOTS[machine]
    # (initramfs_async=0: the initramfs is unpacked in its initcall, not in a worker whose
    # timing moves its log line among others)
    cmdline = " ".join([f"console={console}", "initramfs_async=0", *append])
    return [*options, "-m", memory, "-display", "none", "-serial", "stdio",
            "-kernel", built(arch), "-initrd", built(arch, "--print-initrd"),
            "-append", cmdline, "-device", "vmcoreinfo",
            "-fw_cfg", f"name={FW_CFG_ITEM[0]},string={FW_CFG_ITEM[1]}"]


def command(emulator: str, machine: str) -> list[str]:
    if emulator == "emu":
        return emu_cmd()
    binary = shutil.which(BOOTS[machine][1])
    assert binary, f"{BOOTS[machine][1]} is not installed (the test command installs it)"
    return [binary]


def run_to_end(cmd: list[str], timeout: float = 300) -> tuple[int, list[str]]:
    """Run a boot to its end (a restart under -no-reboot); its exit status and the lines it
    printed."""
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL, cwd=ROOT)
    return run.returncode, (untangle(run.stdout) + run.stderr).splitlines()


@dataclass
class Crash:
    """A boot that ended in the init's sysrq crash, and the dumps taken after it."""

    console: str
    dumps: dict[str, Path]

    @property
    def dump(self) -> Path:
        """The ELF dump."""
        return self.dumps["elf"]


def boot_to_panic(emulator: str, machine: str, workdir: Path, *extra: str,
                  formats: tuple[str, ...] = ("elf",), timeout: float = 240) -> Crash:
    """Boot, wait for the kernel's panic to be printed in full, stop the CPU (the kernel
    goes on in panic(): its memory changes) and dump through QMP ``dump-guest-memory`` in
    each of ``formats`` ("paging": an ELF dump with paging), then kill. Fails with the
    console on a timeout."""
    sock = workdir / f"{emulator}-{machine}.qmp"
    args = [*command(emulator, machine), *linux_args(machine), *extra,
            "-qmp", f"unix:{sock},server=on,wait=off"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=ROOT)
    out = b""
    dumps: dict[str, Path] = {}
    try:
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        while PANIC_END not in out:
            chunk = proc.stdout.read1(65536)
            assert chunk and time.monotonic() < deadline, out.decode(errors="replace")[-3000:]
            out += chunk
        qmp = QEMUMonitorProtocol(str(sock))
        qmp.connect()
        assert qmp.cmd_obj({"execute": "stop"}) == {"return": {}}
        for fmt in formats:
            dumps[fmt] = workdir / f"{emulator}-{machine}.{fmt}"
            reply = qmp.cmd_obj({"execute": "dump-guest-memory", "arguments": {
                "paging": fmt == "paging", "protocol": f"file:{dumps[fmt]}",
                "format": "elf" if fmt == "paging" else fmt}})
            assert reply == {"return": {}}, reply
        qmp.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            out += proc.stdout.read()
    return Crash(out.decode(errors="replace"), dumps)


_STAMP = re.compile(r"^\[ *\d+\.\d+\] ")


#: a kernel message printed into the middle of a line the init was writing: the part before
#: it, the message, and the rest of the line after it
_TANGLED = re.compile(r"^([^\n\[]+)(\[ *\d+\.\d{6}\] [^\n]*\n)([^\n]*)$", re.M)


def untangle(console: str) -> str:
    """The console with each kernel message that interrupted a line of the init's (the
    kernel's printk and the init's write share the console, and their order depends on
    timing, on QEMU as on emu) put on its own line before the line it interrupted."""
    while True:
        fixed = _TANGLED.sub(r"\2\1\3", console)
        if fixed == console:
            return console
        console = fixed


def kernel_log(console: str) -> list[str]:
    """The console's lines with the kernel's timestamps taken off."""
    return [_STAMP.sub("", line.rstrip("\r")) for line in untangle(console).splitlines()]


def init_lines(console: str) -> list[str]:
    return [line for line in kernel_log(console) if line.startswith("emu-linux init:")]
