"""Argument types for ``python -m engine``: each turns one command-line string into a value or refuses it while
parsing, with a message that names the value and the allowed range or forms (argparse adds the flag)."""
from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Callable

MAX_SEED = 2**32 - 1            # numpy's seed range
MAX_EPOCHS = 1000               # the recipes use 10-30; a million is a typo, not an experiment
MAX_SAMPLE_ID = 2**31 - 1       # no dataset here comes near; the dataset's own size is checked once it is loaded


def integer(low: int, high: int) -> Callable[[str], int]:
    """A whole number in [low, high]: ``--epochs 1.5``, ``--epochs 1e6`` and out-of-range values are refused."""
    def parse(text: str) -> int:
        if not re.fullmatch(r"[+-]?\d+", text.strip()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number (allowed: {low} to {high})")
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range (allowed: {low} to {high})")
        return value
    parse.__name__ = "integer"
    return parse


seed_number = integer(0, MAX_SEED)


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (allowed: strictly between 0 and 1)") from None
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def device(text: str) -> str:
    """auto, cpu, cuda, cuda:N (an existing device) or mps (when present)."""
    import torch

    value = text.strip().lower()
    forms = "auto, cpu, cuda, cuda:N or mps"
    if value in ("auto", "cpu"):
        return value
    cuda = re.fullmatch(r"cuda(?::(\d+))?", value)
    if cuda:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text!r}: no CUDA device on this machine (use auto or cpu)")
        if cuda.group(1) is not None and int(cuda.group(1)) >= count:
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has cuda:0..cuda:{count - 1}")
        return value
    if value == "mps":
        if not torch.backends.mps.is_available():
            raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available on this machine (use auto or cpu)")
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a device; use one of {forms}")


def folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return path


def sample_ids(text: str) -> tuple[int, ...]:
    """A file of training-pool ids: a JSON list of integers, or integers separated by spaces/commas/newlines.

    Strict: ``[1.5, 2.7]``, ``[1e30]``, ``[true]``, ``[null]``, ``[[1, 2]]``, negative or huge ids are refused,
    never rounded or coerced."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    try:
        content = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise argparse.ArgumentTypeError(f"{text}: cannot be read as text ({error})") from None
    if content.startswith("["):
        def refuse_constant(name):
            raise argparse.ArgumentTypeError(f"{text}: {name} is not a sample id")
        try:
            values = json.loads(content, parse_constant=refuse_constant)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"{text}: not a valid JSON list ({error})") from None
        if not isinstance(values, list):
            raise argparse.ArgumentTypeError(f"{text}: expected one JSON list of integers")
        for k, value in enumerate(values):
            if type(value) is not int:     # bool is a subclass of int; 1.0, "1", null and lists are not ids either
                raise argparse.ArgumentTypeError(f"{text}: item {k} is {json.dumps(value)}, not a whole number")
    else:
        values = []
        for k, token in enumerate(content.replace(",", " ").split()):
            if not re.fullmatch(r"[+-]?\d+", token):
                raise argparse.ArgumentTypeError(f"{text}: item {k} is {token!r}, not a whole number")
            values.append(int(token))
    if not values:
        raise argparse.ArgumentTypeError(f"{text}: holds no sample ids")
    for value in values:
        if not 0 <= value <= MAX_SAMPLE_ID:
            raise argparse.ArgumentTypeError(f"{text}: sample id {value} is out of range (ids are 0 or more)")
    return tuple(values)


def bench_file(text: str) -> Path:
    """An earlier bench JSON: an object with a non-empty list of row objects (``--merge``)."""
    path = Path(text)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"{text}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise argparse.ArgumentTypeError(f"{text}: not a readable JSON file ({error})") from None
    rows = payload.get("rows") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise argparse.ArgumentTypeError(f"{text}: holds no bench rows (expected {{\"rows\": [{{...}}, ...]}})")
    missing = sorted({"device", "command"} - set(payload)) + sorted(
        {"scenario", "method", "forget"} - set.intersection(*map(set, rows)))
    if missing:
        raise argparse.ArgumentTypeError(f"{text}: not the output of one bench run (no {', '.join(missing)})")
    return path
