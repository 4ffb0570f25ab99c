"""The human monitor: QEMU's HMP command interpreter (hmp.py), its readline (readline.py),
the terminal multiplexer that shares stdio between a serial port and the monitor (mux.py),
and ``human-monitor-command`` over QMP (qmp.py)."""
