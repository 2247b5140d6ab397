"""Shared fixtures: a fresh store per test, the statectl CLI beside the
package (the same store seen from both front ends), small models."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

import statectl

ROOT = Path(__file__).resolve().parents[2]


def documentation() -> str:
    """The README and every page of the guide (docs/), one after another."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return "\n".join(page.read_text() for page in pages)


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
    """What the store holds, logically: every row of every table and the
    schema version (read through SQLite, so it does not matter whether a
    commit sits in the WAL or was already copied into the database file by
    the store's checkpoint helper), and every other file (weights, packs)
    by its sha256. "Unchanged" means this."""
    digest = {}
    db = path / "statectl.db"
    if db.exists():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            digest["user_version"] = str(conn.execute("PRAGMA user_version").fetchone()[0])
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()
                digest[f"table {table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
        finally:
            conn.close()
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith("statectl.db"):
            digest[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return digest
