"""The gdb stub: ``-gdb DEV`` / ``-s``, one gdb at a time, QEMU 7.2's commands and replies.

This is QEMU's gdbstub/gdbstub.c for a machine with one CPU (one process, pid 1, one
thread, tid 1): the same command table (``gdb_handle_packet``), parameter parsing
(``cmd_parse_params``), replies and error codes, the same stop replies sent from the
same events (``gdb_vm_state_change``):

* a gdb connecting stops the machine (``CHR_EVENT_OPENED``: ``vm_stop``);
* any byte received while the machine runs stops it (``gdb_read_byte``): Ctrl-C (0x03)
  gives ``T02``, as does a monitor's ``stop`` while gdb waits;
* a breakpoint or a finished step gives ``T05``, a watchpoint ``T05...watch:ADDR;``
  (``rwatch``/``awatch`` for read and access watchpoints);
* the end of emu gives ``W00`` (``gdb_exit(0)`` in qemu_cleanup), except when the guest
  ends it through isa-debug-exit, which exits at once in QEMU.

Packets are decoded on the stub's thread (emu/gdbstub/packets.py) and executed on the
machine's (:meth:`Machine.call_soon`): the CPU is never touched while it runs, and every
stop is one of the run loop's safe stops (docs/devel/run-loop.md, docs/devel/gdbstub.md).
``qRcmd`` (gdb's ``monitor``) runs the line in emu's human monitor and sends its output
as ``O`` packets, one per line, as QEMU's monitor chardev for gdb does.

Differences from QEMU 7.2 kept on purpose are listed in docs/devel/gdbstub.md.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emu.errors import ConfigError
from emu.gdbstub.debug import Debugger
from emu.gdbstub.packets import (
    MAX_PACKET_LENGTH,
    PacketReader,
    escape_binary,
    frame,
    hex_to_bytes,
)
from emu.gdbstub.target import Target, target_for
from emu.trace import trace

if TYPE_CHECKING:
    from emu.machine import Machine

DEFAULT_PORT = 1234
#: gdb's signal numbers (include/gdb/signals.h as QEMU uses them)
SIGNAL_INT, SIGNAL_QUIT, SIGNAL_TRAP = 2, 3, 5
CPU_WAIT_S = 10.0
PAGE = 0x1000
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class GdbAddress:
    """Where ``-gdb`` listens: tcp (host "" = every address) or a Unix socket path."""

    spec: str
    kind: str  # "tcp", "unix" or "none"
    host: str = ""
    port: int = 0
    path: str = ""


def parse_gdb_option(spec: str) -> GdbAddress:
    """``tcp:[HOST]:PORT[,...]``, ``unix:PATH[,server=on,...]`` or ``none``, as QEMU's
    gdbserver_start takes them (a chardev; tcp gets ``server=on,wait=off``). Other
    chardev backends QEMU accepts (stdio, pipes, ...) emu does not offer."""
    if spec == "none":
        return GdbAddress(spec, "none")
    head, *opts = spec.split(",")
    for opt in opts:
        key, _, value = opt.partition("=")
        if key not in ("server", "wait", "nowait", "nodelay", "ipv4", "ipv6"):
            raise ConfigError(f"-gdb {spec}: Invalid parameter '{key}'")
        if key == "server" and value in ("off", "no", "false"):
            raise ConfigError(f"-gdb {spec}: emu's gdb stub listens (server=on) only")
    if head.startswith("unix:") and len(head) > 5:
        return GdbAddress(spec, "unix", path=head[5:])
    if head.startswith("tcp:"):
        host, sep, port = head[4:].rpartition(":")
        if not sep:
            host, port = "", head[4:]
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ConfigError(f"-gdb {spec}: address resolution failed for {host}:{port}: "
                              "Servname not supported for ai_socktype")
        return GdbAddress(spec, "tcp", host=host.strip("[]"), port=int(port))
    raise ConfigError(f"-gdb {spec}: '{spec}' is not a valid char driver")


def _strtoul(data: bytes, pos: int) -> tuple[int, int] | None:
    """qemu_strtoul(base 16): the number at ``pos`` and where it ends, None without digits
    or above 64 bits (-EINVAL, -ERANGE)."""
    end = pos
    while end < len(data) and data[end] in b" \t\n\v\f\r":
        end += 1
    negative = end < len(data) and data[end] == 0x2D
    if end < len(data) and data[end] in b"+-":
        end += 1
    if data[end:end + 2].lower() == b"0x" and end + 2 < len(data) and \
            data[end + 2:end + 3].lower() in b"0123456789abcdef" and data[end + 2:end + 3]:
        end += 2
    start = end
    while end < len(data) and data[end:end + 1].lower() in b"0123456789abcdef" and \
            data[end:end + 1]:
        end += 1
    if end == start:
        return None
    value = int(data[start:end], 16)
    if value > MASK64:
        return None
    return ((-value) & MASK64 if negative else value), end


def _next_param(data: bytes, pos: int, delimiter: str) -> int:
    """cmd_next_param."""
    if delimiter == "0":
        return len(data)
    if delimiter == ".":
        return pos + 1 if pos < len(data) else pos
    delimiters = b",;:=" if delimiter == "?" else delimiter.encode()
    while pos < len(data) and data[pos] not in delimiters:
        pos += 1
    return pos + 1 if pos < len(data) else pos


def parse_params(data: bytes, schema: str) -> list[Any] | None:
    """cmd_parse_params: ``l``/``L`` hex numbers, ``s`` the rest as bytes, ``o`` one byte,
    ``t`` a thread id, ``?`` skip; each followed by its delimiter. None on a bad number."""
    params: list[Any] = []
    pos = 0
    i = 0
    while i + 1 < len(schema) and pos < len(data):
        kind, delimiter = schema[i], schema[i + 1]
        if kind in "lL":
            found = _strtoul(data, pos)
            if found is None:
                return None
            params.append(found[0])
            pos = _next_param(data, found[1], delimiter)
        elif kind == "s":
            params.append(data[pos:])
            pos = _next_param(data, pos, delimiter)
        elif kind == "o":
            params.append(data[pos])
            pos = _next_param(data, pos, delimiter)
        elif kind == "t":
            tid, end = read_thread_id(data, pos)
            params.append(tid)
            pos = _next_param(data, end, delimiter)
        elif kind == "?":
            pos = _next_param(data, pos, delimiter)
        i += 2
    return params


#: read_thread_id's kinds
ONE_THREAD, ALL_THREADS, ALL_PROCESSES, THREAD_ERROR = range(4)


def read_thread_id(data: bytes, pos: int) -> tuple[tuple[int, int, int], int]:
    """read_thread_id: ((kind, pid, tid), end); ``p<pid>.<tid>`` or ``<tid>``, -1 = all."""
    pid = 1
    if pos < len(data) and data[pos] == 0x70:  # 'p'
        found = _strtoul(data, pos + 1)
        if found is None:
            return (THREAD_ERROR, 0, 0), pos
        pid, pos = found[0], found[1] + 1
    found = _strtoul(data, pos)
    if found is None:
        return (THREAD_ERROR, 0, 0), pos
    tid, pos = found
    if pid == MASK64:
        return (ALL_PROCESSES, 0, 0), pos
    if tid == MASK64:
        return (ALL_THREADS, pid, 0), pos
    return (ONE_THREAD, pid, tid), pos


class GdbServer:
    """A gdb stub on ``machine``: listens on ``address``, serves one gdb at a time."""

    def __init__(self, machine: Machine, address: GdbAddress) -> None:
        self.machine = machine
        self.address = address
        self.target: Target = target_for(machine.cpu)
        self.debugger = Debugger(machine)
        machine.debugger = self.debugger
        self._created_path: str | None = None
        self.sock = self._listen() if address.kind != "none" else None
        self._client: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._last_packet = b""
        self._closed = False
        #: set when gdb acks a packet
        self._acked = threading.Event()
        #: 'k' ends emu as QEMU's exit(0) does: without a W packet
        self._killed = False
        # per-connection state (gdb_accept_init / CHR_EVENT_OPENED)
        self.multiprocess = False
        self.attached = True
        self.has_xml = False
        self.phy_memory_mode = False
        self._thread_query_done = False
        self._hmp: Any = None
        machine.listeners.append(self.event)
        trace("gdbstub_op_start", device=address.spec)
        self._thread = threading.Thread(target=self._serve, name="emu-gdb", daemon=True)

    # -- socket ---------------------------------------------------------------------------

    def _fail(self, message: str) -> ConfigError:
        return ConfigError(f"-gdb {self.address.spec}: {message}")

    def _listen(self) -> socket.socket:
        a = self.address
        if a.kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                if os.path.exists(a.path) and not os.path.isdir(a.path):
                    os.unlink(a.path)  # QEMU's socket chardev unlinks the path first
                sock.bind(a.path)
                sock.listen(1)
            except OSError as e:
                sock.close()
                raise self._fail(f"Failed to bind socket to {a.path}: {e.strerror}") from None
            self._created_path = a.path
            return sock
        host = a.host or None
        try:
            infos = socket.getaddrinfo(host, a.port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        except OSError as e:
            raise self._fail(f"address resolution failed for {a.host}:{a.port}: "
                             f"{e.strerror}") from None
        error: OSError | None = None
        for family, _type, _proto, _name, sockaddr in sorted(infos, key=lambda i: i[0]
                                                              != socket.AF_INET6):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6 and host is None:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind(sockaddr)
                sock.listen(1)
                return sock
            except OSError as e:
                sock.close()
                error = e
        reason = error.strerror if error is not None else "no address"
        raise self._fail(f"Failed to find an available port: {reason}")

    def start(self, block: bool = False) -> str | None:
        """Accept gdb connections from now on (QEMU's tcp chardev for gdb: ``wait=off``,
        so emu never waits for gdb to connect)."""
        if self.sock is not None:
            self._thread.start()
        return None

    @property
    def connected(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        """emu ends: tell gdb the inferior exited (gdb_exit), unless the guest ended emu at
        once; then close everything."""
        if self._closed:
            return
        self._closed = True
        client = self._client
        if client is not None and not self.machine.exit_at_once and not self._killed:
            trace("gdbstub_op_exiting", code=0)
            self._acked.clear()
            self.put_packet(b"W00")
            # QEMU closes at once, and gdb's ack may then meet a closed socket (gdb says
            # "Broken pipe" instead of the exit): emu waits a moment for the ack
            self._acked.wait(1.0)
        for s in (client, self.sock):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
        if self._created_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._created_path)

    def _serve(self) -> None:
        assert self.sock is not None
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self._client is not None:  # QEMU's chardev takes one client at a time
                client.close()
                continue
            if client.family in (socket.AF_INET, socket.AF_INET6):
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._session, args=(client,), name="emu-gdb-client",
                             daemon=True).start()

    def _session(self, client: socket.socket) -> None:
        self._client = client
        reader = PacketReader(self._on_packet, self._send_raw)
        self._last_packet = b""
        self.multiprocess = False
        self.attached = True
        self.has_xml = False
        self._on_machine(self._opened)
        try:
            while True:
                try:
                    data = client.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                for ch in data:
                    self._byte(reader, ch)
        finally:
            with contextlib.suppress(OSError):
                client.close()
            self._client = None

    def _opened(self) -> None:
        """CHR_EVENT_OPENED: the first process attached, the machine stopped."""
        self.machine.pause()

    def _byte(self, reader: PacketReader, ch: int) -> None:
        """gdb_read_byte's front: acks for the last packet, and a byte received while the
        machine runs stops it (and is dropped)."""
        if self._last_packet:
            if ch == 0x2D:  # '-'
                trace("gdbstub_err_got_nack")
                self._send_raw(self._last_packet)
            elif ch == 0x2B:  # '+'
                trace("gdbstub_io_got_ack")
                self._acked.set()
            else:
                trace("gdbstub_io_got_unexpected", ch=ch)
            if ch in (0x2B, 0x24):
                self._last_packet = b""
            if ch != 0x24:
                return
        if self.machine.state == "running":  # Ctrl-C (INTERRUPT), or any other byte
            self.machine.call_soon(self.machine.pause)
            return
        reader.byte(ch)

    def _send_raw(self, data: bytes) -> None:
        client = self._client
        if client is None:
            return
        with self._send_lock, contextlib.suppress(OSError):
            client.sendall(data)

    def put_packet(self, data: bytes, binary: bool = False) -> None:
        """put_packet / put_packet_binary (no wait for the ack, as in system emulation)."""
        if not binary:
            trace("gdbstub_io_reply", message=data.decode("latin-1"))
        packet = frame(data)
        self._last_packet = packet
        self._send_raw(packet)

    def _on_machine(self, fn: Any) -> Any:
        """Run ``fn`` on the machine's thread and wait for it."""
        fut = self.machine.call_soon(fn)
        return fut.result(timeout=None)

    def _on_packet(self, line: bytes) -> None:
        trace("gdbstub_io_command", command=line.decode("latin-1"))
        try:
            if line.startswith(b"qRcmd,"):  # the monitor goes to the machine itself
                self.handle_packet(line)
            else:
                self._on_machine(lambda: self.handle_packet(line))
        except Exception as e:  # a bug in the stub: gdb gets an error, emu goes on
            print(f"emu: gdbstub: internal error: {type(e).__name__}: {e}", file=sys.stderr,
                  flush=True)
            self.put_packet(b"E22")

    # -- events (machine thread) ----------------------------------------------------------

    def event(self, name: str, _data: dict[str, Any]) -> None:
        if name == "STOP":
            self._stopped()

    def _thread_id(self) -> bytes:
        return b"p01.01" if self.multiprocess else b"01"

    def _stopped(self) -> None:
        """gdb_vm_state_change for a stop: the stop reply of its reason."""
        hit, self.debugger.hit = self.debugger.hit, None
        self.debugger.stepping = False
        if self._client is None or not self.attached:
            return
        tid = self._thread_id()
        if hit is not None and hit.kind == "watch" and hit.watchpoint is not None:
            wp = hit.watchpoint
            kind = {3: b"r", 4: b"a"}.get(wp.kind, b"")
            trace("gdbstub_hit_watchpoint", type=kind.decode(), cpu=1, vaddr=wp.addr)
            self.put_packet(b"T05thread:" + tid + b";" + kind + b"watch:"
                            + f"{wp.addr:016x}".encode() + b";")
            return
        if hit is not None:
            trace("gdbstub_hit_break")
            signal = SIGNAL_TRAP
        elif self.machine.needs_reset:
            trace("gdbstub_hit_shutdown")
            signal = SIGNAL_QUIT
        else:
            trace("gdbstub_hit_paused")
            signal = SIGNAL_INT
        self.put_packet(f"T{signal:02x}thread:".encode() + tid + b";")

    # -- commands (machine thread) --------------------------------------------------------

    def handle_packet(self, line: bytes) -> None:
        """gdb_handle_packet."""
        if not line:
            self.put_packet(b"")
            return
        c = chr(line[0])
        table: dict[str, tuple[Any, str | None]] = {
            "?": (self._target_halt, None), "c": (self._continue, "L0"),
            "C": (self._cont_with_sig, "l0"), "v": (self._v_commands, "s0"),
            "D": (self._detach, "?.l0"), "s": (self._step, "L0"),
            "b": (self._backward, "o0"), "g": (self._read_all_regs, None),
            "G": (self._write_all_regs, "s0"), "m": (self._read_mem, "L,L0"),
            "M": (self._write_mem, "L,L:s0"), "p": (self._get_reg, "L0"),
            "P": (self._set_reg, "L?s0"), "Z": (self._insert_bp, "l?L?L0"),
            "z": (self._remove_bp, "l?L?L0"), "H": (self._set_thread, "o.t0"),
            "T": (self._thread_alive, "t0"), "q": (self._gen_query, "s0"),
            "Q": (self._gen_set, "s0"),
        }
        if c == "!":
            self.put_packet(b"OK")
            return
        if c == "k":
            self._kill()
            return
        entry = table.get(c)
        if entry is None:
            self.put_packet(b"")
            return
        handler, schema = entry
        params = [] if schema is None else parse_params(line[1:], schema)
        if params is None:
            self.put_packet(b"")
            return
        handler(params)

    def _target_halt(self, _params: list[Any]) -> None:
        self.put_packet(b"T05thread:" + self._thread_id() + b";")
        self.debugger.remove_all()  # gdb's initial connect: start clean

    def _resume(self) -> None:
        """gdb_continue: vm_start."""
        trace("gdbstub_op_continue")
        if self.machine.state == "paused" and not self.machine.needs_reset:
            self.machine.resume()
        else:
            self.debugger.stepping = False

    def _set_pc(self, pc: int) -> None:
        self.machine.cpu.pc = pc

    def _continue(self, params: list[Any]) -> None:
        if params:
            self._set_pc(params[0])
        self._resume()

    def _cont_with_sig(self, _params: list[Any]) -> None:
        self._resume()  # the signal means nothing to a system emulator (QEMU ignores it)

    def _step(self, params: list[Any]) -> None:
        if params:
            self._set_pc(params[0])
        trace("gdbstub_op_stepping", cpu_index=0)
        self.debugger.stepping = True
        self._resume()

    def _backward(self, params: list[Any]) -> None:
        """handle_backward without record/replay (stub_can_reverse() false): E22, then
        for anything but ``bs``/``bc`` also the empty reply. (QEMU 7.2 goes on to
        replay_reverse_step/continue for those two and aborts on its assertion.)"""
        self.put_packet(b"E22")
        if not (params and params[0] in b"sc"):
            self.put_packet(b"")

    def _kill(self) -> None:
        # QEMU: error_report("QEMU: Terminated via GDBstub"), then exit(0): no W packet
        print("emu: QEMU: Terminated via GDBstub", file=sys.stderr, flush=True)
        self._killed = True
        self.machine.quit(0, reason="host-qmp-quit")

    def _detach(self, params: list[Any]) -> None:
        if self.multiprocess and not params:
            self.put_packet(b"E22")
            return
        pid = params[0] if self.multiprocess else 1
        if pid == 1:
            self.debugger.remove_all()
            self.attached = False
            self._resume()
        self.put_packet(b"OK")

    def _read_all_regs(self, _params: list[Any]) -> None:
        self.put_packet(self.target.read_all().hex().encode())

    def _write_all_regs(self, params: list[Any]) -> None:
        if not params:
            return
        data: bytes = params[0]
        self.target.write_all(hex_to_bytes(data, len(data) // 2))
        self.put_packet(b"OK")

    def _get_reg(self, params: list[Any]) -> None:
        if not self.has_xml:
            self.put_packet(b"")
            return
        if not params:
            self.put_packet(b"E14")
            return
        value = self.target.read(params[0])
        self.put_packet(b"E14" if not value else value.hex().encode())

    def _set_reg(self, params: list[Any]) -> None:
        if not self.has_xml:
            self.put_packet(b"")
            return
        if len(params) != 2:
            self.put_packet(b"E22")
            return
        data: bytes = params[1]
        self.target.write(params[0], hex_to_bytes(data, len(data) // 2))
        self.put_packet(b"OK")

    def _memory(self, addr: int, size: int, data: bytes | None) -> bytes | None:
        """target_memory_rw_debug: page by page through the CPU's page tables (or
        physical with Qqemu.PhyMemMode:1); RAM and ROM only. None on failure."""
        machine = self.machine
        out = bytearray()
        pos = 0
        if self.phy_memory_mode:
            # QEMU: cpu_physical_memory_read/write, which cannot fail: what is neither RAM
            # nor ROM reads as zeros (emu does not read device registers) and takes no stores
            while pos < size:
                n = min(size - pos, PAGE - (addr & (PAGE - 1)))
                if data is None:
                    out += machine.read_memory(addr, n) or bytes(n)
                else:
                    machine.address_space.write(addr, data[pos:pos + n])
                addr = (addr + n) & MASK64
                pos += n
            if data is not None:
                machine.cpu.uc.ctl_flush_tb()
            return bytes(out)
        while pos < size:
            n = min(size - pos, PAGE - (addr & (PAGE - 1)))
            paddr = machine.cpu.translate(addr)
            if paddr is None:
                return None
            if data is None:
                chunk = machine.read_memory(paddr, n)
                if chunk is None:
                    return None
                out += chunk
            elif not machine.address_space.write(paddr, data[pos:pos + n]):
                return None
            addr = (addr + n) & MASK64
            pos += n
        if data is not None:
            machine.cpu.uc.ctl_flush_tb()  # the code written may have been translated
        return bytes(out)

    def _read_mem(self, params: list[Any]) -> None:
        if len(params) != 2:
            self.put_packet(b"E22")
            return
        addr, size = params
        if size > MAX_PACKET_LENGTH // 2:
            self.put_packet(b"E22")
            return
        data = self._memory(addr, size, None)
        self.put_packet(b"E14" if data is None else data.hex().encode())

    def _write_mem(self, params: list[Any]) -> None:
        if len(params) != 3:
            self.put_packet(b"E22")
            return
        addr, size, text = params
        if size > len(text) // 2:
            self.put_packet(b"E22")
            return
        ok = self._memory(addr, size, hex_to_bytes(text, size))
        self.put_packet(b"E14" if ok is None else b"OK")

    def _insert_bp(self, params: list[Any]) -> None:
        self._breakpoint(params, self.debugger.insert)

    def _remove_bp(self, params: list[Any]) -> None:
        self._breakpoint(params, self.debugger.remove)

    def _breakpoint(self, params: list[Any], op: Any) -> None:
        if len(params) != 3:
            self.put_packet(b"E22")
            return
        res = op(params[0], params[1], params[2])
        self.put_packet(b"OK" if res >= 0 else b"" if res == -1 else b"E22")

    def _cpu_for(self, pid: int, tid: int) -> bool:
        """gdb_get_cpu: whether (pid, tid) names the CPU (0 = any)."""
        return pid in (0, 1) and tid in (0, 1)

    def _set_thread(self, params: list[Any]) -> None:
        if len(params) != 2:
            self.put_packet(b"E22")
            return
        kind, pid, tid = params[1]
        if kind == THREAD_ERROR:
            self.put_packet(b"E22")
        elif kind != ONE_THREAD:
            self.put_packet(b"OK")
        elif not self._cpu_for(pid, tid):
            self.put_packet(b"E22")
        elif params[0] in (ord("c"), ord("g")):
            self.put_packet(b"OK")
        else:
            self.put_packet(b"E22")

    def _thread_alive(self, params: list[Any]) -> None:
        if not params or params[0][0] == THREAD_ERROR:
            self.put_packet(b"E22")
            return
        kind, pid, tid = params[0]
        ok = kind != ONE_THREAD or self._cpu_for(pid, tid)
        self.put_packet(b"OK" if ok else b"E22")

    # -- v packets --------------------------------------------------------------------------

    def _v_commands(self, params: list[Any]) -> None:
        if not params:
            return
        data: bytes = params[0]
        if data.startswith(b"Cont?"):
            self.put_packet(b"vCont;c;C;s;S")
        elif data.startswith(b"Cont"):
            res = self._vcont(data[4:])
            if res == "invalid":
                self.put_packet(b"E22")
            elif res == "unsupported":
                self.put_packet(b"")
        elif data.startswith(b"Attach;"):
            found = _strtoul(data, 7)
            if found is None or found[0] != 1:
                self.put_packet(b"E22")
                return
            self.attached = True
            self.put_packet(b"T05thread:" + self._thread_id() + b";")
        elif data.startswith(b"Kill;"):
            self.put_packet(b"OK")
            self._kill()
        else:
            self.put_packet(b"")

    def _vcont(self, p: bytes) -> str | None:
        """gdb_handle_vcont for the one CPU: its first matching action wins."""
        action: str | None = None
        pos = 0
        while pos < len(p):
            if p[pos] != 0x3B:  # ';'
                return "unsupported"
            pos += 1
            if pos >= len(p):
                return "unsupported"
            cur = chr(p[pos])
            pos += 1
            if cur in "CS":
                found = _strtoul(p, pos)
                if found is None:
                    return "invalid"
                pos = found[1]
                cur = cur.lower()
            elif cur not in "cs":
                return "unsupported"
            if pos >= len(p) or p[pos] == 0x3B:
                applies = True
            elif p[pos] == 0x3A:  # ':'
                (kind, pid, tid), pos = read_thread_id(p, pos + 1)
                if kind == THREAD_ERROR:
                    return "invalid"
                if kind == ONE_THREAD and not self._cpu_for(pid, tid):
                    return "invalid"
                if kind == ALL_THREADS and pid not in (0, 1):
                    return "invalid"
                applies = True
            else:
                return "unsupported"
            if applies and action is None:
                action = cur
        if action == "s":
            trace("gdbstub_op_stepping", cpu_index=0)
            self.debugger.stepping = True
        if action is not None:
            trace("gdbstub_op_continue_cpu", cpu_index=0)
            self._resume()
        return None

    # -- q / Q packets ----------------------------------------------------------------------

    def _gen_query(self, params: list[Any]) -> None:
        if not params:
            return
        data: bytes = params[0]
        if self._sstep(data):
            return
        handlers: list[tuple[bytes, bool, Any]] = [
            (b"C", False, self._query_current_thread),
            (b"sThreadInfo", False, self._query_threads),
            (b"fThreadInfo", False, self._query_first_threads),
            (b"ThreadExtraInfo,", True, self._query_thread_extra),
            (b"Rcmd,", True, self._query_rcmd),
            (b"Supported:", True, self._query_supported),
            (b"Supported", False, self._query_supported),
            (b"Xfer:features:read:", True, self._query_xfer_features),
            (b"Attached:", True, lambda _d: self.put_packet(b"1")),
            (b"Attached", False, lambda _d: self.put_packet(b"1")),
            (b"qemu.Supported", False,
             lambda _d: self.put_packet(b"sstepbits;sstep;PhyMemMode")),
            (b"qemu.PhyMemMode", False,
             lambda _d: self.put_packet(b"1" if self.phy_memory_mode else b"0")),
        ]
        for name, prefix, handler in handlers:
            if (data.startswith(name) if prefix else data == name):
                handler(data[len(name):])
                return
        self.put_packet(b"")

    def _gen_set(self, params: list[Any]) -> None:
        if not params:
            return
        data: bytes = params[0]
        if self._sstep(data):
            return
        if data.startswith(b"qemu.sstep:"):
            self._set_sstep(data[len(b"qemu.sstep:"):])
        elif data.startswith(b"qemu.PhyMemMode:"):
            found = _strtoul(data, len(b"qemu.PhyMemMode:"))
            if found is None:
                self.put_packet(b"")
                return
            self.phy_memory_mode = bool(found[0])
            self.put_packet(b"OK")
        else:
            self.put_packet(b"")

    def _sstep(self, data: bytes) -> bool:
        """gdb_gen_query_set_common_table."""
        if data == b"qemu.sstepbits":
            self.put_packet(b"ENABLE=1,NOIRQ=2,NOTIMER=4")
        elif data == b"qemu.sstep":
            self.put_packet(f"0x{self.debugger.sstep_flags:x}".encode())
        elif data.startswith(b"qemu.sstep="):
            self._set_sstep(data[len(b"qemu.sstep="):])
        else:
            return False
        return True

    def _set_sstep(self, text: bytes) -> None:
        found = _strtoul(text, 0)
        if found is None:
            self.put_packet(b"")
            return
        if found[0] & ~0x7:
            self.put_packet(b"E22")
            return
        self.debugger.sstep_flags = found[0]
        self.put_packet(b"OK")

    def _query_current_thread(self, _rest: bytes) -> None:
        self.put_packet(b"QC" + self._thread_id())

    def _query_first_threads(self, _rest: bytes) -> None:
        self._thread_query_done = not self.attached
        self._query_threads(b"")

    def _query_threads(self, _rest: bytes) -> None:
        if self._thread_query_done:
            self.put_packet(b"l")
            return
        self._thread_query_done = True
        self.put_packet(b"m" + self._thread_id())

    def _query_thread_extra(self, rest: bytes) -> None:
        (kind, pid, tid), _ = read_thread_id(rest, 0)
        if kind == THREAD_ERROR:
            self.put_packet(b"E22")
            return
        if kind == ONE_THREAD and not self._cpu_for(pid, tid):
            return  # QEMU sends nothing for an unknown thread
        text = "CPU#0 [halted ]" if self.machine.halted else "CPU#0 [running]"
        trace("gdbstub_op_extra_info", info=text)
        self.put_packet(text.encode().hex().encode())

    def _query_supported(self, rest: bytes) -> None:
        if b"multiprocess+" in rest:
            self.multiprocess = True
        self.put_packet(f"PacketSize={MAX_PACKET_LENGTH:x};qXfer:features:read+;"
                        "vContSupported+;multiprocess+".encode())

    def _query_xfer_features(self, rest: bytes) -> None:
        """handle_query_xfer_features: ``ANNEX:OFFSET,LENGTH``."""
        params = parse_params(rest, "s:l,l0")
        if params is None:
            self.put_packet(b"")
            return
        if len(params) < 3:
            self.put_packet(b"E22")
            return
        self.has_xml = True
        annex = params[0].partition(b":")[0]
        xml = self.target.feature(annex.decode("latin-1"))
        if xml is None:
            self.put_packet(b"E00")
            return
        raw = xml.encode()
        addr, length = params[1], params[2]
        if addr > len(raw):
            self.put_packet(b"E00")
            return
        length = min(length, (MAX_PACKET_LENGTH - 5) // 2)
        if length < len(raw) - addr:
            reply = b"m" + escape_binary(raw[addr:addr + length])
        else:
            reply = b"l" + escape_binary(raw[addr:])
        trace("gdbstub_io_binaryreply", ofs=0, line=reply[:64].decode("latin-1"))
        self.put_packet(reply, binary=True)

    def _query_rcmd(self, rest: bytes) -> None:
        """handle_query_rcmd: the hex-encoded line to the monitor; its output as O
        packets (gdb_monitor_write), then OK."""
        if len(rest) % 2:
            self.put_packet(b"E01")
            return
        line = hex_to_bytes(rest, len(rest) // 2).decode("latin-1")
        from emu.monitor.hmp import Hmp, LocalHost

        if self._hmp is None:
            self._hmp = Hmp(LocalHost(self.machine))
        output: str = self._hmp.execute(line)
        for text in output.splitlines(keepends=True):
            self.put_packet(b"O" + text.encode().hex().encode())
        self.put_packet(b"OK")

