#!/usr/bin/env bash
# Every test of the project, on a fresh machine: the Rust suite (unit and
# end-to-end through the real binary), then the Python package built into
# the venv and its pytest suite (interop with the CLI, a live Keras 3
# model, bad input, threads).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python3 -m venv .venv
# numpy and safetensors: the Rust suite's interop tests; maturin builds
# the package; Keras on tensorflow-cpu is the live reference (pinned).
.venv/bin/pip install -q safetensors numpy pytest "maturin>=1.7,<2" tensorflow-cpu==2.21.0 keras==3.15.1
export PATH="$PWD/.venv/bin:$PATH"
cargo test -j2
VIRTUAL_ENV="$PWD/.venv" maturin develop -q -m python/Cargo.toml
STATECTL_BIN="$PWD/target/debug/statectl" pytest -q python/tests
