"""Trace events, enabled with ``-trace PATTERN`` as in QEMU.

Devices call :func:`trace` with a QEMU trace-event name (``fw_cfg_select``,
``serial_write``...) and keyword fields. Nothing is formatted unless an enabled
pattern matches the event, so the cost on the access path is one set lookup.
Output goes to stderr, one line per event: ``name field=value ...``.

:data:`EVENTS` names every event emu emits (a test checks it against the calls), so that
``-trace`` can warn about a pattern that matches none, as QEMU warns about an unknown name
(trace/control.c trace_enable_events: "trace event 'X' does not exist"). A plugin that emits
events of its own names them with :func:`register`.
"""

from __future__ import annotations

import fnmatch
import sys
from typing import TextIO

#: every event emu's devices emit (QEMU's names: hw/*/trace-events)
EVENTS: set[str] = {
    "apic_deliver_irq", "apic_get_irq_delivered", "apic_local_deliver", "apic_mem_readl",
    "apic_mem_writel", "apic_report_irq_delivered", "apic_reset_irq_delivered",
    "cpu_get_apic_base", "cpu_set_apic_base",
    "cmos_ioport_read", "cmos_ioport_write", "rtc_irq",
    "arm_cpu_exception", "cpu_triple_fault", "x86_cpu_exception", "x86_cpu_interrupt",
    "debug_exit_write",
    "gic_acknowledge_irq", "gic_cpu_read", "gic_cpu_write", "gic_disable_irq", "gic_dist_read",
    "gic_dist_write", "gic_enable_irq", "gic_set_irq", "gic_update_bestirq", "gic_update_set_irq",
    "gicv3_cpuif_set_irqs", "gicv3_cpuif_update", "gicv3_dist_badread", "gicv3_dist_badwrite",
    "gicv3_dist_read", "gicv3_dist_set_irq", "gicv3_dist_write", "gicv3_icc_ap_read",
    "gicv3_icc_ap_write", "gicv3_icc_bpr_read", "gicv3_icc_bpr_write", "gicv3_icc_ctlr_read",
    "gicv3_icc_ctlr_write", "gicv3_icc_dir_write", "gicv3_icc_eoir_write",
    "gicv3_icc_generate_sgi", "gicv3_icc_hppir0_read", "gicv3_icc_hppir1_read",
    "gicv3_icc_iar0_read", "gicv3_icc_iar1_read", "gicv3_icc_igrpen_read",
    "gicv3_icc_igrpen_write", "gicv3_icc_pmr_read", "gicv3_icc_pmr_write", "gicv3_icc_rpr_read",
    "gicv3_redist_badread", "gicv3_redist_badwrite", "gicv3_redist_read",
    "gicv3_redist_send_sgi", "gicv3_redist_set_irq", "gicv3_redist_write",
    "gdbstub_err_checksum_incorrect", "gdbstub_err_checksum_invalid", "gdbstub_err_garbage",
    "gdbstub_err_got_nack", "gdbstub_err_invalid_repeat", "gdbstub_err_invalid_rle",
    "gdbstub_err_overrun", "gdbstub_hit_break", "gdbstub_hit_paused", "gdbstub_hit_shutdown",
    "gdbstub_hit_watchpoint", "gdbstub_io_binaryreply", "gdbstub_io_command",
    "gdbstub_io_got_ack", "gdbstub_io_got_unexpected",
    "gdbstub_io_reply", "gdbstub_op_continue", "gdbstub_op_continue_cpu",
    "gdbstub_op_exiting", "gdbstub_op_extra_info", "gdbstub_op_start", "gdbstub_op_stepping",
    "fw_cfg_add_bytes", "fw_cfg_add_file", "fw_cfg_dma", "fw_cfg_read", "fw_cfg_select",
    "ioapic_clear_remote_irr", "ioapic_eoi_broadcast", "ioapic_eoi_delayed_reassert",
    "ioapic_mem_read", "ioapic_mem_write", "ioapic_set_irq", "ioapic_set_remote_irr",
    "pckbd_kbd_read_data", "pckbd_kbd_read_status", "pckbd_kbd_write_command",
    "pckbd_kbd_write_data", "pckbd_outport_write",
    "pcspk_io_read", "pcspk_io_write",
    "pic_interrupt", "pic_ioport_read", "pic_ioport_write", "pic_set_irq", "pic_update_irq",
    "pit_ioport_read", "pit_ioport_write", "pit_irq",
    "pl011_read", "pl011_write",
    "ps2_kbd_reset", "ps2_keyboard_set_translation", "ps2_mouse_reset", "ps2_mouse_send_packet",
    "ps2_put_keycode", "ps2_read_data", "ps2_reset_keyboard", "ps2_set_ledstate",
    "ps2_write_keyboard", "ps2_write_mouse",
    "psci_call",
    "pvpanic_write",
    "serial_read", "serial_write",
    "x86_gsi_interrupt", "x86_pic_interrupt",
}
_patterns: list[str] = []
_enabled: dict[str, bool] = {}
_out: TextIO = sys.stderr
#: True while any pattern is enabled: hot paths test ``trace.ON`` before building a call
ON = False


def enable(pattern: str) -> None:
    """Enable every event whose name matches the glob ``pattern``."""
    global ON
    _patterns.append(pattern)
    _enabled.clear()
    ON = True


def register(*names: str) -> None:
    """Declare events a plugin emits, so that ``-trace`` knows them."""
    EVENTS.update(names)


def unmatched(pattern: str) -> str | None:
    """Why ``pattern`` enables nothing, or None when it matches an event. An exact name is
    QEMU's warning; QEMU says nothing about a wildcard pattern that matches nothing, emu
    does."""
    if any(fnmatch.fnmatchcase(name, pattern) for name in EVENTS):
        return None
    if any(c in pattern for c in "*?["):
        return f"no trace event matches '{pattern}'"
    return f"trace event '{pattern}' does not exist"


def set_output(stream: TextIO) -> None:
    """Send trace lines to ``stream`` instead of stderr."""
    global _out
    _out = stream


def reset() -> None:
    """Disable all events (used by tests)."""
    global ON
    _patterns.clear()
    _enabled.clear()
    ON = False


def enabled(name: str) -> bool:
    """Whether the event ``name`` is enabled; cached per name."""
    hit = _enabled.get(name)
    if hit is None:
        hit = any(fnmatch.fnmatchcase(name, p) for p in _patterns)
        _enabled[name] = hit
    return hit


def trace(event: str, /, **fields: object) -> None:
    """Emit ``event`` with ``fields`` if it is enabled."""
    if not _patterns or not enabled(event):
        return
    parts = [event]
    for key, value in fields.items():
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"0x{value:x}"
        parts.append(f"{key}={value}")
    print(" ".join(parts), file=_out, flush=True)
