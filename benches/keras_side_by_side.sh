#!/usr/bin/env bash
# A stateful training step in Keras, PyTorch and statectl, measured in one
# run: LSTM(UNITS), 8 features, 50 steps, batch 64, Dense(1), MSE, Adam, no
# shuffle. Steady-state milliseconds per batch for each, and the ratios;
# each figure is recorded as a JSON line (benches/record.py).
#
#   bash benches/keras_side_by_side.sh [BATCHES] [UNITS]   (default 100, 256)
#
# Keras: the README's .venv when it has tensorflow and keras, else a venv
# with the same pinned versions made once under target/keras-venv.
# PyTorch: `nn.LSTM` + `nn.Linear` on 2 threads, the state carried and
# detached between batches, with the python $STATECTL_TORCH_PYTHON names
# (else the Keras venv's, if it has torch); skipped with a message when no
# python with torch is found. statectl: built in release mode.
# Keras and PyTorch: two epochs, timed from the end of batch 10 (their
# first batches trace, compile or warm up) to the end. statectl: two epochs
# minus one epoch, whole processes, so startup and recording cancel out.
# Each side runs twice, in turns, and its faster turn counts.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES="${1:-100}"
UNITS="${2:-256}"
VENV=target/keras-venv
if .venv/bin/python -c "import tensorflow, keras, safetensors" 2>/dev/null; then
  VENV=.venv
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=3

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import tensorflow, keras, safetensors" 2>/dev/null; then
  echo "making $VENV (tensorflow-cpu 2.21.0, keras 3.15.1; a few minutes once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "tensorflow-cpu==2.21.0" "keras==3.15.1" "numpy==2.4.6" safetensors
fi
cargo build -q --release -j2
STATECTL="$PWD/target/release/statectl"

"$VENV/bin/python" - "$WORK" "$BATCHES" <<'PY'
import sys
import numpy as np
from safetensors.numpy import save_file
work, batches = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
n = 64 * batches
save_file({"x": rng.standard_normal((n, 50, 8)).astype(np.float32),
           "y": rng.standard_normal((n, 1)).astype(np.float32)}, f"{work}/data.safetensors")
PY

keras() {
  "$VENV/bin/python" - "$WORK" "$BATCHES" "$UNITS" <<'PY'
import sys, time, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from safetensors.numpy import load_file
work, batches = sys.argv[1], int(sys.argv[2])
d = load_file(f"{work}/data.safetensors")
model = keras.Sequential([
    keras.Input(batch_shape=(64, 50, 8)),
    keras.layers.LSTM(int(sys.argv[3]), stateful=True),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
marks = []
class Clock(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        marks.append(time.perf_counter())
model.fit(d["x"], d["y"], batch_size=64, epochs=2, shuffle=False, verbose=0, callbacks=[Clock()])
# From the end of batch 10 (tracing and compiling are over) to the end of
# the second epoch.
print((marks[-1] - marks[10]) / (len(marks) - 11) * 1e3)
PY
}

TORCH=${STATECTL_TORCH_PYTHON:-$VENV/bin/python}
if ! "$TORCH" -c "import torch, safetensors" 2>/dev/null; then
  echo "PyTorch skipped: $TORCH cannot import torch and safetensors (set STATECTL_TORCH_PYTHON to a python that can)" >&2
  TORCH=
fi
torch_ms() {
  "$TORCH" - "$WORK" "$BATCHES" "$UNITS" <<'PY'
import sys, time
import torch
from safetensors.torch import load_file
work, batches, units = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
torch.set_num_threads(2)
d = load_file(f"{work}/data.safetensors")
rnn = torch.nn.LSTM(8, units, batch_first=True)
head = torch.nn.Linear(units, 1)
opt = torch.optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=1e-3)
state = (torch.zeros(1, 64, units), torch.zeros(1, 64, units))
marks = []
for epoch in range(2):
    for b in range(batches):
        x, y = d["x"][b * 64:(b + 1) * 64], d["y"][b * 64:(b + 1) * 64]
        out, state = rnn(x, state)
        loss = torch.nn.functional.mse_loss(head(out[:, -1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = tuple(s.detach() for s in state)  # stateful: carried, not backpropagated into
        marks.append(time.perf_counter())
print((marks[-1] - marks[10]) / (len(marks) - 11) * 1e3)
PY
}

run() {
  rm -rf "$WORK/store"
  local start end
  start=$(date +%s.%N)
  "$STATECTL" --store "$WORK/store" -q train --data "$WORK/data.safetensors" --units "$UNITS" \
    --batch-size 64 --epochs "$1" --no-shuffle --name m >/dev/null
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}
# This machine's speed drifts from minute to minute, so the two are
# measured in turns (Keras, statectl, Keras, statectl) and each figure is
# the faster of its two turns: a stray slow spell decides neither, and
# both sides see the same minutes.
keras_runs=() torch_runs=() ones=() twos=()
for turn in 1 2; do
  keras_runs+=("$(keras)")
  [ -n "$TORCH" ] && torch_runs+=("$(torch_ms)")
  ones+=("$(run 1)")
  twos+=("$(run 2)")
done
best() { python3 -c "print(min($1, $2))"; }
keras_ms=$(best "${keras_runs[0]}" "${keras_runs[1]}")
one=$(best "${ones[0]}" "${ones[1]}")
two=$(best "${twos[0]}" "${twos[1]}")
statectl_ms=$(python3 -c "print(($two - $one) / $BATCHES * 1000)")
versions=$("$VENV/bin/python" -c "import keras, tensorflow; print(f'Keras {keras.__version__} / tensorflow-cpu {tensorflow.__version__}')" 2>/dev/null)
workload="training step: LSTM($UNITS), 8 features, 50 steps, batch 64, Dense(1), MSE, Adam"

printf '%s, %s batches:\n' "$workload" "$BATCHES"
printf '  %-40s %7.1f ms/batch\n' "$versions" "$keras_ms"
printf '  %-40s %7.1f ms/batch\n' "statectl (fused-1)" "$statectl_ms"
printf '  statectl is %.2fx the speed of Keras\n' "$(python3 -c "print($keras_ms / $statectl_ms)")"
printf '  turns: Keras %.1f, %.1f ms/batch; statectl %.1f, %.1f ms/batch\n' "${keras_runs[0]}" "${keras_runs[1]}" \
  "$(python3 -c "print((${twos[0]} - ${ones[0]}) / $BATCHES * 1000)")" "$(python3 -c "print((${twos[1]} - ${ones[1]}) / $BATCHES * 1000)")"
rerun="bash benches/keras_side_by_side.sh $BATCHES $UNITS"
python3 benches/record.py --workload "$workload" --figure "$statectl_ms" --unit ms/batch \
  --reference "$versions" --reference-figure "$keras_ms" \
  --ratio "$(python3 -c "print($keras_ms / $statectl_ms)")" --ratio-means "x Keras's speed" \
  --rerun "$rerun" --headline
if [ -n "$TORCH" ]; then
  torch_best=$(best "${torch_runs[0]}" "${torch_runs[1]}")
  torch_version=$("$TORCH" -c "import torch; print(f'PyTorch {torch.__version__} nn.LSTM + Linear, 2 threads')")
  printf '  %-40s %7.1f ms/batch (turns %.1f, %.1f)\n' "$torch_version" "$torch_best" "${torch_runs[0]}" "${torch_runs[1]}"
  printf '  statectl is %.2fx the speed of PyTorch\n' "$(python3 -c "print($torch_best / $statectl_ms)")"
  python3 benches/record.py --workload "$workload" --figure "$statectl_ms" --unit ms/batch \
    --reference "$torch_version" --reference-figure "$torch_best" \
    --ratio "$(python3 -c "print($torch_best / $statectl_ms)")" --ratio-means "x PyTorch's speed" \
    --rerun "$rerun" --headline
fi
