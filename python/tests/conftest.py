"""Shared fixtures: a fresh store per test, the statectl CLI beside the
package (the same store seen from both front ends), small models."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import statectl

ROOT = Path(__file__).resolve().parents[2]


def cli_path() -> str:
    path = os.environ.get("STATECTL_BIN") or str(ROOT / "target" / "debug" / "statectl")
    if not Path(path).exists():
        raise RuntimeError(f"no statectl binary at {path}: run `cargo build` or set STATECTL_BIN")
    return path


class Cli:
    """The statectl binary on one store."""

    def __init__(self, store: Path):
        self.store = store

    def run(self, *args: str, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [cli_path(), "--store", str(self.store), *args],
            capture_output=True,
            input=stdin,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"statectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}")
        return proc

    def json(self, *args: str, check: bool = True):
        return json.loads(self.run("--json", *args, check=check).stdout)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_path: Path):
    with statectl.Store(store_path, create=True) as s:
        yield s


@pytest.fixture
def cli(store_path: Path) -> Cli:
    return Cli(store_path)


def random_state(rng: np.random.Generator, batch: int, units: list[int], cell: str = "lstm") -> dict[str, np.ndarray]:
    names = ["h", "c"] if cell == "lstm" else ["h"]
    return {
        f"l{k}.{n}": rng.standard_normal((batch, u)).astype(np.float32)
        for k, u in enumerate(units)
        for n in names
    }


def torch_lstm_weights(rng: np.random.Generator, features: int, units: int, classes: int) -> dict[str, np.ndarray]:
    """An nn.LSTM(features, units) + nn.Linear(units, classes) state dict."""
    scale = 1 / np.sqrt(units)
    shapes = {
        "lstm.weight_ih_l0": (4 * units, features),
        "lstm.weight_hh_l0": (4 * units, units),
        "lstm.bias_ih_l0": (4 * units,),
        "lstm.bias_hh_l0": (4 * units,),
        "head.weight": (classes, units),
        "head.bias": (classes,),
    }
    return {n: (rng.uniform(-scale, scale, s)).astype(np.float32) for n, s in shapes.items()}


def folder_digest(path: Path) -> dict[str, str]:
    """Every file under the store and its sha256: "unchanged" means this.
    The `-shm` file is left out: it is SQLite's shared-memory index of the
    WAL, which every read transaction of an open connection writes to
    (read marks), and it holds no data."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.endswith("-shm")
    }
