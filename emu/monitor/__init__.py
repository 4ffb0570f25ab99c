"""The human monitor: QEMU's HMP command interpreter (hmp.py) with its expressions
(expr.py), ``info mtree`` (mtree.py) and ``x/i`` disassembly (disas.py); its line editor
(readline.py); the terminal multiplexer that shares stdio between a serial port and the
monitor (mux.py); and ``human-monitor-command`` over QMP (qmp.py)."""
