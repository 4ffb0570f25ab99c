"""emu's own firmware blobs, built from ``firmware/`` (sources and ``firmware/build.py``).

``pc.bin`` is a 64 KiB ROM for the top of the pc's 32-bit address space; ``virt.bin`` is
flash contents for address 0 of the virt machine. Both load the ``-kernel`` through fw_cfg
DMA (firmware/README.md). They ship inside the package, so a checkout and an installed wheel
find them the same way.
"""

from __future__ import annotations

from importlib import resources


def default_firmware(machine: str) -> bytes:
    """The bytes of the firmware emu runs on ``machine`` ("pc" or "virt") without -bios."""
    return resources.files(__name__).joinpath(f"{machine}.bin").read_bytes()
