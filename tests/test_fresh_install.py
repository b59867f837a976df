"""The Docker image's steps, followed without Docker: fresh checkout, fresh venv, entrypoint, health, browser.

In CI the venv pytest runs in was just built by .ci/run from requirements.txt on a fresh clone, so it is handed
to the script (SMOKE_VENV) instead of installing the same 5.5 GB again; run the script alone for a full install.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_fresh_install_starts_and_renders(tmp_path):
    artifacts = ROOT / "artifacts"
    env = {**os.environ, "SMOKE_VENV": sys.prefix} if sys.prefix != sys.base_prefix else dict(os.environ)
    done = subprocess.run(["bash", str(ROOT / "scripts/smoke_fresh_install.sh"), str(artifacts)],
                          capture_output=True, text=True, timeout=1500, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "page rendered" in done.stdout
    assert (artifacts / "smoke-fresh-install.png").stat().st_size > 10_000
