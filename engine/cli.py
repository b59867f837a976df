"""Command line: ``python -m engine {train,evaluate,unlearn,bench}`` — the one place commands are registered.

    python -m engine train --dataset fashion-mini --out runs/original           # the original model
    python -m engine train --dataset fashion-mini --forget-classes 3 --out runs/retrain-3   # Retrain
    python -m engine evaluate --checkpoint assets/checkpoints/fashion-mini/original.safetensors \
        --forget-classes 3 --json out.json

A command is an ``(add_arguments, run)`` pair in `commands()`; train/evaluate live in `engine.cli_train`,
unlearn (and bench, for now) in `engine.cli_unlearn`. This module also holds what they share: the common
arguments (their types, which refuse a bad value while parsing, are in `engine.cli_types`), the output check
that runs before any work, and `main`.

Every bad input ends as one line ``error: ...`` on stderr naming the flag and the value, exit code 2. Outputs
are checked before anything is loaded or trained: an existing file is replaced only with ``--force``, nothing
under the repository's ``assets/`` is ever replaced (a new checkpoint may be written there), a checkpoint's
sidecar is never replaced by ``--json``, ``--json`` needs an existing writable folder, and a folder that
``train --out`` / ``bench --out`` would create needs a writable ancestor.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from engine.cli_types import device, folder, fraction, integer, sample_ids, seed_number

Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def commands() -> dict[str, Command]:
    """Every sub-command, name → (add_arguments, run). A new command is one line here."""
    # they import this module's helpers: late
    from engine import cli_audit, cli_bench, cli_scale, cli_train, cli_unlearn

    return {
        "train": (cli_train.train_arguments, cli_train.run_train),
        "evaluate": (cli_train.evaluate_arguments, cli_train.run_evaluate),
        "unlearn": (cli_unlearn.unlearn_arguments, cli_unlearn.run_unlearn),
        "bench": (cli_bench.bench_arguments, cli_bench.run_bench),
        "population": (cli_scale.population_arguments, cli_scale.run_population),
        "tune": (cli_scale.tune_arguments, cli_scale.run_tune),
        "audit": (cli_audit.audit_arguments, cli_audit.run_audit),
    }


class UsageError(Exception):
    """A value on the command line that cannot be used; `main` prints it as one ``error:`` line, exit 2."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad value as one line (no usage block) and lets `main` choose the exit."""

    def error(self, message: str):
        raise UsageError(message.removeprefix("argument "))


# ------------------------------------------------------------------------------------ shared arguments
def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.data import DATASET_NAMES

    parser.add_argument("--dataset", default="fashion-mini", help=f"one of {', '.join(DATASET_NAMES)}")
    parser.add_argument("--data-root", type=folder, default=None,
                        help="folder of the dataset files (default $UNLEARNING_LAB_DATA or ./data)")
    parser.add_argument("--download", action="store_true", help="let torchvision download missing files")
    parser.add_argument("--split-seed", type=seed_number, default=0, help="seeds the validation hold-out")
    parser.add_argument("--device", type=device, default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")


def add_forget_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--forget-classes", type=integer(0, 9999), nargs="+", help="forget these whole classes")
    group.add_argument("--forget-fraction", type=fraction, help="forget a random fraction of the training set, in (0, 1)")
    group.add_argument("--forget-ids", type=sample_ids, metavar="FILE",
                       help="file of training-pool sample ids (whitespace/comma separated, or a JSON list)")
    parser.add_argument("--forget-seed", type=seed_number, default=0, help="seeds the random fraction")


def add_output(parser: argparse.ArgumentParser, flag: str, kind: str, **kwargs) -> None:
    """An output path, checked by `check_outputs` before the command runs. ``kind``: "file" (written whole),
    "folder" (runs are created under it), "checkpoint" (OUT.safetensors + OUT.json), "prefix" (OUT.md + OUT.json).
    The first output of a command also adds ``--force``."""
    parser.add_argument(flag, type=Path, **kwargs)
    outputs = parser.get_default("outputs")
    if outputs is None:
        parser.add_argument("--force", action="store_true", help="replace existing output files (never under assets/)")
        outputs = ()
    parser.set_defaults(outputs=(*outputs, (flag, kind)))


def forget_spec_from(args: argparse.Namespace):
    from engine.splits import ForgetSpec

    if args.forget_classes:
        return ForgetSpec(classes=tuple(args.forget_classes))
    if args.forget_fraction is not None:
        return ForgetSpec(fraction=args.forget_fraction, seed=args.forget_seed)
    if args.forget_ids is not None:
        ids = args.forget_ids if isinstance(args.forget_ids, tuple) else sample_ids(str(args.forget_ids))
        return ForgetSpec(sample_ids=ids)
    return None


def split_from(args: argparse.Namespace, dataset, spec):
    """`make_split` for the command line's forget spec; a spec that does not fit the dataset names its flag."""
    from engine.splits import make_split

    try:
        return make_split(dataset, spec, args.split_seed)
    except ValueError as error:
        flag, value = (("--forget-classes", " ".join(map(str, args.forget_classes))) if args.forget_classes else
                       ("--forget-fraction", args.forget_fraction) if args.forget_fraction is not None else
                       ("--forget-ids", f"({len(spec.sample_ids)} ids)"))
        raise UsageError(f"{flag} {value}: {error}") from None


def load_data(args: argparse.Namespace):
    from engine.data import load_dataset

    try:
        return load_dataset(args.dataset, root=args.data_root, download=args.download)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(f"--dataset {args.dataset}: {error}") from None


def load_fitting(flag: str, path: Path | None, dataset, device):
    """A checkpoint given on the command line, refused unless it fits ``dataset`` (image channels, classes)."""
    from engine.checkpoints import CheckpointError, load_checkpoint_for

    try:
        return load_checkpoint_for(path, dataset, device=device)
    except CheckpointError as error:
        raise CheckpointError(f"{flag} {path}: {error}") from None


def _targets(value: Path, kind: str) -> list[Path]:
    if kind == "checkpoint":   # the engine's naming: OUT.safetensors + OUT.json
        return [value.with_suffix(".safetensors"), value.with_suffix(".json")]
    if kind == "prefix":
        return [value.parent / (value.name + ".md"), value.parent / (value.name + ".json")]
    return [value]


def _inside(path: Path, folder_: Path) -> bool:
    try:
        path.resolve().relative_to(folder_.resolve())
        return True
    except ValueError:
        return False


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse an output that cannot or must not be written, before any work starts (see the module docstring)."""
    seen: dict[Path, str] = {}
    for flag, kind in getattr(args, "outputs", ()):
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is None:
            continue
        where = f"{flag} {value}"
        for path in _targets(value, kind):
            resolved = path.resolve()
            if resolved in seen:
                raise UsageError(f"{where}: {path} is also written by {seen[resolved]}")
            seen[resolved] = flag + (" (the checkpoint's sidecar)" if kind == "checkpoint" and path.suffix == ".json"
                                     else "")
            if _inside(path, ASSETS) and (kind != "checkpoint" or path.exists()):
                raise UsageError(f"{where}: never written under {ASSETS.name}/ (the shipped models and data)"
                                 + (", not even with --force" if path.exists() else ""))
            if kind == "folder":
                if path.exists() and not path.is_dir():
                    raise UsageError(f"{where}: is a file, not a folder")
                if path.is_dir():
                    if not os.access(path, os.W_OK | os.X_OK):
                        raise UsageError(f"{where}: folder is not writable")
                    continue
            elif path.is_dir():
                raise UsageError(f"{where}: {path} is a folder, not a file")
            elif kind == "file" and path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
                raise UsageError(f"{where}: {path} is the sidecar of {path.with_suffix('.safetensors').name}; "
                                 "choose another path")
            elif path.exists() and not args.force:
                raise UsageError(f"{where}: {path} exists; refusing to overwrite it (pass --force to replace it)")
            parent = path.parent
            if kind in ("prefix", "checkpoint"):   # these make their folder (documented: --out runs/original);
                # its nearest existing ancestor must be a writable folder
                while not parent.exists() and parent != parent.parent:
                    parent = parent.parent
            if not parent.exists():
                raise UsageError(f"{where}: folder {parent} does not exist")
            if not parent.is_dir():
                raise UsageError(f"{where}: {parent} is not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise UsageError(f"{where}: folder {parent} is not writable")


# ------------------------------------------------------------------------------------ output and progress
def write_json(path: Path | None, payload: dict) -> None:
    """Print the figures, or write them to ``path`` (checked beforehand by `check_outputs`). If writing fails
    at the end anyway (disk full), the figures still go to stdout so the run's result is not lost."""
    from engine.checkpoints import write_json_atomic

    text = json.dumps(payload, indent=2, default=lambda v: v.tolist() if isinstance(v, np.ndarray) else str(v))
    if path is None:
        print(text)
        return
    try:
        write_json_atomic(path, json.loads(text), overwrite=True)
    except OSError:
        print(text)
        raise
    print(f"wrote {path}")


class TqdmProgress:
    """Progress callback that draws one tqdm bar per stage on stderr."""

    def __init__(self):
        self.bar = None
        self.stage = None

    def __call__(self, progress) -> None:
        from tqdm import tqdm

        if progress.stage != self.stage:
            self.close()
            self.stage = progress.stage
            self.bar = tqdm(total=progress.total, desc=progress.stage, file=sys.stderr, leave=False)
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in progress.metrics.items()}, refresh=False)
        self.bar.update(progress.step - self.bar.n)  # update() honours tqdm's mininterval; refresh() would not

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> "TqdmProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()   # also when the run fails, so the error line is not glued to a half-drawn bar


# ------------------------------------------------------------------------------------ main
_ENGINE = Path(__file__).resolve().parent


def is_user_error(error: BaseException) -> bool:
    """Which exceptions are the user's input rather than a bug (a bug keeps its traceback).

    User errors: a bad command-line value (`UsageError`), a checkpoint that cannot be used (`CheckpointError`),
    a run that diverged with the chosen hyperparameters (`RunDiverged`), the file system refusing a path
    (`OSError`: missing, exists, permission, disk full), and a `ValueError` raised by the engine's own
    validation (config bounds, forget specs, scenarios). A `ValueError` raised inside torch, numpy or
    scikit-learn was not foreseen by any check, so it is treated as a bug."""
    from engine.checkpoints import CheckpointError
    from engine.progress import RunDiverged

    if isinstance(error, (UsageError, CheckpointError, RunDiverged, OSError)):
        return True
    if isinstance(error, ValueError):
        frames = []
        trace = error.__traceback__
        while trace is not None:
            frames.append(trace.tb_frame.f_code.co_filename)
            trace = trace.tb_next
        return bool(frames) and Path(frames[-1]).resolve().is_relative_to(_ENGINE)
    return False


def build_parser() -> Parser:
    parser = Parser(prog="python -m engine", description="The machine-unlearning engine.")
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, (add_arguments, run) in commands().items():
        sub = subcommands.add_parser(name, help=((run.__doc__ or "").strip().splitlines() or [""])[0])
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, check the outputs, run; a user error is one ``error:`` line and exit code 2."""
    try:
        args = build_parser().parse_args(argv)
        check_outputs(args)
        return args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not is_user_error(error):
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
