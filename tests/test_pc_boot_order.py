"""QEMU's boot-order test (tests/qtest/boot-order-test.c, the pc cases) on emu and on QEMU 7.2.

The pc keeps its boot devices in the RTC's NVRAM: 0x3d (first and second device) and 0x38
(third device, and bit 0 set by ``-no-fd-bootchk``). ``-boot once=`` holds for the first boot
only: a ``system_reset`` (over QMP; the test waits for the RESET event, as libqtest's
``qtest_qmp_eventwait``) puts the normal order back. Each case runs on both emulators with the
same options; the expected values are those of boot-order-test.c.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from qemu.qmp.legacy import QEMUMonitorProtocol

from emu.qtest.client import QTest

CASES = [
    ("", 0x1230, 0x1230),
    ("-no-fd-bootchk", 0x1231, 0x1231),
    ("-boot c", 0x0200, 0x0200),
    ("-boot nda", 0x3410, 0x3410),
    ("-boot order=", 0, 0),
    ("-boot order= -boot order=c", 0x0200, 0x0200),
    ("-boot once=a", 0x0100, 0x1230),
    ("-boot once=a -no-fd-bootchk", 0x0101, 0x1231),
    ("-boot once=a,order=c", 0x0100, 0x0200),
    ("-boot once=d -boot order=nda", 0x0300, 0x3410),
    ("-boot once=a -boot once=b -boot once=c", 0x0200, 0x1230),
]


def read_boot_order(qt: QTest) -> int:
    def cmos(reg: int) -> int:
        qt.outb(0x70, reg)
        return qt.inb(0x71)

    return cmos(0x38) | cmos(0x3D) << 8


def _connect(path: str) -> QEMUMonitorProtocol:
    deadline = time.monotonic() + 10
    while True:
        qmp = QEMUMonitorProtocol(path)
        try:
            qmp.connect()
            return qmp
        except Exception:
            qmp.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("kind", ["emu", "qemu"])
@pytest.mark.parametrize(("args", "boot", "reboot"), CASES, ids=[c[0] or "default" for c in CASES])
def test_pc_boot_order(kind: str, args: str, boot: int, reboot: int, tmp_path: Path) -> None:
    sock = str(tmp_path / "qmp.sock")
    start: Callable[..., QTest] = QTest.emu if kind == "emu" else \
        lambda *a: QTest.qemu("pc", *a)
    with start("-M", "pc", "-nodefaults", "-display", "none",
               "-qmp", f"unix:{sock},server=on,wait=off", *args.split()) as qt:
        assert read_boot_order(qt) == boot
        qmp = _connect(sock)
        try:
            assert qmp.cmd_obj({"execute": "system_reset"}) == {"return": {}}
            event = qmp.pull_event(wait=10.0)
            while event is not None and event["event"] != "RESET":
                event = qmp.pull_event(wait=10.0)
            assert event is not None
            assert read_boot_order(qt) == reboot
        finally:
            qmp.close()
