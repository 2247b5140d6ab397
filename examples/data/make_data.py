"""Writes the small example files the README's commands use (run from the
repository root with numpy and safetensors installed). Deterministic: the
files in git are this script's output.

    python3 examples/data/make_data.py
"""

import numpy as np
from safetensors.numpy import load_file, save_file

rng = np.random.default_rng(7)
out = "examples/data/"

# A two-column sensor series: a noisy sine and a slow load signal; 200 rows.
t = np.arange(200)
value = np.sin(t / 8.0) + 0.05 * rng.standard_normal(200)
load = 0.5 + 0.3 * np.sin(t / 40.0)
with open(out + "series.csv", "w") as f:
    f.write("value,load\n")
    for v, l in zip(value, load):
        f.write(f"{v:.6f},{l:.6f}\n")

# The alphabet (the demo's data) as a training file: x [24, 3, 1], y one-hot.
fixture = load_file("tests/fixtures/x_data.safetensors")
save_file({"x": fixture["x"], "y": fixture["y"]}, out + "xy.safetensors")

# Inputs for the demo model (1 feature): a batch of 6 sequences of 5 steps.
x = (rng.integers(0, 27, size=(6, 5, 1)) / 27.0).astype(np.float32)
save_file({"x": x}, out + "x.safetensors")
with open(out + "x.json", "w") as f:
    f.write('{"x": ' + str(x.tolist()) + "}\n")
with open(out + "batch.csv", "w") as f:
    for row in x[:, :3, 0]:
        f.write(",".join(f"{v:.9g}" for v in row) + "\n")

# R2D2-style replay: 8 one-slot LSTM-16 states (as actors would store them),
# a 4-step burn-in prefix for one sequence and for three, and one sequence.
save_file(
    {
        "l0.h": (0.3 * rng.standard_normal((8, 16))).astype(np.float32),
        "l0.c": (0.5 * rng.standard_normal((8, 16))).astype(np.float32),
    },
    out + "replay.safetensors",
)
save_file({"x": (rng.integers(0, 27, size=(1, 4, 1)) / 27.0).astype(np.float32)}, out + "prefix.safetensors")
save_file({"x": (rng.integers(0, 27, size=(3, 4, 1)) / 27.0).astype(np.float32)}, out + "prefixes.safetensors")
save_file({"x": (rng.integers(0, 27, size=(1, 6, 1)) / 27.0).astype(np.float32)}, out + "seq.safetensors")
