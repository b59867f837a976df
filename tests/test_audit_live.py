"""The audit of one finished run (engine.audit_live) and the shipped populations' format (engine.audit_assets), on a
tiny dataset: compact assets read back exactly, are used only for their own recipe and forget set, the quick audit
orders the original above a Retrain, and the deep audit adds forgetting quality and per-example ε."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.cli import main
from tests.scale_env import make_tiny_assets

EPOCHS = 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(dataset, npz, original path, assets root) with a shadow population (6) and a Retrain population of class 1
    (4) built by the CLI and compacted by scripts.build_populations, as the shipped ones are."""
    from engine.executor import open_dataset
    from scripts.build_populations import compact

    folder = tmp_path_factory.mktemp("audit-live")
    npz, original = make_tiny_assets(folder, name="tiny-live", seed=1, epochs=EPOCHS)
    data = open_dataset({"npz": str(npz)})
    root = folder / "assets"
    (root / data.name).mkdir(parents=True)
    for name, kind, forget, count in (("shadow", "shadow", None, 6), ("class-1", "retrain", {"classes": [1]}, 4)):
        extra = ["--forget-classes", "1"] if forget else []
        assert main(["population", "--kind", kind, "--dataset", str(npz), *extra, "--count", str(count),
                     "--epochs", str(EPOCHS), "--device", "cpu", "--out", str(folder / name)]) == 0
        compact(name, folder / name, data, forget, root / data.name, "sha", "test")
    return data, npz, original, root


def test_compact_assets_read_back_and_match_only_their_own(tiny):
    from engine import audit_assets
    from engine.audit_run import population_scores
    from engine.splits import ForgetSpec

    data, _, original, root = tiny
    from engine.checkpoints import read_sidecar

    own = read_sidecar(original)["recipe"]
    shadows = audit_assets.shadows(data, recipe=own, root=root)
    full = population_scores(root.parent / "shadow", data, device=torch.device("cpu"))
    assert shadows.phi.shape == full.phi.shape == (6, len(data.train_labels))
    np.testing.assert_allclose(shadows.phi, full.phi, rtol=1e-6, atol=1e-5)       # float32 on disk
    assert np.array_equal(shadows.trained_on, full.trained_on)
    retrains = audit_assets.retrains(data, ForgetSpec(classes=(1,)), recipe=own, root=root)
    from engine.splits import make_split

    forget = make_split(data, ForgetSpec(classes=(1,))).forget
    assert retrains is not None and not retrains.trained_on[:, forget].any()
    assert np.isfinite(retrains.phi[:, forget]).all() and len(retrains.metrics) == 4
    # another forget set, another recipe, another split: not this population
    assert audit_assets.retrains(data, ForgetSpec(classes=(2,)), recipe=own, root=root) is None
    assert audit_assets.retrains(data, ForgetSpec(classes=(1,)), recipe={**own, "epochs": 3}, root=root) is None
    assert audit_assets.shadows(data, recipe=own, split_seed=1, root=root) is None


def test_quick_audit_orders_the_original_above_a_retrain(tiny, monkeypatch):
    from engine import audit_assets, audit_live
    from engine.checkpoints import load_checkpoint, read_sidecar
    from engine.evaluation import evaluate
    from engine.splits import ForgetSpec, make_split

    data, _, original, root = tiny
    monkeypatch.setattr(audit_assets, "ROOT", root)
    own = read_sidecar(original)["recipe"]
    split = make_split(data, ForgetSpec(classes=(1,)))
    results = {}
    for name, path in (("original", original), ("retrain", root.parent / "class-1" / "member-000.safetensors")):
        model = load_checkpoint(path, device=torch.device("cpu"))[0]
        scores = evaluate(model, data, split, device=torch.device("cpu")).scores()
        results[name] = audit_live.quick_audit(model, data, split, device=torch.device("cpu"), run_scores=scores,
                                               recipe=own)
    figures, arrays = results["original"]
    assert figures["lira"] is not None and figures["population"]["size"] == 4 and figures["noise_floor"] >= 0
    assert arrays["phi"].shape == arrays["lira_statistic"].shape == (len(split.forget),)
    assert arrays["shadow_phi"].shape == arrays["shadow_in"].shape == (6, len(split.forget))
    assert results["original"][0]["offline"]["auc"] > 0.9
    assert results["retrain"][0]["offline"]["auc"] < results["original"][0]["offline"]["auc"]
    assert results["retrain"][0]["avg_gap_to_population"] < results["original"][0]["avg_gap_to_population"]


def test_deep_audit_adds_forgetting_quality(tiny, tmp_path, monkeypatch):
    from engine import audit_assets, audit_live
    from engine.checkpoints import load_checkpoint, read_sidecar
    from engine.evaluation import evaluate
    from engine.methods import make_config
    from engine.splits import ForgetSpec, make_split
    from engine.workflow import RunRequest

    data, npz, original, root = tiny
    monkeypatch.setattr(audit_assets, "ROOT", root)
    own = read_sidecar(original)["recipe"]
    spec = ForgetSpec(classes=(1,))
    split = make_split(data, spec)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model = load_checkpoint(original, device=torch.device("cpu"))[0]
    import shutil

    shutil.copy(original, run_dir / "model.safetensors")
    shutil.copy(original.with_suffix(".json"), run_dir / "model.json")
    scores = evaluate(model, data, split, device=torch.device("cpu")).scores()
    request = RunRequest(method="ft", config=make_config("ft", forget_kind="class", epochs=1), forget=spec, seed=0,
                         dataset=str(npz), original=str(original))
    stages = []
    figures = audit_live.deep_audit(run_dir, request=request, dataset_ref={"npz": str(npz)}, runs_root=tmp_path,
                                    run_scores=scores, device=torch.device("cpu"), runs=3, recipe=own,
                                    on_progress=lambda p: stages.append(p.stage))
    deep = figures["deep"]
    assert deep["runs"] == 3 and deep["seeds"] == [0, 1, 2] and deep["population_size"] == 4
    assert deep["forgetting_quality"] is not None and 0 <= deep["forget_score"] <= 1
    assert "lira" in figures                       # the quick part was computed first (no audit existed)
    stored, arrays = audit_live.read_audit(run_dir)
    assert stored == figures and arrays["runs_phi"].shape == (3, len(split.forget))
    assert arrays["epsilon"].shape == (len(split.forget),) and "audit · unlearning runs" in stages


def test_bench_audit_columns_and_noise_floor(tiny, tmp_path, monkeypatch):
    """`engine bench --audit`: forgetting quality over the seeds against the shipped Retrains, LiRA per seed
    against the shadows, and the Retrain noise floor beside the Avg. Gap."""
    import json

    from engine import audit_assets

    data, npz, original, root = tiny
    monkeypatch.setattr(audit_assets, "ROOT", root)
    out = tmp_path / "bench"
    assert main(["bench", "--dataset", str(npz), "--checkpoint", str(original), "--methods", "ft",
                 "--scenarios", "class:1", "--seeds", "0", "1", "2", "3", "--set", "ft.epochs=1", "--audit",
                 "--device", "cpu", "--out", str(out)]) == 0
    payload = json.loads((tmp_path / "bench.json").read_text())
    [entry] = payload["audit"]
    assert entry["method"] == "ft" and entry["runs"] == 4 and entry["retrains"] == 4 and entry["shadows"] == 6
    assert entry["forgetting_quality"] is not None and 0.0 <= entry["lira_auc"] <= 1.0
    assert entry["forgetting_quality_std"] >= 0.0 and entry["lira_against"] == "retrain population (offline)"
    assert payload["noise_floors"]["class:1"]["retrains"] == 4
    assert all("phi" not in row for row in payload["rows"])          # per-example scores stay in the cells log
    markdown = (tmp_path / "bench.md").read_text()
    assert "(floor " in markdown and "Per-example audit" in markdown


def test_samples_scenario_reads_the_shipped_sets():
    from engine import sample_sets
    from engine.cli_bench import parse_scenario

    sets = sample_sets.load("fashion-mini")
    assert set(sets) == {"one-class-100", "mixed-200"}
    [one, mixed] = parse_scenario("samples:one-class-100,mixed-200", "fashion-mini")
    assert len(one.sample_ids) == 100 and len(mixed.sample_ids) == 200 and one.kind == "samples"
    assert len(sets["one-class-100"]["classes"]) == 1 and len(sets["mixed-200"]["classes"]) == 10
    with pytest.raises(ValueError, match="no sample set"):
        parse_scenario("samples:nope", "fashion-mini")


def test_every_shipped_population_loads():
    """The shipped assets themselves (names with dots included: random-0.1@0) load, match their forget sets and
    give a noise floor; the shadows cover the whole pool."""
    import engine
    from engine import audit_assets
    from engine.splits import ForgetSpec, make_split

    data = engine.load_dataset("fashion-mini")
    recipe = audit_assets.original_recipe("fashion-mini")
    catalogue = audit_assets.catalogue("fashion-mini")
    assert {f"class-{c}" for c in range(10)} | {"shadow", "random-0.1@0", "random-0.1@1"} <= set(catalogue)
    shadows = audit_assets.shadows(data, recipe=recipe)
    assert shadows.phi.shape == (32, len(data.train_labels)) and 0.4 < shadows.trained_on.mean() < 0.45
    for name, meta in catalogue.items():
        if meta["kind"] != "retrain":
            continue
        spec = ForgetSpec.from_dict(meta["forget"])
        population = audit_assets.retrains(data, spec, recipe=recipe)
        forget = make_split(data, spec).forget
        assert population is not None and population.manifest["shipped"] == name
        assert np.isfinite(population.phi[:, forget]).all() and not population.trained_on[:, forget].any()
        assert engine.noise_floor_for("fashion-mini", spec)["retrains"] == 8


def test_a_cancel_stops_a_population_member_mid_training(tiny, tmp_path):
    """Cancel reaches the member being trained (the inline executor hands it the stop check): the build raises
    RunCancelled at once and writes no member."""
    from engine.executor import InlineExecutor
    from engine.population import build_population
    from engine.progress import RunCancelled

    _, npz, _, _ = tiny
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 3          # let the build start the first member, then stop it mid-training

    with pytest.raises(RunCancelled):
        build_population(InlineExecutor(), dataset=str(npz), kind="retrain", count=2, out=tmp_path / "pop",
                         forget={"classes": [1]}, epochs=EPOCHS, device="cpu", should_stop=stop)
    assert not list((tmp_path / "pop").glob("member-*.safetensors"))


def test_deep_audit_builds_a_missing_population_and_keeps_its_scores_only(tiny, tmp_path, monkeypatch):
    from engine import audit_assets, audit_live
    from engine.checkpoints import load_checkpoint, read_sidecar
    from engine.evaluation import evaluate
    from engine.methods import make_config
    from engine.splits import ForgetSpec, make_split
    from engine.workflow import RunRequest
    import shutil

    data, npz, original, root = tiny
    monkeypatch.setattr(audit_assets, "ROOT", root)
    own = read_sidecar(original)["recipe"]
    spec = ForgetSpec(classes=(2,))                       # no population shipped for class 2
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(original, run_dir / "model.safetensors")
    shutil.copy(original.with_suffix(".json"), run_dir / "model.json")
    model = load_checkpoint(original, device=torch.device("cpu"))[0]
    scores = evaluate(model, data, make_split(data, spec), device=torch.device("cpu")).scores()
    request = RunRequest(method="ft", config=make_config("ft", forget_kind="class", epochs=1), forget=spec, seed=0,
                         dataset=str(npz), original=str(original))
    figures = audit_live.deep_audit(run_dir, request=request, dataset_ref={"npz": str(npz)}, runs_root=tmp_path,
                                    run_scores=scores, device=torch.device("cpu"), runs=3, population_size=3,
                                    recipe=own)
    folder = audit_live.population_folder(tmp_path, data.name, spec)
    assert figures["deep"]["population_size"] == 3 and figures["population"]["size"] == 3
    assert (folder / "phi.npz").is_file() and not list(folder.glob("*.safetensors"))   # scores kept, weights not
    again = audit_live.retrain_population(data, spec, runs_root=tmp_path, recipe=own)
    assert again is not None and again.phi.shape[0] == 3                     # read from the cache alone
    assert audit_live.noise_floor_for(data.name, spec, runs_root=tmp_path, original=str(original))["retrains"] == 3
