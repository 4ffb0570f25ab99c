"""The committed guest images are exactly what their sources build to."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_committed_images_are_current() -> None:
    result = subprocess.run([sys.executable, "guest_images/build.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match a fresh build" in result.stdout
