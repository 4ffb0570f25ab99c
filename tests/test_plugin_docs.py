"""Every hook of the plugin API is documented, in its docstring and in docs/plugins.md."""

from __future__ import annotations

import inspect

from conftest import ROOT

from emu.plugins import hookspecs


def test_every_hook_is_documented() -> None:
    hooks = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
             if name.startswith("emu_")]
    assert len(hooks) >= 5
    docs = (ROOT / "docs" / "plugins.md").read_text()
    for name in hooks:
        assert f"`{name}(" in docs, f"{name} is missing from docs/plugins.md"
        assert len(inspect.getdoc(getattr(hookspecs, name)) or "") > 80, name
