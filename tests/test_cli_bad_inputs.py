"""Every bad command-line input listed in docs/hardening.md: exit code 2, one line ``error: ...``, no traceback.

The table in the doc is the list; this test parses it and runs each row through `engine.cli.main` (one row also
as a real ``python -m engine`` subprocess), so the doc cannot drift from what the CLI does."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from engine.cli import main
from lab_env import ORIGINAL, REPO, sha256

DOC = REPO / "docs/hardening.md"
HEADING = "## Bad command-line input"


def table_rows() -> list[tuple[str, str, str]]:
    """(what, command, expected) for each row of the doc's bad-input table."""
    text = DOC.read_text()
    block = text[text.index(HEADING):]
    rows = []
    for line in block.splitlines()[1:]:
        if line.startswith("## "):
            break
        if not line.startswith("| ") or line.startswith("| what") or line.startswith("|---"):
            continue
        what, command, expected = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        rows.append((what, re.search(r"`([^`]+)`", command).group(1), expected.strip("`")))
    return rows


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """The files the table's ``{name}`` placeholders stand for."""
    root = tmp_path_factory.mktemp("bad-inputs")
    folder = root / "dir"
    (folder / "table.json").mkdir(parents=True)
    (root / "existing.json").write_text("{}")
    paths = {"dir": folder, "file": root / "existing.json", "missing": root / "nope" / "out.json",
             "original": ORIGINAL}
    ids = {"nested": "[[1, 2]]", "null": "[null]", "1e30": "[1e30]", "fractions": "[1.5, 2.7]", "bool": "[1, true]",
           "nan": "[NaN]", "negative": "[-1]", "huge": "[99999999]", "empty": "[]", "text": "1 2 x"}
    for name, content in ids.items():
        paths[f"ids-{name}"] = root / f"ids-{name}.txt"
        paths[f"ids-{name}"].write_text(content)
    for suffix in (".safetensors", ".json"):
        shutil.copy(ORIGINAL.with_suffix(suffix), root / f"ckpt{suffix}")
    paths["ckpt"], paths["ckpt-sidecar"] = root / "ckpt", root / "ckpt.json"
    spec = engine.read_sidecar(ORIGINAL)["model"]
    for name, (channels, classes) in {"model-100": (1, 100), "model-rgb": (3, 10)}.items():
        model_spec = engine.ModelSpec("small-cnn", channels, classes, tuple(spec["mean"]) * channels,
                                      tuple(spec["std"]) * channels)
        paths[name] = engine.save_checkpoint(root / name, engine.build_model(model_spec), {"kind": "test"})
    shutil.copy(ORIGINAL, root / "model-vgg.safetensors")
    record = engine.read_sidecar(ORIGINAL)
    record["model"]["architecture"] = "vgg"
    (root / "model-vgg.json").write_text(json.dumps(record))
    paths["model-vgg"] = root / "model-vgg.safetensors"
    row = {"scenario": "class:1", "method": "ga", "forget": {"classes": [1]}, "seed": 0, "UA": 1.0, "RA": 1.0,
           "TA": 1.0, "MIA": 1.0, "avg_gap": 1.0, "seconds": 1.0}
    benches = {"norows": {"device": "cpu", "command": "python -m engine bench", "rows": []}, "notjson": None,
               "merged": {"device": "cpu", "commands": ["a", "b"], "rows": [row]},
               "good": {"device": "cpu", "command": "python -m engine bench", "rows": [row]}}
    for name, payload in benches.items():
        paths[f"bench-{name}"] = root / f"bench-{name}.json"
        paths[f"bench-{name}"].write_text("not json {" if payload is None else json.dumps(payload))
    return paths


def argv_of(command: str, fixtures: dict) -> list[str]:
    return [re.sub(r"\{([a-z0-9-]+)\}", lambda m: str(fixtures[m.group(1)]), token) for token in shlex.split(command)]


def error_line(stderr: str) -> list[str]:
    """The lines a terminal shows (a progress bar redraws its line with \\r and clears it when it closes)."""
    return [line.split("\r")[-1] for line in stderr.split("\n") if line.split("\r")[-1].strip()]


def test_every_bad_input_in_the_table_is_one_error_line_with_exit_code_2(fixtures, capsys):
    rows = table_rows()
    assert len(rows) >= 45
    shipped = {path: sha256(path) for path in ORIGINAL.parent.iterdir()}
    failures = []
    for what, command, expected in rows:
        try:
            code = main(argv_of(command, fixtures))
        except BaseException as error:          # a traceback (or argparse's SystemExit) is a failure of this row
            code = f"{type(error).__name__}: {error}"
        lines = error_line(capsys.readouterr().err)
        if code != 2 or len(lines) != 1 or not lines[0].startswith("error: ") or expected not in lines[0]:
            failures.append(f"{what}: `{command}` → exit {code}, stderr {lines}")
    assert not failures, "\n".join(failures)
    assert not list(fixtures["dir"].glob("*.safetensors"))      # outputs refused before any training ran
    assert {path: sha256(path) for path in ORIGINAL.parent.iterdir()} == shipped   # assets/ untouched


def test_a_real_subprocess_prints_one_line_and_exits_2(fixtures):
    done = subprocess.run([sys.executable, "-m", "engine", *argv_of("train --out {dir}/m --epochs 1000000", fixtures)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: --epochs: 1000000 is out of range (allowed: 1 to 1000)"], done.stderr


def test_force_replaces_an_ordinary_file_and_strict_ids_are_accepted(fixtures, tmp_path, capsys):
    out = tmp_path / "figures.json"
    out.write_text("{}")
    (tmp_path / "ids.json").write_text("[3, 5, 8]")
    (tmp_path / "ids.txt").write_text("3, 5\n8")
    dataset = engine.load_dataset("fashion-mini")
    train = engine.training_indices(dataset)
    for name in ("ids.json", "ids.txt"):
        (tmp_path / name).write_text((tmp_path / name).read_text().replace("3", str(train[0])).replace(
            "5", str(train[1])).replace("8", str(train[2])))
        assert main(["evaluate", "--checkpoint", str(ORIGINAL), "--forget-ids", str(tmp_path / name),
                     "--json", str(out), "--force", "--device", "cpu"]) == 0, capsys.readouterr().err
        assert json.loads(out.read_text())["forget"]["sample_ids"] == sorted(int(i) for i in train[:3])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_an_unwritable_folder_is_refused_up_front(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main(["evaluate", "--checkpoint", str(ORIGINAL), "--forget-classes", "1",
                     "--json", str(locked / "out.json")]) == 2
        assert "is not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o755)


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only the user's errors become one line; an unforeseen error (here a KeyError) still raises."""
    from engine import cli_train

    def buggy(args):
        return {}["missing"]

    monkeypatch.setattr(cli_train, "run_evaluate", buggy)
    with pytest.raises(KeyError):
        main(["evaluate", "--checkpoint", str(ORIGINAL), "--forget-classes", "1"])


def test_which_value_errors_count_as_the_users():
    from engine.cli import is_user_error

    with pytest.raises(ValueError) as ours:
        engine.ForgetSpec()                       # the engine's own validation
    with pytest.raises(ValueError) as numpy_error:
        np.zeros(3).reshape(2)                    # raised inside numpy: a bug in whoever called it
    assert is_user_error(ours.value) and not is_user_error(numpy_error.value)
    assert is_user_error(engine.RunDiverged("loss became nan")) and is_user_error(FileExistsError("x"))
    assert not is_user_error(KeyError("x")) and not is_user_error(TypeError("x"))
