#!/usr/bin/env bash
# Every benchmark, one after another, each recording its figures in
# benches/results.jsonl; then docs/performance.md and the README's summary
# are made again from that file.
#
#   bash benches/all.sh                           every benchmark
#   bash benches/all.sh kernels keras             only those named
#   STATECTL_CPU_PATH=portable bash benches/all.sh kernels keras audit
#                                                 a narrower CPU's path
#
# Names: keras (the training step beside Keras and PyTorch, at 64 and 256
# units), kernels, audit, store (store_at_scale.sh), python, checkpoints,
# gc, shared. Needs the README's .venv (numpy, safetensors, Keras); PyTorch
# rows need STATECTL_TORCH_PYTHON. Takes about half an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
all=(keras kernels audit store python checkpoints gc shared)
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=("${all[@]}")
for name in "${wanted[@]}"; do
  case $name in
    keras) bash benches/keras_side_by_side.sh 100 256 && bash benches/keras_side_by_side.sh 100 64 ;;
    kernels) STATECTL_BENCH_PYTHON=${STATECTL_BENCH_PYTHON:-.venv/bin/python} cargo bench -q -j2 --bench kernels ;;
    audit) cargo bench -q -j2 --bench audit ;;
    store) bash benches/store_at_scale.sh ;;
    python) bash benches/python_side_by_side.sh ;;
    checkpoints) bash benches/checkpoint_cost.sh ;;
    gc) bash benches/gc_beside_writers.sh ;;
    shared) bash benches/shared_store.sh ;;
    *) echo "benches/all.sh: no benchmark '$name'; the names are: ${all[*]}" >&2; exit 2 ;;
  esac
done
python3 benches/performance_page.py
