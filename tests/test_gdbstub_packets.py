"""The gdb stub's packet layer and command decoding, without gdb: framing (checksums,
escapes, run-length encoding, garbage), QEMU's parameter parsing, and any packet, however
malformed, answered without a traceback. The expected values are the protocol's (GDB's
"Remote Protocol" appendix) and QEMU 7.2's gdbstub.c, worked out by hand here."""

from __future__ import annotations

import random
import socket
import subprocess
from collections.abc import Iterator

import pytest
from conftest import boot_args, image, run_emu
from test_gdbstub import _start, _wait_for

from emu.config import DeviceSpec, MachineConfig
from emu.gdbstub.packets import MAX_PACKET_LENGTH, PacketReader, escape_binary, frame
from emu.gdbstub.server import (
    ALL_PROCESSES,
    ALL_THREADS,
    ONE_THREAD,
    THREAD_ERROR,
    GdbAddress,
    GdbServer,
    parse_params,
    read_thread_id,
)
from emu.machine import Machine


def test_frame_checksum_is_the_byte_sum_modulo_256() -> None:
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"") == b"$#00"
    assert frame(b"T05thread:p01.01;") == b"$T05thread:p01.01;#06"


def test_binary_escape_is_qemus_memtox() -> None:
    assert escape_binary(b"a#b$c*d}e") == b"a}\x03b}\x04c}\x0ad}\x5de"


class _Wire:
    def __init__(self) -> None:
        self.sent = b""
        self.packets: list[bytes] = []
        self.reader = PacketReader(self.packets.append, self._send)

    def _send(self, data: bytes) -> None:
        self.sent += data


@pytest.mark.parametrize(("raw", "packets", "sent"), [
    (b"$qC#b4", [b"qC"], b"+"),
    (b"$qC#B4", [b"qC"], b"+"),  # either case of hex digit
    (b"$qC#b5", [], b"-"),  # a wrong checksum: NAK, nothing handled
    (b"xyz$qC#b4", [b"qC"], b"+"),  # garbage between packets is dropped
    (b"$q}\x03#f1", [b"q#"], b"+"),  # '}' escapes the next byte (xor 0x20)
    (b"$m0,4*\x20#" + b"%02x" % (sum(b"m0,4* ") & 0xFF), [b"m0,4444"], b"+"),  # RLE: 3 more
    # RLE with nothing before: QEMU drops the count, and only '*' was summed
    (b"$*\x21x#" + b"%02x" % (sum(b"*x") & 0xFF), [b"x"], b"+"),
    (b"$qC#zz$qC#b4", [], b"-"),  # a non-hex digit: back into the line, whose sum is wrong
    (b"$" + b"a" * MAX_PACKET_LENGTH + b"#00$qC#b4", [b"qC"], b"+"),  # overrun: dropped
    (b"$qC#b4$qAttached#8f", [b"qC", b"qAttached"], b"++"),
])
def test_reader_decodes_like_qemus_gdb_read_byte(raw: bytes, packets: list[bytes],
                                                 sent: bytes) -> None:
    wire = _Wire()
    wire.reader.feed(raw)
    assert wire.packets == packets
    assert wire.sent == sent


def test_reader_survives_every_byte_sequence() -> None:
    rng = random.Random(1)
    for _ in range(300):
        wire = _Wire()
        wire.reader.feed(bytes(rng.choice(b"$#}*+-0123456789abcdefqXZ\x03\x00\xff")
                               for _ in range(rng.randrange(200))))
        assert wire.reader.state in ("idle", "line", "escape", "rle", "csum1", "csum2")


@pytest.mark.parametrize(("data", "schema", "params"), [
    (b"100,8", "L,L0", [0x100, 8]),
    (b"0x100,8", "L,L0", [0x100, 8]),  # strtoul base 16 takes a 0x prefix
    (b"100", "L,L0", [0x100]),
    (b"", "L,L0", []),
    (b"zz,8", "L,L0", None),  # not a number: the command is unsupported ("")
    (b"1" * 17 + b",1", "L,L0", None),  # above 64 bits: -ERANGE
    (b"100,4:deadbeef", "L,L:s0", [0x100, 4, b"deadbeef"]),
    (b"2,1000,4", "l?L?L0", [2, 0x1000, 4]),
    (b";1", "?.l0", [1]),
    (b"gp1.2", "o.t0", [ord("g"), (ONE_THREAD, 1, 2)]),
])
def test_parameters_are_parsed_as_qemus_cmd_parse_params(
        data: bytes, schema: str, params: list[object] | None) -> None:
    assert parse_params(data, schema) == params


@pytest.mark.parametrize(("text", "tid"), [
    (b"p1.1", (ONE_THREAD, 1, 1)), (b"1", (ONE_THREAD, 1, 1)), (b"0", (ONE_THREAD, 1, 0)),
    (b"-1", (ALL_THREADS, 1, 0)), (b"p-1.-1", (ALL_PROCESSES, 0, 0)),
    (b"p1.-1", (ALL_THREADS, 1, 0)), (b"pz.1", (THREAD_ERROR, 0, 0)),
])
def test_thread_ids(text: bytes, tid: tuple[int, int, int]) -> None:
    assert read_thread_id(text, 0)[0] == tid


@pytest.fixture
def stub(tmp_path) -> Iterator[tuple[GdbServer, list[bytes]]]:
    """A stub on a paused pc machine (not running: the test thread is its machine thread),
    its replies recorded instead of sent."""
    config = MachineConfig(machine="pc", kernel=image("pc", "hello"), start_paused=True,
                           serial=[f"file:{tmp_path / 'out'}"],
                           devices=[DeviceSpec("isa-debug-exit,iobase=0xf4,iosize=0x04",
                                               "isa-debug-exit", {})])
    machine = Machine(config)
    machine.power_on()
    server = GdbServer(machine, GdbAddress("none", "none"))
    replies: list[bytes] = []
    server.put_packet = lambda data, binary=False: replies.append(data)  # type: ignore
    try:
        yield server, replies
    finally:
        server.close()
        machine.close()


def test_registers_read_back_what_was_written(stub: tuple[GdbServer, list[bytes]]) -> None:
    server, replies = stub
    server.handle_packet(b"qXfer:features:read:target.xml:0,ffb")
    assert replies[-1].startswith(b"l<?xml") and b"i386:x86-64" in replies[-1]
    server.handle_packet(b"P0=1122334455667788")  # rax (outside 64-bit code: 32 bits kept)
    server.handle_packet(b"p0")
    assert replies[-2:] == [b"OK", b"1122334400000000"]
    server.handle_packet(b"g")
    assert len(replies[-1]) == 2 * (17 * 8 + 7 * 4 + 9 * 8 + 8 * 10 + 8 * 4 + 16 * 16 + 4)
    server.handle_packet(b"p2a")  # fstat (register 42): 4 bytes
    assert len(replies[-1]) == 8
    server.handle_packet(b"p46")  # no register 70
    assert replies[-1] == b"E14"


def test_memory_writes_read_back(stub: tuple[GdbServer, list[bytes]]) -> None:
    server, replies = stub
    server.handle_packet(b"M8000,4:deadbeef")
    server.handle_packet(b"m8000,4")
    assert replies[-2:] == [b"OK", b"deadbeef"]
    server.handle_packet(b"m8000,1001")  # more than a packet holds (QEMU: len > 4096 / 2)
    assert replies[-1] == b"E22"


def test_any_packet_is_answered_without_a_traceback(stub: tuple[GdbServer, list[bytes]],
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    """Random commands with random (often malformed) arguments: each gets QEMU's kind of
    answer (maybe none: c, s and vCont resume, D and k too), never an exception."""
    server, replies = stub
    rng = random.Random(7)
    alphabet = b"0123456789abcdefABCDEFpPxX,.;:=-+Zz?qQvmMgG"
    heads = [b"?", b"c", b"C", b"s", b"g", b"G", b"m", b"M", b"p", b"P", b"Z", b"z", b"H",
             b"T", b"D", b"v", b"vCont", b"vCont;", b"vAttach;", b"q", b"qC", b"qXfer:",
             b"qXfer:features:read:", b"qThreadExtraInfo,", b"qSupported", b"Q",
             b"Qqemu.sstep=", b"Qqemu.PhyMemMode:", b"qqemu.", b"b", b"F", b"X", b"!", b"i"]
    for _ in range(3000):
        packet = rng.choice(heads) + bytes(rng.choice(alphabet)
                                           for _ in range(rng.randrange(24)))
        before = len(replies)
        server.handle_packet(packet)
        assert all(isinstance(r, bytes) for r in replies[before:])
        server.machine.state = "paused"  # as if the resumed CPU stopped again
        server.machine.exit_status = None
    assert "internal error" not in capfd.readouterr().err


def _reply(s: socket.socket) -> bytes:
    buf = b""
    while not (len(buf) > 3 and buf[-3:-2] == b"#"):
        chunk = s.recv(100)
        assert chunk, buf
        buf += chunk
    return buf


def test_trace_events_show_the_conversation(tmp_path) -> None:
    """-trace 'gdbstub_*': QEMU's event names (gdbstub/trace-events) for what is received
    and sent."""
    sock = tmp_path / "gdb.sock"
    proc = _start("emu", "pc", "hello", f"unix:{sock},server=on", "", "-trace", "gdbstub_*")
    try:
        _wait_for(sock, proc)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(sock))
            s.sendall(b"$qC#b4")
            assert _reply(s) == b"+$QC01#f5"
            s.sendall(b"+$D#44")
            assert _reply(s) == b"+$OK#9a"
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = err.decode().splitlines()
    assert f"gdbstub_op_start device=unix:{sock},server=on" in lines
    assert "gdbstub_io_command command=qC" in lines
    assert "gdbstub_io_reply message=QC01" in lines
    assert "gdbstub_io_got_ack" in lines
    assert "gdbstub_op_continue" in lines


def _qemu_error(args: list[str]) -> str:
    result = subprocess.run(["qemu-system-x86_64", *args], capture_output=True, timeout=30,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    return result.stderr.decode().replace("qemu-system-x86_64: ", "emu: ", 1)


@pytest.mark.parametrize("spec", ["bogus:1", "tcp::notaport",
                                  "unix:/nonexistent/dir/gdb.sock,server=on", "BUSY"])
def test_option_errors_are_qemus_one_line(spec: str) -> None:
    """-gdb mistakes and a busy port: QEMU's one line (after 'emu: '), exit status 1."""
    with socket.socket(socket.AF_INET6) as busy:
        busy.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        busy.bind(("::", 0))
        busy.listen(1)
        if spec == "BUSY":
            spec = f"tcp::{busy.getsockname()[1]}"
        args = [*boot_args("pc", "hello"), "-S", "-gdb", spec]
        expected = _qemu_error(args)
        result = run_emu(args, timeout=60)
    assert result.returncode == 1
    assert result.stderr.decode() == expected
    assert len(expected.splitlines()) == 1


def test_s_is_gdb_on_tcp_port_1234() -> None:
    from emu.cli import parse_args

    cfg = parse_args(["-M", "pc", "-s"])
    assert not isinstance(cfg, str)
    assert [(a.kind, a.host, a.port) for a in cfg.gdb] == [("tcp", "", 1234)]
