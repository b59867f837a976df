"""The Docker image's logic agrees with the README's Space header and the repository (Docker cannot run here)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRYPOINT = (ROOT / "docker/entrypoint.sh").read_text()


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    block = text.split("---\n", 2)[1]
    return dict(line.split(":", 1) for line in block.strip().splitlines() if ":" in line)


def test_space_header_matches_the_image():
    header = {key.strip(): value.strip().strip('"') for key, value in front_matter().items()}
    assert header["sdk"] == "docker"
    port = header["app_port"]
    assert f"EXPOSE {port}" in DOCKERFILE
    assert f"localhost:{port}/_stcore/health" in DOCKERFILE
    assert f"--server.port={port}" in ENTRYPOINT and "--server.address=0.0.0.0" in ENTRYPOINT
    # cross-origin protection on, exception details off (tests/test_cross_origin.py runs the script itself)
    for flag in ("--server.enableXsrfProtection=true", "--server.enableCORS=true", "--client.showErrorDetails=none"):
        assert flag in ENTRYPOINT, flag
    assert "enableXsrfProtection=false" not in ENTRYPOINT and "enableCORS=false" not in ENTRYPOINT
    for key in ("title", "emoji", "short_description"):
        assert header.get(key), key
    assert len(header["short_description"]) <= 60


def test_image_runs_as_uid_1000_on_python_311():
    assert re.search(r"^FROM python:3\.11-slim", DOCKERFILE, re.M)
    assert "--uid 1000" in DOCKERFILE and re.search(r"^USER user$", DOCKERFILE, re.M)
    assert "dataset-fashion-mnist" in DOCKERFILE


def test_every_copied_path_exists_and_the_app_needs_nothing_else():
    copied = re.findall(r"^COPY (?:--chown=\S+ )?(\S+) ", DOCKERFILE, re.M)
    for path in copied:
        assert (ROOT / path).exists(), f"Dockerfile copies {path}, which is not in the repository"
    for needed in ("engine", "app", "assets", "requirements.txt", "docker"):
        assert needed in copied, f"the image lacks {needed}"
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]', DOCKERFILE, re.M).group(1)
    assert (ROOT / entry).is_file() and (ROOT / entry).stat().st_mode & 0o111
    app_file = re.search(r"streamlit run (\S+)", ENTRYPOINT).group(1)
    assert (ROOT / app_file).is_file()


def test_tracked_assets_are_what_the_image_ships():
    tracked = subprocess.run(["git", "ls-files", "assets"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert "assets/fashion-mini.npz" in tracked
    assert "assets/checkpoints/fashion-mini/original.safetensors" in tracked
    ignored = subprocess.run(["git", "check-ignore", "assets/fashion-mini.npz"], cwd=ROOT, capture_output=True)
    assert ignored.returncode == 1  # not ignored: it ships


def test_entrypoint_uses_data_when_mounted():
    assert "/data/runs" in ENTRYPOINT and "UNLEARNING_LAB_RUNS" in ENTRYPOINT
