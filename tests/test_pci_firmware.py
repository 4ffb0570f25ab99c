"""The PCI configuration space after firmware: emu's firmware (firmware/pc/pci.c), and emu
itself with ``--direct-boot``, leave every function as SeaBIOS 1.16 leaves QEMU 7.2's (PIRQ
routing, BARs, Interrupt Lines, Command, the PIIX4's PM and SMBus bases, PAM and SMRAM), and
the ELCRs as SeaBIOS sets them.

Both machines boot the halt image (it prints one line and halts); the configuration space is
then read through HMP's ``o`` and ``i`` commands (QEMU's hmp_ioport_write / read) over QMP.
"""

from __future__ import annotations

from pathlib import Path

from test_hmp import BINARIES, Vm, halt_args

FUNCTIONS = (0x00, 0x08, 0x09, 0x0B)
QEMU_ONLY = (0x10, 0x18)  # QEMU's default VGA and NIC


def read_config(vm: Vm, devfn: int) -> list[str]:
    out = []
    for reg in range(0, 256, 4):
        assert vm.hmp(f"o /w 0xcf8 {0x80000000 | devfn << 8 | reg:#x}") == ""
        answer = vm.hmp("i /w 0xcfc")
        assert answer.startswith("portl[0x0cfc] = 0x"), answer
        out.append(answer)
    return out


def after_firmware(tmp_path: Path, *extra: str,
                   emu_extra: tuple[str, ...] = ()) -> dict[str, dict[object, list[str]]]:
    spaces: dict[str, dict[object, list[str]]] = {}
    for binary in BINARIES:
        more = emu_extra if binary == "emu" else ()
        vm = Vm(binary, "pc", tmp_path, *halt_args("pc", "-serial", "stdio", *extra, *more),
                wait_for=b"halt:")
        try:
            space: dict[object, list[str]] = {
                devfn: read_config(vm, devfn) for devfn in (*FUNCTIONS, *QEMU_ONLY)}
            space["elcr"] = [vm.hmp("i /b 0x4d0"), vm.hmp("i /b 0x4d1")]
            spaces[binary] = space
        finally:
            vm.close()
    return spaces


def test_config_space_after_firmware_is_seabioss(tmp_path: Path) -> None:
    spaces = after_firmware(tmp_path, "-nodefaults")
    assert spaces["emu"] == spaces["qemu"]
    ours = spaces["emu"]
    assert ours["elcr"] == ["portb[0x04d0] = 0x00\r\n", "portb[0x04d1] = 0x0c\r\n"]
    assert ours[0x08][0x60 // 4] == "portl[0x0cfc] = 0x0b0b0a0a\r\n"  # PIRQ A-D: 10 10 11 11
    assert ours[0x0B][0x40 // 4] == "portl[0x0cfc] = 0x00000601\r\n"  # PMBA
    assert ours[0x09][0x20 // 4] == "portl[0x0cfc] = 0x0000c001\r\n"  # IDE BAR4


def test_direct_boot_sets_up_pci_as_the_firmware(tmp_path: Path) -> None:
    """--direct-boot skips the firmware; emu then does its PCI setup itself."""
    spaces = after_firmware(tmp_path, "-nodefaults", emu_extra=("--direct-boot",))
    assert spaces["emu"] == spaces["qemu"]


def test_without_nodefaults_only_the_missing_devices_differ(tmp_path: Path) -> None:
    """QEMU's VGA and e1000 are absent on emu; SeaBIOS gives the e1000 the first I/O
    range, so the IDE's BAR4 is at 0xc040 there; QEMU's parallel port sets 0x5f bit 7."""
    spaces = after_firmware(tmp_path)
    ours, theirs = spaces["emu"], spaces["qemu"]
    for devfn in QEMU_ONLY:
        assert set(ours[devfn]) == {"portl[0x0cfc] = 0xffffffff\r\n"}
        assert theirs[devfn][0] != ours[devfn][0]
    assert (ours[0x09][8], theirs[0x09][8]) == ("portl[0x0cfc] = 0x0000c001\r\n",
                                                "portl[0x0cfc] = 0x0000c041\r\n")
    assert (ours[0x0B][0x5C // 4], theirs[0x0B][0x5C // 4]) == (
        "portl[0x0cfc] = 0x10000000\r\n", "portl[0x0cfc] = 0x90000000\r\n")
    for devfn in FUNCTIONS:
        differ = [reg for reg in range(64) if ours[devfn][reg] != theirs[devfn][reg]]
        assert differ == {0x09: [8], 0x0B: [0x5C // 4]}.get(devfn, []), hex(devfn)
    assert ours["elcr"] == theirs["elcr"]
