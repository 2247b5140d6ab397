#!/usr/bin/env bash
# The Python package in-process beside the CLI's per-call cost, one run.
# Builds both in release into .venv (made by the README's test command, or here).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q safetensors numpy "maturin>=1.7,<2"
cargo build --release -j2
VIRTUAL_ENV="$PWD/.venv" .venv/bin/maturin develop --release -q -m python/Cargo.toml
STATECTL_BIN="$PWD/target/release/statectl" .venv/bin/python python/bench/bench_store.py
