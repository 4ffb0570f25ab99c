"""The QMP monitor: server (server.py) and commands (commands.py)."""
