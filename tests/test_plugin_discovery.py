"""Plugin discovery (emu/plugins/manager.py ``entry_points``): the entry points emu reads
straight from the dist-info directories on sys.path are the ones importlib.metadata finds,
and a plugin distribution appears when it is installed and is gone when it is removed."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from emu.plugins.manager import entry_points

PROBE = ("import json; from emu.plugins.manager import PluginManager, entry_points; "
         "import importlib.metadata as md; "
         "print(json.dumps([PluginManager().origins, "
         "[[e.name, e.value, e.dist_name, e.dist_version] for e in entry_points('emu')], "
         "[[e.name, e.value, e.dist.name, e.dist.version] "
         "for e in md.entry_points(group='emu')]]))")


def _install(site: Path, dist: str, version: str, module: str, body: str = "") -> None:
    """What pip leaves in ``site`` for a distribution with one ``emu`` entry point."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
                                   "Summary: a test plugin\n\nName: not a header\n")
    (info / "entry_points.txt").write_text(f"# comment\n[console_scripts]\nx = y:z\n\n"
                                           f"[emu]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(body or '"""A plugin with no hooks."""\n')


def _probe(*sites: Path) -> tuple[dict[str, str], list[list[str]], list[list[str]]]:
    path = os.pathsep.join([str(ROOT), *map(str, sites)])
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=path), timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    origins, ours, theirs = json.loads(out.stdout)
    return origins, ours, theirs


@pytest.mark.parametrize("group", ["emu", "console_scripts", "pytest11",
                                   "distutils.commands"])
def test_entry_points_are_importlib_metadatas(group: str) -> None:
    ours = [(e.name, e.value, e.dist_name, e.dist_version) for e in entry_points(group)]
    theirs = [(e.name, e.value, e.dist.name, e.dist.version)
              for e in importlib.metadata.entry_points(group=group)]
    assert ours == theirs


def test_installed_plugin_is_found_and_removed_one_is_gone(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site, "emu-testplug", "1.2", "emu_testplug")
    origins, ours, theirs = _probe(site)
    assert origins["emu_testplug"] == "plugin emu_testplug from emu-testplug 1.2"
    assert ours == theirs
    for path in sorted(site.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    origins, ours, theirs = _probe(site)
    assert "emu_testplug" not in origins
    assert ours == theirs


def test_first_distribution_of_a_name_on_the_path_wins(tmp_path: Path) -> None:
    """Two copies of one distribution: the earlier path entry's counts, for emu as for
    importlib.metadata (whose _unique keeps the first of each normalized name)."""
    _install(tmp_path / "a", "emu-testplug", "2.0", "emu_testplug_a")
    _install(tmp_path / "b", "emu.TestPlug", "1.0", "emu_testplug_b")
    origins, ours, theirs = _probe(tmp_path / "a", tmp_path / "b")
    assert origins["emu_testplug_a"] == "plugin emu_testplug_a from emu-testplug 2.0"
    assert "emu_testplug_b" not in origins
    assert ours == theirs
