"""Errors that reach people.

A :class:`ConfigError` is a mistake in what the user asked for (command line, kernel file,
QMP arguments). Its message is one line and is printed as ``emu: <message>`` with exit
status 1, in QEMU's style; it never becomes a traceback.
"""


class ConfigError(Exception):
    """A user error: bad option, bad file, impossible machine configuration."""


class GuestFatal(Exception):
    """The guest put the CPU into a state emu cannot continue from (triple fault,
    exception with nowhere to go, fetch from unmapped memory)."""

    def __init__(self, reason: str, pc: int) -> None:
        super().__init__(f"{reason} at pc=0x{pc:016x}")
        self.reason = reason
        self.pc = pc
