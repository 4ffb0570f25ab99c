"""emu: a full-system machine emulator on the Unicorn CPU engine.

It models QEMU's x86_64 ``pc`` and aarch64 ``virt`` machines closely enough that a guest
image that runs on ``qemu-system-*`` runs on emu with the same command line and prints
the same bytes.
"""

__version__ = "0.1.0"
