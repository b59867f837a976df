"""The Docker image's steps, followed without Docker: fresh checkout, fresh venv, entrypoint, health, browser.

Slow (a fresh virtual environment: a few minutes); it is the proof that the image's logic works.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_fresh_install_starts_and_renders(tmp_path):
    artifacts = ROOT / "artifacts"
    done = subprocess.run(["bash", str(ROOT / "scripts/smoke_fresh_install.sh"), str(artifacts)],
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "page rendered" in done.stdout
    assert (artifacts / "smoke-fresh-install.png").stat().st_size > 10_000
