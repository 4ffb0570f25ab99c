"""The i8042 keyboard controller of the PC at I/O ports 0x60 and 0x64 (QEMU 7.2
hw/input/pckbd.c, ``i8042``, with its default ``extended-state=on`` and ``kbd-throttle=off``).

Port 0x60 (``i8042-data``) reads the output buffer and writes data: to the keyboard
(:class:`~emu.devices.ps2.Ps2Keyboard`), or the argument of the last controller command.
Port 0x64 (``i8042-cmd``) reads the status register and writes controller commands:

* 0x20 read / 0x60 write the command byte ("mode": interrupt enables, system flag, disable
  bits, scancode translation, which the keyboard is told of);
* 0xa7 / 0xa8 disable / enable the mouse port, 0xad / 0xae the keyboard port;
* 0xa9 mouse port test (00), 0xaa self test (55, sets the status's self-test bit), 0xab
  keyboard port test (00), 0xc0 read the input port (80);
* 0xd0 / 0xd1 read / write the output port (bit 0 low: reset the machine; bit 1: A20);
* 0xd2 / 0xd3 put the next data byte in the output buffer as from the keyboard / the mouse;
* 0xd4 send the next data byte to the mouse (:class:`~emu.devices.ps2.Ps2Mouse`);
* 0xdd / 0xdf A20 off / on;
* 0xf0-0xff pulse output port bits 3-0: with bit 0 pulsed (0xfe), a machine reset
  (QEMU's ``qemu_system_reset_request(SHUTDOWN_CAUSE_GUEST_RESET)``: ``reset_request``, which
  exits with ``-no-reboot``); others do nothing, as do unknown commands (QEMU logs them as
  guest errors).

The output buffer takes bytes from three sources in QEMU's order of priority: the
controller's own reply byte (``cbdata``, for the keyboard or the mouse port), the keyboard's
queue, the mouse's queue. The status register's OBF bit says a byte is there, its bit 5 that
it is the mouse's; IRQ 1 is high while a keyboard byte waits and the command byte enables
the keyboard interrupt (and the keyboard port), IRQ 12 while a mouse byte waits and the
mouse interrupt is enabled. A port disabled in the command byte keeps its data pending
(``kbd_pending``). Reading port 0x60 takes the byte and moves the next one in.

The A20 line (output port bit 1, QEMU's ``a20`` GPIO to the CPU) is kept in the output port
and driven on ``a20_out``, which the pc board leaves unconnected: emu's CPU has no A20 gate.

Trace events (QEMU's): ``pckbd_kbd_read_data``, ``pckbd_kbd_read_status``,
``pckbd_outport_write``, ``pckbd_kbd_write_command``, ``pckbd_kbd_write_data``.
"""

from __future__ import annotations

from collections.abc import Callable

from emu import trace as tracing
from emu.bus import Region
from emu.devices.byteio import byte_region
from emu.devices.ps2 import Ps2Keyboard, Ps2Mouse
from emu.irq import Gpios, IrqLine
from emu.trace import trace

I8042_DATA_PORT = 0x60
I8042_CMD_PORT = 0x64
#: QEMU's kbd-irq and mouse-irq defaults
I8042_KBD_ISA_IRQ = 1
I8042_MOUSE_ISA_IRQ = 12

KBD_CCMD_READ_MODE = 0x20
KBD_CCMD_WRITE_MODE = 0x60
KBD_CCMD_MOUSE_DISABLE = 0xA7
KBD_CCMD_MOUSE_ENABLE = 0xA8
KBD_CCMD_TEST_MOUSE = 0xA9
KBD_CCMD_SELF_TEST = 0xAA
KBD_CCMD_KBD_TEST = 0xAB
KBD_CCMD_KBD_DISABLE = 0xAD
KBD_CCMD_KBD_ENABLE = 0xAE
KBD_CCMD_READ_INPORT = 0xC0
KBD_CCMD_READ_OUTPORT = 0xD0
KBD_CCMD_WRITE_OUTPORT = 0xD1
KBD_CCMD_WRITE_OBUF = 0xD2
KBD_CCMD_WRITE_AUX_OBUF = 0xD3
KBD_CCMD_WRITE_MOUSE = 0xD4
KBD_CCMD_DISABLE_A20 = 0xDD
KBD_CCMD_ENABLE_A20 = 0xDF
KBD_CCMD_PULSE_BITS_3_0 = 0xF0
KBD_CCMD_RESET = 0xFE
KBD_CCMD_NO_OP = 0xFF

KBD_STAT_OBF = 0x01
KBD_STAT_SELFTEST = 0x04
KBD_STAT_CMD = 0x08
KBD_STAT_UNLOCKED = 0x10
KBD_STAT_MOUSE_OBF = 0x20

KBD_MODE_KBD_INT = 0x01
KBD_MODE_MOUSE_INT = 0x02
KBD_MODE_DISABLE_KBD = 0x10
KBD_MODE_DISABLE_MOUSE = 0x20
KBD_MODE_KCC = 0x40

KBD_OUT_RESET = 0x01
KBD_OUT_A20 = 0x02
KBD_OUT_OBF = 0x10
KBD_OUT_MOUSE_OBF = 0x20
KBD_OUT_ONES = 0xCC

KBD_PENDING_CTRL_KBD = 0x04
KBD_PENDING_CTRL_AUX = 0x08
KBD_PENDING_KBD = KBD_MODE_DISABLE_KBD
KBD_PENDING_AUX = KBD_MODE_DISABLE_MOUSE

KBD_OBSRC_KBD = 0x01
KBD_OBSRC_MOUSE = 0x02
KBD_OBSRC_CTRL = 0x04


class I8042:
    """QEMU's ``i8042`` (``KBDState`` with ``extended_state``): ``data_region`` (port 0x60),
    ``cmd_region`` (port 0x64), ``irq_kbd`` / ``irq_mouse`` (its GPIO outputs 0 and 1) and
    the keyboard and mouse it owns. ``reset_request`` resets the machine (the guest's)."""

    def __init__(self, reset_request: Callable[[], None]) -> None:
        self.reset_request = reset_request
        self.kbd = Ps2Keyboard()
        self.mouse = Ps2Mouse()
        self.write_cmd = 0
        self.status = 0
        self.mode = 0
        self.outport = 0
        self.pending = 0
        self.obsrc = 0
        self.obdata = 0
        self.cbdata = 0
        self.irq_kbd = IrqLine("i8042.irq[0]")
        self.irq_mouse = IrqLine("i8042.irq[1]")
        self.a20_out = IrqLine("i8042.a20")
        self.kbd_input = IrqLine("i8042.ps2-kbd-input-irq", self._kbd_input)
        self.mouse_input = IrqLine("i8042.ps2-mouse-input-irq", self._mouse_input)
        self.kbd.irq.connect_to(self.kbd_input)
        self.mouse.irq.connect_to(self.mouse_input)
        self.data_region: Region = byte_region("i8042-data", 1, self._read_data_port,
                                               self._write_data_port)
        self.cmd_region: Region = byte_region("i8042-cmd", 1, self._read_cmd_port,
                                              self._write_cmd_port)
        self.gpios = Gpios("i8042",
                           inputs={"ps2-kbd-input-irq": [self.kbd_input],
                                   "ps2-mouse-input-irq": [self.mouse_input]},
                           outputs={None: [self.irq_kbd, self.irq_mouse],
                                    "a20": [self.a20_out]})

    # -- interrupt and output buffer logic -------------------------------------------------

    def update_irq_lines(self) -> None:
        """``kbd_update_irq_lines``: the two lines from the output buffer and the mode."""
        kbd = mouse = 0
        if self.status & KBD_STAT_OBF:
            if self.status & KBD_STAT_MOUSE_OBF:
                mouse = int(bool(self.mode & KBD_MODE_MOUSE_INT))
            elif self.mode & KBD_MODE_KBD_INT and not self.mode & KBD_MODE_DISABLE_KBD:
                kbd = 1
        self.irq_kbd.set_level(kbd)
        self.irq_mouse.set_level(mouse)

    def _deassert_irq(self) -> None:
        self.status &= ~(KBD_STAT_OBF | KBD_STAT_MOUSE_OBF)
        self.outport &= ~(KBD_OUT_OBF | KBD_OUT_MOUSE_OBF)
        self.update_irq_lines()

    def _pending(self) -> int:
        """``kbd_pending``: the sources with a byte waiting, less the ports the mode
        disables."""
        return self.pending & (~self.mode | ~(KBD_PENDING_KBD | KBD_PENDING_AUX)) & 0xFF

    def _update_irq(self) -> None:
        """``kbd_update_irq``: move the most urgent pending byte's source into the output
        buffer."""
        pending = self._pending()
        self.status &= ~(KBD_STAT_OBF | KBD_STAT_MOUSE_OBF)
        self.outport &= ~(KBD_OUT_OBF | KBD_OUT_MOUSE_OBF)
        if pending:
            self.status |= KBD_STAT_OBF
            self.outport |= KBD_OUT_OBF
            if pending & KBD_PENDING_CTRL_KBD:
                self.obsrc = KBD_OBSRC_CTRL
            elif pending & KBD_PENDING_CTRL_AUX:
                self.status |= KBD_STAT_MOUSE_OBF
                self.outport |= KBD_OUT_MOUSE_OBF
                self.obsrc = KBD_OBSRC_CTRL
            elif pending & KBD_PENDING_KBD:
                self.obsrc = KBD_OBSRC_KBD
            else:
                self.status |= KBD_STAT_MOUSE_OBF
                self.outport |= KBD_OUT_MOUSE_OBF
                self.obsrc = KBD_OBSRC_MOUSE
        self.update_irq_lines()

    def _safe_update_irq(self) -> None:
        """``kbd_safe_update_irq``: only when the output buffer is empty (reading it moves
        the next byte in; there is no throttle timer)."""
        if self.status & KBD_STAT_OBF:
            return
        if self._pending():
            self._update_irq()

    def _kbd_input(self, level: int) -> None:
        """``kbd_update_kbd_irq``: the keyboard has bytes (1) or none."""
        if level:
            self.pending |= KBD_PENDING_KBD
        else:
            self.pending &= ~KBD_PENDING_KBD
        self._safe_update_irq()

    def _mouse_input(self, level: int) -> None:
        """``kbd_update_aux_irq``."""
        if level:
            self.pending |= KBD_PENDING_AUX
        else:
            self.pending &= ~KBD_PENDING_AUX
        self._safe_update_irq()

    def _queue(self, b: int, aux: int) -> None:
        """``kbd_queue``: the controller's own reply byte, as from the keyboard or mouse."""
        self.cbdata = b & 0xFF
        self.pending &= ~KBD_PENDING_CTRL_KBD & ~KBD_PENDING_CTRL_AUX
        self.pending |= KBD_PENDING_CTRL_AUX if aux else KBD_PENDING_CTRL_KBD
        self._safe_update_irq()

    def _dequeue(self) -> int:
        b = self.cbdata
        self.pending &= ~KBD_PENDING_CTRL_KBD & ~KBD_PENDING_CTRL_AUX
        if self._pending():
            self._update_irq()
        return b

    # -- ports -----------------------------------------------------------------------------

    def _read_cmd_port(self, _offset: int) -> int:
        """``kbd_read_status``."""
        if tracing.ON:
            trace("pckbd_kbd_read_status", status=self.status)
        return self.status

    def _read_data_port(self, _offset: int) -> int:
        """``kbd_read_data``: the output buffer; the next pending byte moves in."""
        if self.status & KBD_STAT_OBF:
            self._deassert_irq()
            if self.obsrc & KBD_OBSRC_KBD:
                self.obdata = self.kbd.read_data()
            elif self.obsrc & KBD_OBSRC_MOUSE:
                self.obdata = self.mouse.read_data()
            elif self.obsrc & KBD_OBSRC_CTRL:
                self.obdata = self._dequeue()
        if tracing.ON:
            trace("pckbd_kbd_read_data", val=self.obdata)
        return self.obdata

    def _outport_write(self, val: int) -> None:
        if tracing.ON:
            trace("pckbd_outport_write", val=val)
        self.outport = val
        self.a20_out.set_level((val >> 1) & 1)
        if not val & 1:
            self.reset_request()

    def _write_cmd_port(self, _offset: int, val: int) -> None:
        """``kbd_write_command``."""
        if tracing.ON:
            trace("pckbd_kbd_write_command", val=val)
        if val & KBD_CCMD_PULSE_BITS_3_0 == KBD_CCMD_PULSE_BITS_3_0:
            # pulse output port bits 3-0 (a 0 bit is pulsed): only bit 0, the reset, matters
            val = KBD_CCMD_NO_OP if val & 1 else KBD_CCMD_RESET
        if val == KBD_CCMD_READ_MODE:
            self._queue(self.mode, 0)
        elif val in (KBD_CCMD_WRITE_MODE, KBD_CCMD_WRITE_OBUF, KBD_CCMD_WRITE_AUX_OBUF,
                     KBD_CCMD_WRITE_MOUSE, KBD_CCMD_WRITE_OUTPORT):
            self.write_cmd = val
        elif val == KBD_CCMD_MOUSE_DISABLE:
            self.mode |= KBD_MODE_DISABLE_MOUSE
        elif val == KBD_CCMD_MOUSE_ENABLE:
            self.mode &= ~KBD_MODE_DISABLE_MOUSE
            self._safe_update_irq()
        elif val in (KBD_CCMD_TEST_MOUSE, KBD_CCMD_KBD_TEST):
            self._queue(0x00, 0)
        elif val == KBD_CCMD_SELF_TEST:
            self.status |= KBD_STAT_SELFTEST
            self._queue(0x55, 0)
        elif val == KBD_CCMD_KBD_DISABLE:
            self.mode |= KBD_MODE_DISABLE_KBD
        elif val == KBD_CCMD_KBD_ENABLE:
            self.mode &= ~KBD_MODE_DISABLE_KBD
            self._safe_update_irq()
        elif val == KBD_CCMD_READ_INPORT:
            self._queue(0x80, 0)
        elif val == KBD_CCMD_READ_OUTPORT:
            self._queue(self.outport, 0)
        elif val == KBD_CCMD_ENABLE_A20:
            self.a20_out.raise_()
            self.outport |= KBD_OUT_A20
        elif val == KBD_CCMD_DISABLE_A20:
            self.a20_out.lower()
            self.outport &= ~KBD_OUT_A20
        elif val == KBD_CCMD_RESET:
            self.reset_request()
        # KBD_CCMD_NO_OP and unsupported commands: ignored

    def _write_data_port(self, _offset: int, val: int) -> None:
        """``kbd_write_data``."""
        if tracing.ON:
            trace("pckbd_kbd_write_data", val=val)
        cmd = self.write_cmd
        if cmd == 0:
            self.kbd.write(val)
            self.mode &= ~KBD_MODE_DISABLE_KBD  # talking to the keyboard enables its port
            self._safe_update_irq()
        elif cmd == KBD_CCMD_WRITE_MODE:
            self.mode = val
            self.kbd.set_translation(int(bool(self.mode & KBD_MODE_KCC)))
            self.update_irq_lines()  # the interrupt enables act at once
            self._safe_update_irq()  # an enabled port may have data waiting
        elif cmd == KBD_CCMD_WRITE_OBUF:
            self._queue(val, 0)
        elif cmd == KBD_CCMD_WRITE_AUX_OBUF:
            self._queue(val, 1)
        elif cmd == KBD_CCMD_WRITE_OUTPORT:
            self._outport_write(val)
        elif cmd == KBD_CCMD_WRITE_MOUSE:
            self.mouse.write(val)
            self.mode &= ~KBD_MODE_DISABLE_MOUSE  # as does talking to the mouse
            self._safe_update_irq()
        self.write_cmd = 0

    def firmware_setup(self) -> None:
        """What firmware leaves in the controller before it starts a kernel, for
        ``--direct-boot`` (emu's pc firmware, ``arch_kbd_setup``, makes the same port
        accesses; SeaBIOS 1.16's ``ps2_keyboard_setup`` ends in the same state): ports
        disabled and drained, self test, keyboard port test, keyboard reset, reset-and-
        disable, scancode set 2, enable, command byte 0x61 (keyboard interrupt, mouse port
        disabled, translation)."""
        out, read = self._write_cmd_port, self._read_data_port
        for cmd in (KBD_CCMD_KBD_DISABLE, KBD_CCMD_MOUSE_DISABLE, KBD_CCMD_SELF_TEST,
                    KBD_CCMD_KBD_TEST):
            while self.status & KBD_STAT_OBF:
                read(0)
            out(0, cmd)
        read(0)
        out(0, KBD_CCMD_WRITE_MODE)
        self._write_data_port(0, KBD_MODE_DISABLE_MOUSE)
        for byte in (0xFF, 0xF5, 0xF0, 0x02, 0xF4):
            self._write_data_port(0, byte)
            while self.status & KBD_STAT_OBF:
                read(0)
        out(0, KBD_CCMD_WRITE_MODE)
        self._write_data_port(0, KBD_MODE_KCC | KBD_MODE_DISABLE_MOUSE | KBD_MODE_KBD_INT)

    def reset(self) -> None:
        """``kbd_reset`` (``i8042_reset``), then the keyboard's and mouse's resets."""
        self.mode = KBD_MODE_KBD_INT | KBD_MODE_MOUSE_INT
        self.status = KBD_STAT_CMD | KBD_STAT_UNLOCKED
        self.outport = KBD_OUT_RESET | KBD_OUT_A20 | KBD_OUT_ONES
        self.pending = 0
        self._deassert_irq()
        self.kbd.reset()
        self.mouse.reset()
