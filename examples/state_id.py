"""Recompute a statectl state id from a state file, with numpy (the recipe in docs/store.md).

    python3 examples/state_id.py FILE

FILE holds l{k}.h and (LSTM) l{k}.c as [batch, units] (a `statectl export` file, or
one written with safetensors.numpy.save_file). Prints the 64-digit state id
that `statectl import FILE` gives the same state.
"""
import hashlib
import sys

import numpy as np
from safetensors import safe_open


def state_id(path):
    with safe_open(path, "np") as f:
        meta = f.metadata() or {}
        t = {k: f.get_tensor(k) for k in f.keys()}
    layers = sum(1 for k in t if k.endswith(".h"))
    units = ",".join(str(t[f"l{k}.h"].shape[1]) for k in range(layers))
    names = "hc" if "l0.c" in t else "h"  # an LSTM carries h and c, a GRU h
    cell = "lstm" if names == "hc" else "gru"
    layout = meta.get("layout", f"{cell}:{units}").encode()  # e.g. b"lstm:16", b"gru:20,8"
    batch = t["l0.h"].shape[0]
    slots = []
    for b in range(batch):
        # One slot: for each layer in order its h then (LSTM) its c, float32 little-endian.
        values = np.concatenate([t[f"l{k}.{n}"][b] for k in range(layers) for n in names])
        data = values.astype("<f4").tobytes()
        slots.append(hashlib.sha256(b"statectl.slot.v1\0" + layout + b"\0" + data).digest())
    return hashlib.sha256(
        b"statectl.state.v1\0" + layout + b"\0" + batch.to_bytes(4, "little") + b"".join(slots)
    ).hexdigest()


if __name__ == "__main__":
    print(state_id(sys.argv[1]))
