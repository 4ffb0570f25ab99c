"""``dumpdtb`` (QEMU 7.2 qapi/machine.json; softmmu/device_tree.c qmp_dumpdtb): save the
machine's flattened device tree.

On ``virt`` the file is the blob the guest reads as the fw_cfg file ``etc/fdt``
(emu/boards/virt_fdt.py). As QEMU's ``g_file_set_contents`` it is written to a temporary
file beside the target and renamed over it, and errors carry GLib's words. ``pc`` has no
device tree: ``This machine doesn't have a FDT``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import string
from typing import TYPE_CHECKING, Any

from emu.qmp.commands import QmpError
from emu.qmp.qapi import Member, args, command

if TYPE_CHECKING:
    from emu.qmp.server import QmpServer

_TMP_CHARS = string.ascii_letters + string.digits


def set_contents(filename: str, data: bytes) -> None:
    """GLib's g_file_set_contents: a ``FILENAME.XXXXXX`` temporary file, renamed over
    ``filename``; raises OSError-derived text in GLib's words as ValueError."""
    tmp = f"{filename}.{''.join(secrets.choice(_TMP_CHARS) for _ in range(6))}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise ValueError(f"Failed to create file “{tmp}”: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ValueError(f"Failed to write file “{tmp}”: {e.strerror}") from None
    try:
        os.rename(tmp, filename)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ValueError(f"Failed to rename file “{tmp}” to “{filename}”: g_rename() "
                         f"failed: {e.strerror}") from None


@command("dumpdtb", args("dumpdtb", Member("filename", "str")))
def dumpdtb(server: QmpServer, a: dict[str, Any]) -> None:
    fdt = getattr(server.machine.board, "fdt", None)
    if fdt is None:
        raise QmpError("This machine doesn't have a FDT")
    filename = a["filename"]
    try:
        set_contents(filename, bytes(fdt))
    except ValueError as e:
        raise QmpError(f"Error saving FDT to file {filename}: {e}") from None


COMMANDS = [dumpdtb]
