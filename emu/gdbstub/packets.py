"""The GDB remote serial protocol's framing: ``$data#cs`` packets, acks, escapes, RLE.

:class:`PacketReader` is QEMU's ``gdb_read_byte`` state machine (gdbstub/gdbstub.c,
QEMU 7.2): bytes between packets are garbage, ``}`` escapes the next byte (xor 0x20),
``*`` repeats the previous byte ``n - 29`` times, the two hex digits after ``#`` are the
modulo-256 sum of the bytes as sent; a good packet is acked with ``+``, a bad checksum
with ``-``, an over-long packet is dropped. Every mistake is traced as QEMU traces it,
never raised. :func:`frame` builds what ``put_packet_binary`` sends; :func:`escape_binary`
is ``memtox`` (the ``x``-encoding of qXfer replies).
"""

from __future__ import annotations

from collections.abc import Callable

from emu.trace import trace

#: QEMU's MAX_PACKET_LENGTH (the PacketSize it announces, and its line buffer)
MAX_PACKET_LENGTH = 4096
INTERRUPT = 0x03

_HEX = b"0123456789abcdefABCDEF"


def checksum(data: bytes) -> int:
    """The modulo-256 sum of the packet's bytes as they are sent."""
    return sum(data) & 0xFF


def frame(data: bytes) -> bytes:
    """``$data#cs``: ``data`` must already be escaped where the packet needs it."""
    return b"$" + data + b"#" + f"{checksum(data):02x}".encode()


def escape_binary(data: bytes) -> bytes:
    """memtox: ``# $ * }`` become ``}`` followed by the byte xor 0x20."""
    out = bytearray()
    for c in data:
        if c in b"#$*}":
            out += bytes((0x7D, c ^ 0x20))
        else:
            out.append(c)
    return bytes(out)


def fromhex(c: int) -> int:
    """QEMU's fromhex: a non-hex digit counts as 0."""
    if 0x30 <= c <= 0x39:
        return c - 0x30
    if 0x41 <= c <= 0x46:
        return c - 0x41 + 10
    if 0x61 <= c <= 0x66:
        return c - 0x61 + 10
    return 0


def hex_to_bytes(text: bytes, count: int) -> bytes:
    """hextomem: ``count`` bytes from ``2 * count`` hex digits (QEMU's leniency included)."""
    return bytes(fromhex(text[2 * i]) << 4 | fromhex(text[2 * i + 1]) for i in range(count))


class PacketReader:
    """Feeds on received bytes; calls ``on_packet(data)`` for each good packet and
    ``send(bytes)`` for the ``+``/``-`` replies."""

    def __init__(self, on_packet: Callable[[bytes], None],
                 send: Callable[[bytes], None]) -> None:
        self.on_packet = on_packet
        self.send = send
        self.state = "idle"
        self._line = bytearray()
        self._sum = 0
        self._csum = 0

    def feed(self, data: bytes) -> None:
        for c in data:
            self.byte(c)

    def byte(self, ch: int) -> None:
        """One received byte (gdb_read_byte, from RS_IDLE on)."""
        state = self.state
        if state == "idle":
            if ch == 0x24:  # '$'
                self._line.clear()
                self._sum = 0
                self.state = "line"
            else:
                trace("gdbstub_err_garbage", ch=ch)
        elif state == "line":
            if ch == 0x7D:  # '}'
                self.state = "escape"
                self._sum += ch
            elif ch == 0x2A:  # '*'
                self.state = "rle"
                self._sum += ch
            elif ch == 0x23:  # '#'
                self.state = "csum1"
            elif len(self._line) >= MAX_PACKET_LENGTH - 1:
                trace("gdbstub_err_overrun")
                self.state = "idle"
            else:
                self._line.append(ch)
                self._sum += ch
        elif state == "escape":
            if ch == 0x23:  # unexpected end of command in escape sequence
                self.state = "csum1"
            elif len(self._line) >= MAX_PACKET_LENGTH - 1:
                trace("gdbstub_err_overrun")
                self.state = "idle"
            else:
                self._line.append(ch ^ 0x20)
                self._sum += ch
                self.state = "line"
        elif state == "rle":
            if ch < 0x20 or ch in (0x23, 0x24) or ch > 126:
                trace("gdbstub_err_invalid_repeat", ch=ch)
                self.state = "line"
            else:
                repeat = ch - 0x20 + 3
                if len(self._line) + repeat >= MAX_PACKET_LENGTH - 1:
                    trace("gdbstub_err_overrun")
                    self.state = "idle"
                elif not self._line:
                    trace("gdbstub_err_invalid_rle")
                    self.state = "line"
                else:
                    self._line += bytes((self._line[-1],)) * repeat
                    self._sum += ch
                    self.state = "line"
        elif state == "csum1":
            if ch not in _HEX:
                trace("gdbstub_err_checksum_invalid", ch=ch)
                self.state = "line"
                return
            self._csum = fromhex(ch) << 4
            self.state = "csum2"
        else:  # csum2
            if ch not in _HEX:
                trace("gdbstub_err_checksum_invalid", ch=ch)
                self.state = "line"
                return
            self._csum |= fromhex(ch)
            self.state = "idle"
            if self._csum != self._sum & 0xFF:
                trace("gdbstub_err_checksum_incorrect", expected=self._sum & 0xFF,
                      got=self._csum)
                self.send(b"-")
                return
            self.send(b"+")
            self.on_packet(bytes(self._line))
