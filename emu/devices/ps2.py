"""The PS/2 keyboard and mouse behind the i8042 controller (QEMU 7.2 hw/input/ps2.c,
include/hw/input/ps2.h).

Each device has QEMU's byte queue (``PS2Queue``): a 256-byte ring of which at most 16 bytes
are data the device sends on its own (key codes, mouse packets); the keyboard's command
replies go in front of them (QEMU's "command queue", ``cwptr``), so that a reply is read
before key codes that were waiting. The device's ``irq`` line is high while the queue holds
bytes; reading the last byte lowers it; reading an empty queue returns the last byte read
again (QEMU's EMM386 note). The controller (:mod:`emu.devices.pckbd`) reads the bytes.

Keyboard (``ps2-kbd``): an MF2 AT keyboard answering the command set of QEMU's
``ps2_write_keyboard`` (reset 0xff -> FA AA, get ID 0xf2 -> FA AB 41 translated / 83, echo,
LEDs, scancode set, typematic rate, enable / reset-and-disable / reset-and-enable, 0xfa,
0x00, 0x05, resend 0xfe for anything else). ``translate`` is the controller's scancode
translation (its command byte bit 6): set-2 codes become set-1 codes as the 8042 does
(``translate_table``). emu has no display and so no host keyboard: :meth:`Ps2Keyboard.put_keycode`
is QEMU's entry for a key code in the current set.

Mouse (``ps2-mouse``): QEMU's ``ps2_write_mouse``: scaling, resolution, sample rate,
stream / remote / wrap modes, status request, poll, enable / disable, defaults, reset
(FA AA 00), get ID with the IntelliMouse (rates 200, 100, 80 -> type 3) and IntelliMouse
Explorer (200, 200, 80 -> type 4) detection; packets of 3 bytes, 4 for types 3 and 4.

Trace events (QEMU's): ``ps2_read_data``, ``ps2_set_ledstate``, ``ps2_reset_keyboard``,
``ps2_write_keyboard``, ``ps2_keyboard_set_translation``, ``ps2_put_keycode``,
``ps2_mouse_send_packet``, ``ps2_write_mouse``, ``ps2_kbd_reset``, ``ps2_mouse_reset``.
"""

from __future__ import annotations

from emu import trace as tracing
from emu.irq import Gpios, IrqLine
from emu.trace import trace

KBD_CMD_SET_LEDS = 0xED
KBD_CMD_ECHO = 0xEE
KBD_CMD_SCANCODE = 0xF0
KBD_CMD_GET_ID = 0xF2
KBD_CMD_SET_RATE = 0xF3
KBD_CMD_ENABLE = 0xF4
KBD_CMD_RESET_DISABLE = 0xF5
KBD_CMD_RESET_ENABLE = 0xF6
KBD_CMD_RESET = 0xFF
KBD_CMD_SET_MAKE_BREAK = 0xFC
KBD_CMD_SET_TYPEMATIC = 0xFA

KBD_REPLY_POR = 0xAA
KBD_REPLY_ID = 0xAB
KBD_REPLY_ACK = 0xFA
KBD_REPLY_RESEND = 0xFE

AUX_SET_SCALE11 = 0xE6
AUX_SET_SCALE21 = 0xE7
AUX_SET_RES = 0xE8
AUX_GET_SCALE = 0xE9
AUX_SET_STREAM = 0xEA
AUX_POLL = 0xEB
AUX_RESET_WRAP = 0xEC
AUX_SET_WRAP = 0xEE
AUX_SET_REMOTE = 0xF0
AUX_GET_TYPE = 0xF2
AUX_SET_SAMPLE = 0xF3
AUX_ENABLE_DEV = 0xF4
AUX_DISABLE_DEV = 0xF5
AUX_SET_DEFAULT = 0xF6
AUX_RESET = 0xFF
AUX_ACK = 0xFA

MOUSE_STATUS_REMOTE = 0x40
MOUSE_STATUS_ENABLED = 0x20
MOUSE_STATUS_SCALE21 = 0x10

#: data bytes the protocol lets a device queue, and the ring's size (QEMU keeps 256)
PS2_QUEUE_SIZE = 16
PS2_BUFFER_SIZE = 256

#: the 8042's set 2 -> set 1 translation (QEMU's translate_table)
TRANSLATE_TABLE = bytes([
    0xff, 0x43, 0x41, 0x3f, 0x3d, 0x3b, 0x3c, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3e, 0x0f, 0x29, 0x59,
    0x65, 0x38, 0x2a, 0x70, 0x1d, 0x10, 0x02, 0x5a, 0x66, 0x71, 0x2c, 0x1f, 0x1e, 0x11, 0x03, 0x5b,
    0x67, 0x2e, 0x2d, 0x20, 0x12, 0x05, 0x04, 0x5c, 0x68, 0x39, 0x2f, 0x21, 0x14, 0x13, 0x06, 0x5d,
    0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5e, 0x6a, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5f,
    0x6b, 0x33, 0x25, 0x17, 0x18, 0x0b, 0x0a, 0x60, 0x6c, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0c, 0x61,
    0x6d, 0x73, 0x28, 0x74, 0x1a, 0x0d, 0x62, 0x6e, 0x3a, 0x36, 0x1c, 0x1b, 0x75, 0x2b, 0x63, 0x76,
    0x55, 0x56, 0x77, 0x78, 0x79, 0x7a, 0x0e, 0x7b, 0x7c, 0x4f, 0x7d, 0x4b, 0x47, 0x7e, 0x7f, 0x6f,
    0x52, 0x53, 0x50, 0x4c, 0x4d, 0x48, 0x01, 0x45, 0x57, 0x4e, 0x51, 0x4a, 0x37, 0x49, 0x46, 0x54,
    0x80, 0x81, 0x82, 0x41, 0x54, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
    *range(0x90, 0x100),
])
assert len(TRANSLATE_TABLE) == 256


class Ps2Device:
    """QEMU's ``ps2-device``: the queue, the pending command byte and the ``irq`` line."""

    qom_type = "ps2-device"

    def __init__(self) -> None:
        self.data = bytearray(PS2_BUFFER_SIZE)
        self.rptr = self.wptr = self.count = 0
        self.cwptr = -1
        #: the command whose argument byte comes next (-1: none)
        self.write_cmd = -1
        self.irq = IrqLine(f"{self.qom_type}.irq")
        self.gpios = Gpios(self.qom_type, outputs={None: [self.irq]})

    # -- the queue (ps2_reset_queue, ps2_queue*, ps2_cqueue*) --------------------------------

    def reset_queue(self) -> None:
        self.rptr = self.wptr = self.count = 0
        self.cwptr = -1

    def queue_empty(self) -> bool:
        return self.count == 0

    def queue_noirq(self, b: int) -> None:
        """``ps2_queue_noirq``: one byte, if the queue has room."""
        if self.count >= PS2_QUEUE_SIZE:
            return
        self.data[self.wptr] = b & 0xFF
        self.wptr = (self.wptr + 1) % PS2_BUFFER_SIZE
        self.count += 1

    def queue(self, *data: int) -> None:
        """``ps2_queue`` .. ``ps2_queue_4``: all of ``data`` or, without room, nothing; the
        line is raised."""
        if PS2_QUEUE_SIZE - self.count < len(data):
            return
        for b in data:
            self.queue_noirq(b)
        self.irq.raise_()

    def cqueue(self, *data: int) -> None:
        """``ps2_cqueue_1`` .. ``ps2_cqueue_3``: a command reply, ahead of the queued data."""
        self.rptr = (self.rptr - len(data)) & (PS2_BUFFER_SIZE - 1)
        self.cwptr = self.rptr
        for b in data:
            self.data[self.cwptr] = b & 0xFF
            self.cwptr += 1
            if self.cwptr >= PS2_BUFFER_SIZE:
                self.cwptr = 0
            self.count += 1
        self.irq.raise_()

    def cqueue_reset(self) -> None:
        """``ps2_cqueue_reset``: drop an unread command reply."""
        if self.cwptr == -1:
            return
        self.count -= (self.cwptr - self.rptr) & (PS2_BUFFER_SIZE - 1)
        self.rptr = self.cwptr
        self.cwptr = -1

    def read_data(self) -> int:
        """``ps2_read_data``: the next byte (the last one again when the queue is empty)."""
        if tracing.ON:
            trace("ps2_read_data", dev=self.qom_type)
        if self.count == 0:
            return self.data[(self.rptr - 1) % PS2_BUFFER_SIZE]
        val = self.data[self.rptr]
        self.rptr = (self.rptr + 1) % PS2_BUFFER_SIZE
        self.count -= 1
        if self.rptr == self.cwptr:
            self.cwptr = -1  # the command reply has been read
        self.irq.lower()
        if self.count:
            self.irq.raise_()
        return val

    def reset(self) -> None:
        """``ps2_reset``."""
        self.write_cmd = -1
        self.reset_queue()
        self.irq.lower()


class Ps2Keyboard(Ps2Device):
    """``ps2-kbd``: an MF2 AT keyboard."""

    qom_type = "ps2-kbd"

    def __init__(self) -> None:
        super().__init__()
        self.scan_enabled = 1
        self.translate = 0
        self.scancode_set = 2
        self.ledstate = 0
        self.need_high_bit = False

    def set_ledstate(self, ledstate: int) -> None:
        if tracing.ON:
            trace("ps2_set_ledstate", ledstate=ledstate)
        self.ledstate = ledstate

    def reset_keyboard(self) -> None:
        """``ps2_reset_keyboard``: what the reset commands do."""
        if tracing.ON:
            trace("ps2_reset_keyboard")
        self.scan_enabled = 1
        self.scancode_set = 2
        self.reset_queue()
        self.set_ledstate(0)

    def set_translation(self, mode: int) -> None:
        """``ps2_keyboard_set_translation``: the controller's translation on (1) or off."""
        if tracing.ON:
            trace("ps2_keyboard_set_translation", mode=mode)
        self.translate = mode

    def put_keycode(self, keycode: int) -> None:
        """``ps2_put_keycode``: a key code of the current set, translated to set 1 while the
        controller translates (0xf0, set 2's break prefix, sets the next code's bit 7)."""
        if tracing.ON:
            trace("ps2_put_keycode", keycode=keycode)
        if not self.translate:
            self.queue(keycode)
        elif keycode == 0xF0:
            self.need_high_bit = True
        elif self.need_high_bit:
            self.queue(TRANSLATE_TABLE[keycode] | 0x80)
            self.need_high_bit = False
        else:
            self.queue(TRANSLATE_TABLE[keycode])

    def write(self, val: int) -> None:
        """``ps2_write_keyboard``: a byte the host sends to the keyboard."""
        if tracing.ON:
            trace("ps2_write_keyboard", val=val)
        self.cqueue_reset()
        cmd = self.write_cmd
        if cmd == KBD_CMD_SET_MAKE_BREAK:
            self.cqueue(KBD_REPLY_ACK)
            self.write_cmd = -1
        elif cmd == KBD_CMD_SCANCODE:
            if val == 0:
                self.cqueue(KBD_REPLY_ACK, TRANSLATE_TABLE[self.scancode_set] if self.translate
                            else self.scancode_set)
            elif 1 <= val <= 3:
                self.scancode_set = val
                self.cqueue(KBD_REPLY_ACK)
            else:
                self.cqueue(KBD_REPLY_RESEND)
            self.write_cmd = -1
        elif cmd == KBD_CMD_SET_LEDS:
            self.set_ledstate(val)
            self.cqueue(KBD_REPLY_ACK)
            self.write_cmd = -1
        elif cmd == KBD_CMD_SET_RATE:
            self.cqueue(KBD_REPLY_ACK)
            self.write_cmd = -1
        else:
            self._command(val)

    def _command(self, val: int) -> None:
        if val in (0x00, KBD_CMD_SET_TYPEMATIC):
            self.cqueue(KBD_REPLY_ACK)
        elif val == KBD_CMD_GET_ID:  # an MF2 AT keyboard
            self.cqueue(KBD_REPLY_ACK, KBD_REPLY_ID, 0x41 if self.translate else 0x83)
        elif val == KBD_CMD_ECHO:
            self.cqueue(KBD_CMD_ECHO)
        elif val == KBD_CMD_ENABLE:
            self.scan_enabled = 1
            self.cqueue(KBD_REPLY_ACK)
        elif val in (KBD_CMD_SCANCODE, KBD_CMD_SET_LEDS, KBD_CMD_SET_RATE,
                     KBD_CMD_SET_MAKE_BREAK):
            self.write_cmd = val
            self.cqueue(KBD_REPLY_ACK)
        elif val in (KBD_CMD_RESET_DISABLE, KBD_CMD_RESET_ENABLE):
            self.reset_keyboard()
            self.scan_enabled = int(val == KBD_CMD_RESET_ENABLE)
            self.cqueue(KBD_REPLY_ACK)
        elif val == KBD_CMD_RESET:
            self.reset_keyboard()
            self.cqueue(KBD_REPLY_ACK, KBD_REPLY_POR)
        else:  # 0x05 and every unknown command
            self.cqueue(KBD_REPLY_RESEND)

    def reset(self) -> None:
        """``ps2_kbd_reset``."""
        if tracing.ON:
            trace("ps2_kbd_reset")
        super().reset()
        self.scan_enabled = 1
        self.translate = 0
        self.scancode_set = 2


class Ps2Mouse(Ps2Device):
    """``ps2-mouse``: a PS/2 mouse that becomes an IntelliMouse (type 3) or IntelliMouse
    Explorer (type 4) when the host sends the magic sample-rate sequences."""

    qom_type = "ps2-mouse"

    def __init__(self) -> None:
        super().__init__()
        self.status = 0
        self.resolution = 0
        self.sample_rate = 0
        self.wrap = 0
        #: 0 PS/2, 3 IMPS/2, 4 IMEX
        self.type = 0
        self.detect_state = 0
        self.dx = self.dy = self.dz = self.dw = 0
        self.buttons = 0

    def send_packet(self) -> bool:
        """``ps2_mouse_send_packet``: one movement packet from the accumulated deltas, if the
        queue has room."""
        needed = 4 if self.type else 3
        if PS2_QUEUE_SIZE - self.count < needed:
            return False
        dx1 = max(-127, min(127, self.dx))
        dy1 = max(-127, min(127, self.dy))
        dz1, dw1 = self.dz, self.dw
        b = 0x08 | (int(dx1 < 0) << 4) | (int(dy1 < 0) << 5) | (self.buttons & 0x07)
        self.queue_noirq(b)
        self.queue_noirq(dx1 & 0xFF)
        self.queue_noirq(dy1 & 0xFF)
        if self.type == 3:
            dz1 = max(-127, min(127, dz1))
            self.queue_noirq(dz1 & 0xFF)
            self.dz -= dz1
            self.dw = 0
        elif self.type == 4:
            if dw1 != 0:  # what Linux's psmouse-base.c expects of an Explorer
                dw1 = max(-31, min(31, dw1))
                b = (dw1 & 0x3F) | 0x40
                self.dw -= dw1
            else:
                dz1 = max(-7, min(7, dz1))
                b = (dz1 & 0x0F) | ((self.buttons & 0x18) << 1)
                self.dz -= dz1
            self.queue_noirq(b)
        else:  # no wheels
            self.dz = self.dw = 0
        self.irq.raise_()
        if tracing.ON:
            trace("ps2_mouse_send_packet", dx1=dx1, dy1=dy1, dz1=dz1, b=b)
        self.dx -= dx1
        self.dy -= dy1
        return True

    def write(self, val: int) -> None:
        """``ps2_write_mouse``: a byte the host sends to the mouse (controller command 0xd4)."""
        if tracing.ON:
            trace("ps2_write_mouse", val=val)
        cmd = self.write_cmd
        if cmd == AUX_SET_SAMPLE:
            self.sample_rate = val
            self._detect(val)
            self.queue(AUX_ACK)
            self.write_cmd = -1
        elif cmd == AUX_SET_RES:
            self.resolution = val
            self.queue(AUX_ACK)
            self.write_cmd = -1
        else:
            self._command(val)

    def _detect(self, val: int) -> None:
        """The IMPS/2 (200, 100, 80) and IMEX (200, 200, 80) sample-rate sequences."""
        state = self.detect_state
        if state == 1:
            self.detect_state = 2 if val == 100 else 3 if val == 200 else 0
            return
        if state in (2, 3) and val == 80:
            self.type = 3 if state == 2 else 4
        self.detect_state = 1 if state not in (1, 2, 3) and val == 200 else 0

    def _command(self, val: int) -> None:
        if self.wrap:
            if val == AUX_RESET_WRAP:
                self.wrap = 0
                self.queue(AUX_ACK)
                return
            if val != AUX_RESET:
                self.queue(val)
                return
        if val == AUX_SET_SCALE11:
            self.status &= ~MOUSE_STATUS_SCALE21
            self.queue(AUX_ACK)
        elif val == AUX_SET_SCALE21:
            self.status |= MOUSE_STATUS_SCALE21
            self.queue(AUX_ACK)
        elif val == AUX_SET_STREAM:
            self.status &= ~MOUSE_STATUS_REMOTE
            self.queue(AUX_ACK)
        elif val == AUX_SET_WRAP:
            self.wrap = 1
            self.queue(AUX_ACK)
        elif val == AUX_SET_REMOTE:
            self.status |= MOUSE_STATUS_REMOTE
            self.queue(AUX_ACK)
        elif val == AUX_GET_TYPE:
            self.queue(AUX_ACK, self.type)
        elif val in (AUX_SET_RES, AUX_SET_SAMPLE):
            self.write_cmd = val
            self.queue(AUX_ACK)
        elif val == AUX_GET_SCALE:
            self.queue(AUX_ACK, self.status, self.resolution, self.sample_rate)
        elif val == AUX_POLL:
            self.queue(AUX_ACK)
            self.send_packet()
        elif val == AUX_ENABLE_DEV:
            self.status |= MOUSE_STATUS_ENABLED
            self.queue(AUX_ACK)
        elif val == AUX_DISABLE_DEV:
            self.status &= ~MOUSE_STATUS_ENABLED
            self.queue(AUX_ACK)
        elif val == AUX_SET_DEFAULT:
            self.sample_rate, self.resolution, self.status = 100, 2, 0
            self.queue(AUX_ACK)
        elif val == AUX_RESET:
            self.sample_rate, self.resolution, self.status, self.type = 100, 2, 0, 0
            self.reset_queue()
            self.queue(AUX_ACK, 0xAA, self.type)
        # any other byte: no answer (QEMU's default case)

    def reset(self) -> None:
        """``ps2_mouse_reset``."""
        if tracing.ON:
            trace("ps2_mouse_reset")
        super().reset()
        self.status = self.resolution = self.sample_rate = 0
        self.wrap = self.type = self.detect_state = 0
        self.dx = self.dy = self.dz = self.dw = 0
        self.buttons = 0
