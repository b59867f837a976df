"""scripts/gpu_check.py end to end in its tiny CPU mode: every step runs and the JSON and the doc are written."""
from __future__ import annotations

import json

from scripts.gpu_check import main


def test_gpu_check_tiny(tmp_path):
    out, doc = tmp_path / "gpu.json", tmp_path / "gpu.md"
    assert main(["--tiny", "--work", str(tmp_path / "work"), "--out", str(out), "--doc", str(doc)]) == 0
    figures = json.loads(out.read_text())
    assert figures["tiny"] and figures["population"]["members"] == 4 and figures["population"]["failures"] == 0
    assert [(r["scenario"], r["method"]) for r in figures["rows"]] == [
        (s, m) for s in ("class:3", "random:0.1") for m in ("retrain", "wsscl", "salun")]
    assert 0 <= figures["resnet18"]["test_acc"] <= 100 and "train_resnet18" in figures["seconds"]
    text = doc.read_text()
    assert "TINY mode" in text and "| class:3 | WSS-CL (ours) |" in text
