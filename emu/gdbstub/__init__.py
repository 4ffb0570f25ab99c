"""A GDB remote stub for emu, modelled on QEMU 7.2's gdbstub (docs/devel/gdbstub.md).

:mod:`emu.gdbstub.packets` frames the remote serial protocol, :mod:`emu.gdbstub.target`
describes and reads the CPU's registers, :mod:`emu.gdbstub.debug` hooks breakpoints,
watchpoints and single steps into the CPU, and :mod:`emu.gdbstub.server` serves gdb
(``-gdb DEV``, ``-s``).
"""
