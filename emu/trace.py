"""Trace events, enabled with ``-trace PATTERN`` as in QEMU.

Devices call :func:`trace` with a QEMU trace-event name (``fw_cfg_select``,
``serial_write``...) and keyword fields. Nothing is formatted unless an enabled
pattern matches the event, so the cost on the access path is one set lookup.
Output goes to stderr, one line per event: ``name field=value ...``.
"""

from __future__ import annotations

import fnmatch
import sys
from typing import TextIO

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
