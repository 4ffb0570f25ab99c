"""The pc's i8042 keyboard controller, PS/2 keyboard and PS/2 mouse against QEMU 7.2.

Through qtest, emu and QEMU (``-M pc -nodefaults``: the i8042 is part of the board) get the same
port sequences on 0x60 / 0x64 with the IOAPIC's inputs intercepted; the bytes read, the status
register and the IRQ 1 / IRQ 12 levels must be equal. No host input exists under qtest, so
the keyboard's key codes and the mouse's movement packets are tested on the device objects,
against the scancode tables. A Linux 6.1 kernel boots on both emulators and must find the
same controller, keyboard and mouse; its restart (0xfe to port 0x64) ends both with status 0
under ``-no-reboot``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import run_emu, run_qemu
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from linux_boot import linux_args
from test_pc_irq_qtest import Pair

from emu.devices.ps2 import Ps2Keyboard, Ps2Mouse
from emu.qtest.client import QTest

ARGS = ["-M", "pc", "-m", "128M", "-display", "none", "-nodefaults"]
I8042_IRQS = ("1", "12")


class KbdPair(Pair):
    """A pair whose answers carry the IRQ 1 / IRQ 12 lines in place: each command's answer is
    preceded by the level changes it caused (qtest sends them while it runs the command).
    Other lines are left out (a machine reset also moves the PIT's). ``inline`` False:
    each side's lines follow all its answers (:class:`Pair`'s way)."""

    inline = True

    def run(self, lines: list[str]) -> tuple[list[str], list[str]]:
        if not self.inline:
            got, want = super().run(lines)
            return ([a for a in got if not a.startswith("IRQ ") or a.split()[-1] in I8042_IRQS],
                    [a for a in want if not a.startswith("IRQ ") or a.split()[-1] in I8042_IRQS])
        out = []
        for qt in (self.emu, self.qemu):
            qt.send("\n".join(lines))
            answers = []
            for _ in lines:
                before = len(qt.irq_events)
                answer = qt.response()
                answers += [f"IRQ {e}" for e in qt.irq_events[before:]
                            if e.split()[-1] in I8042_IRQS]
                answers.append(answer)
            out.append(answers)
        return out[0], out[1]


def kbd_pair(*extra: str) -> Iterator[KbdPair]:
    emu = QTest.emu(*ARGS, *extra)
    try:
        qemu = QTest.qemu("pc", *ARGS, *extra)
    except BaseException:
        emu.close()
        raise
    try:
        pair = KbdPair(emu, qemu)
        pair.same(["irq_intercept_in ioapic"])
        yield pair
    finally:
        emu.close()
        qemu.close()


@pytest.fixture
def pair() -> Iterator[KbdPair]:
    yield from kbd_pair()


@pytest.fixture(scope="module")
def shared_pair() -> Iterator[KbdPair]:
    yield from kbd_pair()


def cmd(c: int, *data: int) -> list[str]:
    """A controller command and its argument bytes."""
    return [f"outb 0x64 {c:#x}"] + [f"outb 0x60 {d:#x}" for d in data]


def kbd(*data: int) -> list[str]:
    """Bytes to the keyboard."""
    return [f"outb 0x60 {d:#x}" for d in data]


def aux(*data: int) -> list[str]:
    """Bytes to the mouse (controller command 0xd4 before each)."""
    return [line for d in data for line in cmd(0xD4, d)]


def read(n: int) -> list[str]:
    """``n`` times: the status register, then the data port."""
    return ["inb 0x64", "inb 0x60"] * n


def test_reset_state(pair: KbdPair) -> None:
    """Status, command byte, output and input port after power-on; the empty output buffer
    reads its last byte (0)."""
    pair.same(["inb 0x64", "inb 0x60", "inb 0x64", *cmd(0x20), *read(2), *cmd(0xD0), *read(1),
               *cmd(0xC0), *read(1), "inw 0x60", "inl 0x64"])


def test_self_tests(pair: KbdPair) -> None:
    """0xaa (55, and the status's self-test bit), 0xab and 0xa9 (00), the firmware's order."""
    pair.same([*cmd(0xAD), *cmd(0xA7), *read(1), *cmd(0xAA), *read(2), *cmd(0xAB), *read(1),
               *cmd(0xA9), *read(1), *cmd(0x20), *read(1)])


@pytest.mark.parametrize("mode", [0x00, 0x03, 0x47, 0x61, 0x30, 0x74, 0xFF])
def test_command_byte(pair: KbdPair, mode: int) -> None:
    """Write and read back the command byte; its interrupt enables act on a waiting byte at
    once; its translation bit shows in the keyboard's ID and scancode-set answers."""
    pair.same([*cmd(0x60, mode), *cmd(0x20), "inb 0x64", *cmd(0x60, 0x00), *cmd(0x60, mode),
               *read(1), *kbd(0xF2), *read(4), *kbd(0xF0, 0x00), *read(4),
               *cmd(0xD2, 0x42), *cmd(0x60, mode ^ 0x03), *read(2)])


def test_linux_probe(pair: KbdPair) -> None:
    """What Linux 6.1's i8042 driver does at boot (drivers/input/serio/i8042.c): flush,
    self test, read the command byte until stable, write it with the keyboard port off,
    the AUX loopback (0xd3) and bit assignment test (0xa7 / 0xa8 change the command byte),
    then the AUX port enabled with its interrupt and a loopback byte that must raise IRQ 12."""
    pair.same([*read(1), *cmd(0xAA), *read(1), *cmd(0x20), *read(1), *cmd(0x20), *read(1),
               *cmd(0x60, 0x10), *read(1),
               *cmd(0xD3, 0x5A), *read(2), *cmd(0xA7), *cmd(0x20), *read(1),
               *cmd(0xA9), *read(1), *cmd(0xA8), *cmd(0x20), *read(1),
               *cmd(0x60, 0x02), *cmd(0xD3, 0xA5), *read(2),
               *cmd(0x60, 0x03), *cmd(0xD2, 0x11), *read(2), *cmd(0xD3, 0x22), *read(2)])


def test_keyboard_commands(pair: KbdPair) -> None:
    """Reset (FA AA), get ID raw (AB 83) and translated (AB 41), echo, LEDs, scancode sets,
    typematic rate, make/break, enable / reset-and-disable / reset-and-enable, resend for
    unknown bytes, and a command's unread reply dropped by the next command."""
    pair.same([*kbd(0xFF), *read(4), *kbd(0xF2), *read(4), *cmd(0x60, 0x43), *kbd(0xF2),
               *read(4), *kbd(0xEE), *read(2), *kbd(0xED, 0x07), *read(3),
               *kbd(0xF0, 0x03, 0xF0, 0x00), *read(4), *kbd(0xF0, 0x09), *read(3),
               *kbd(0xF3, 0x20, 0xFC, 0x11, 0xFA, 0x00, 0x05, 0x12), *read(10),
               *kbd(0xF5, 0xF6, 0xF4), *read(4), *kbd(0xF2, 0xFF), *read(5),
               *cmd(0x60, 0x00), *kbd(0xFF), *read(3), *cmd(0xAE), *cmd(0x60, 0x01), *read(3)])


def test_keyboard_port_disabled(pair: KbdPair) -> None:
    """0xad holds the keyboard's bytes back (no IRQ 1) until 0xae or a byte to the keyboard."""
    pair.same([*cmd(0xAD), *kbd(0xFF), *read(1), *cmd(0xAD), *cmd(0x20), *read(2),
               *cmd(0xAE), *read(3), *cmd(0xAD), *kbd(0xF2), *read(4)])


def test_mouse_commands(pair: KbdPair) -> None:
    """Through 0xd4 with IRQ 12: reset (FA AA 00), get ID, status request, resolution,
    scaling, stream / remote, enable / disable, defaults, poll, wrap mode, and a command
    the mouse ignores."""
    pair.same([*aux(0xFF), *read(4), *aux(0xF2), *read(3), *aux(0xE9), *read(5),
               *aux(0xE8, 0x03, 0xE7, 0xF3, 0x28, 0xE9), *read(10), *aux(0xE6, 0xF0, 0xE9),
               *read(7), *aux(0xEA, 0xF4, 0xE9), *read(7), *aux(0xEB), *read(5),
               *aux(0xF5, 0xF6, 0xE9), *read(7), *aux(0xEE, 0x12, 0x34, 0xEC, 0xE9), *read(9),
               *aux(0xEE, 0xFF), *read(5), *aux(0xE1, 0x0A), *read(2)])


@pytest.mark.parametrize("rates", [(200, 100, 80), (200, 200, 80), (200, 100, 80, 200, 200, 80),
                                   (100, 200, 100, 80), (200, 80, 80), (200, 200, 100, 80)],
                         ids=str)
def test_mouse_intellimouse_detection(pair: KbdPair, rates: tuple[int, ...]) -> None:
    """The sample-rate knocks: 200, 100, 80 makes an IntelliMouse (ID 3), 200, 200, 80 an
    Explorer (ID 4); the poll packet grows to 4 bytes with them; a reset forgets them."""
    lines = aux(0xFF) + read(4)
    for r in rates:
        lines += aux(0xF3, r) + read(3)
    lines += aux(0xF2) + read(3) + aux(0xEB) + read(6) + aux(0xFF, 0xF2) + read(6)
    pair.same(lines)


def test_mouse_port_and_queue(pair: KbdPair) -> None:
    """0xa7 holds mouse bytes back; the mouse interrupt enable gates IRQ 12; keyboard and
    controller bytes go before mouse bytes; a full queue (16 bytes) drops what does not fit."""
    pair.same([*aux(0xFF), *cmd(0x60, 0x01), "inb 0x64", *cmd(0x60, 0x03), *cmd(0xA7),
               *read(2), *cmd(0xA8), *read(3), *aux(0xE9), *cmd(0x60, 0x01), *read(2),
               *cmd(0x60, 0x03), *read(4), *aux(0xE9), *kbd(0xF2), *cmd(0xD3, 0x77), *read(10),
               *aux(0xE9, 0xE9, 0xE9, 0xE9, 0xE9), *read(18)])


def test_output_port_and_a20(pair: KbdPair) -> None:
    """0xd1 / 0xd0 (with the reset bit kept high), 0xdd / 0xdf, pulses that leave bit 0 and
    unknown commands change nothing."""
    pair.same([*cmd(0xD1, 0xFD), *cmd(0xD0), *read(1), *cmd(0xDF), *cmd(0xD0), *read(1),
               *cmd(0xDD), *cmd(0xD0), *read(1), *cmd(0xD1, 0x03), *cmd(0xD0), *read(1),
               *cmd(0xF1), *cmd(0xFF), *cmd(0xF3), *cmd(0x00), *cmd(0xA1), *cmd(0x20), *read(2)])


_SAFE_CMDS = [0x20, 0x60, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAD, 0xAE, 0xC0, 0xD0, 0xD1, 0xD2,
              0xD3, 0xD4, 0xDD, 0xDF, 0xF1, 0xFF, 0x00, 0xA1]
_op = st.one_of(
    st.tuples(st.just("cmd"), st.sampled_from(_SAFE_CMDS)),
    st.tuples(st.just("data"), st.sampled_from([0xFF, 0xF2, 0xF0, 0xED, 0xF3, 0xF4, 0xF5, 0xF6,
                                                 0xEE, 0xE9, 0xE8, 0xEB, 0xEA, 0x00, 0x02,
                                                 0xC8, 0x64, 0x50, 0x47, 0x61, 0x03])),
    st.tuples(st.just("status"), st.just(0)), st.tuples(st.just("read"), st.just(0)))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(_op, min_size=1, max_size=40))
def test_random_sequences(shared_pair: KbdPair, ops: list[tuple[str, int]]) -> None:
    """Random port sequences; a byte after 0xd1 keeps the reset bit high."""
    lines, after_d1 = [], False
    for kind, value in ops:
        if kind == "cmd":
            lines.append(f"outb 0x64 {value:#x}")
        elif kind == "data":
            lines.append(f"outb 0x60 {value | 1 if after_d1 else value:#x}")
        else:
            lines.append("inb 0x64" if kind == "status" else "inb 0x60")
        after_d1 = (kind == "cmd" and value == 0xD1) or (after_d1 and kind != "data")
    shared_pair.same(lines)


def test_pulse_reset_resets_the_machine(pair: KbdPair) -> None:
    """0xfe (pulse output port bit 0) resets the machine: the controller is back in its reset
    state afterwards (one command at a time: QEMU resets between two, after its answer to
    the command; emu before it, so the IRQ lines are compared after each command's answer)."""
    pair.inline = False
    pair.same([*cmd(0x60, 0x47), *cmd(0xD2, 0x99)])
    for line in ["outb 0x64 0xfe", *cmd(0x20), *read(2), *cmd(0xD0), *read(1)]:
        pair.same([line])


@pytest.mark.parametrize("lines", [["outb 0x64 0xfe"], ["outb 0x64 0xf0"],
                                   ["outb 0x64 0xd1", "outb 0x60 0x02"]], ids=str)
def test_reset_exits_under_no_reboot(lines: list[str]) -> None:
    """With ``-no-reboot`` the reset request ends the process with status 0, as QEMU's."""
    for qt in (QTest.emu(*ARGS, "-no-reboot"), QTest.qemu("pc", *ARGS, "-no-reboot")):
        try:
            for line in lines:
                qt.send(line)
            assert qt.proc is not None
            assert qt.proc.wait(30) == 0, qt.stderr()
        finally:
            qt.close()


# -- the devices on their own: host input emu cannot take from a display -------------------------

def test_keycode_translation() -> None:
    """Set 2 key codes reach the host as set 1 codes while the controller translates
    ('A': 1c -> 1e, its break f0 1c -> 9e; Escape 76 -> 01), untouched otherwise."""
    k = Ps2Keyboard()
    k.reset()
    k.put_keycode(0x1C)
    k.set_translation(1)
    for code in (0x1C, 0xF0, 0x1C, 0x76):
        k.put_keycode(code)
    assert [k.read_data() for _ in range(4)] == [0x1C, 0x1E, 0x9E, 0x01]
    assert k.irq.level == 0


def test_keyboard_reply_goes_before_key_codes() -> None:
    """A command's reply is read before the key codes that were waiting (QEMU's command
    queue); the queue keeps at most 16 key codes."""
    k = Ps2Keyboard()
    k.reset()
    for code in range(0x10, 0x30):
        k.put_keycode(code)
    k.write(0xF2)
    assert [k.read_data() for _ in range(20)] == [0xFA, 0xAB, 0x83, *range(0x10, 0x20), 0x1F]


def test_mouse_packets() -> None:
    """Movement packets: 3 bytes (sign bits in byte 0, deltas clipped to +-127), 4 with the
    IntelliMouse wheel byte."""
    m = Ps2Mouse()
    m.reset()
    m.dx, m.dy, m.buttons = -200, 5, 1
    assert m.send_packet()
    assert [m.read_data() for _ in range(3)] == [0x19, 0x81, 0x05]
    assert (m.dx, m.dy) == (-73, 0)
    m.type, m.dx, m.dz = 3, 0, -2
    assert m.send_packet()
    assert [m.read_data() for _ in range(4)] == [0x09, 0x00, 0x00, 0xFE]


# -- Linux -------------------------------------------------------------------------------------

_I8042_LINE = re.compile(r"^(serio: i8042 .*|input: .*i8042.*|i8042: .*)$")


def _i8042_lines(console: bytes) -> list[str]:
    text = console.decode(errors="replace").replace("\r", "")
    lines = [re.sub(r"^\[ *[0-9.]+\] ", "", line) for line in text.split("\n")]
    return sorted(line for line in lines if _I8042_LINE.match(line))


@pytest.mark.parametrize("extra", [[], ["--direct-boot"]], ids=["firmware", "direct-boot"])
def test_linux_finds_the_keyboard_and_mouse(extra: list[str]) -> None:
    """Linux 6.1 on emu prints QEMU's serio and input lines (an AT keyboard translated by the
    controller as the firmware leaves it, an Explorer mouse) and its restart through the
    i8042 ends emu with status 0 under -no-reboot, as it ends QEMU."""
    args = [*linux_args("pc", "restart"), "-no-reboot"]
    qemu = run_qemu("pc", args, timeout=300)
    assert qemu.returncode == 0, qemu.stderr
    want = _i8042_lines(qemu.stdout)
    assert any("AT Translated Set 2 keyboard" in line for line in want)
    emu = run_emu([*extra, *args], timeout=600)
    assert emu.returncode == 0, emu.stderr.decode(errors="replace")[-2000:]
    assert _i8042_lines(emu.stdout) == want
    assert b"reboot: machine restart" in emu.stdout
