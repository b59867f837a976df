"""The static fallback: `python -m scripts.export_static` writes self-contained HTML reports + index.html
(no external script, stylesheet or image URL: viewable from disk with no server and no network)."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXTERNAL = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


@pytest.mark.skipif(not (REPO / "app/tour/run/run.json").is_file(), reason="needs the tour's shipped run")
def test_export_writes_self_contained_reports_and_an_index(tmp_path, monkeypatch):
    from scripts import export_static

    monkeypatch.setenv("UNLEARNING_LAB_RUNS", str(tmp_path / "runs"))
    files = export_static.main(["--out", str(tmp_path / "site"), "--no-compute"])
    index, *reports = files
    assert index.name == "index.html" and len(reports) == 1
    page = index.read_text()
    assert f'href="{reports[0].name}"' in page and "WSS-CL" in page and "Trouser" in page
    for path in files:
        text = path.read_text()
        assert not EXTERNAL.findall(text), (path.name, EXTERNAL.findall(text)[:3])
    report = reports[0].read_text()
    assert report.count("Plotly.newPlot") >= 8                    # gauges, bars, confusion, UMAPs, ROC: all inline
    assert "plotly.js v" in report and len(report) > 3_000_000    # the library itself, embedded once
    assert report.count("plotly.js v") == 1
