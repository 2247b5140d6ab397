"""In-process speed of the Python package beside the CLI's per-call cost,
measured in one run (ratios hold on a noisy machine; absolute times do
not). Not a test: nothing here asserts a time.

    bash benches/python_side_by_side.sh          # builds release, then runs this

Figures: put_states, get_state and get_states (a learner's batch of 64) of
one-slot LSTM-512 states (states/s),
a single put_state call (median µs), and the CLI doing one state per
process (`statectl import`, `statectl export`: median ms per call).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

import statectl

UNITS = 512


def one_slot_states(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {name: rng.standard_normal((n, UNITS)).astype(np.float32) for name in ("l0.h", "l0.c")}


def best_rate(count: int, runs: list[float]) -> str:
    return f"{count / min(runs):>10,.0f} states/s (best of {len(runs)}; median {count / statistics.median(runs):,.0f})"


RERUN = "bash benches/python_side_by_side.sh"
RECORD = Path(__file__).resolve().parents[2] / "benches" / "record.py"


def record(workload: str, figure: float, unit: str, reference: str, reference_figure: float,
           ratio: float, ratio_means: str, headline: bool = False) -> None:
    """One figure and its same-run reference as a JSON line (benches/record.py)."""
    args = [sys.executable, str(RECORD), "--workload", workload, "--figure", str(figure), "--unit", unit,
            "--reference", reference, "--reference-figure", str(reference_figure),
            "--ratio", str(ratio), "--ratio-means", ratio_means, "--rerun", RERUN]
    subprocess.run(args + (["--headline"] if headline else []), check=True)


def main() -> None:
    cli = os.environ.get("STATECTL_BIN", "target/release/statectl")
    total = int(os.environ.get("STATECTL_BENCH_STATES", "100000"))
    band = int(os.environ.get("STATECTL_BENCH_BAND", "10000"))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="statectl-bench-") as folder:
        root = Path(folder)
        store = statectl.Store(root / "py", create=True)
        print(f"one-slot LSTM-{UNITS} states ({UNITS * 8} bytes each), statectl {statectl.__version__}")

        # put_states: `total` states in calls of `band` rows (a replay
        # buffer's insert), each call one transaction and journal entry.
        def put_batches(rows: int, calls: int) -> tuple[list[float], list[str]]:
            runs, ids = [], []
            for _ in range(calls):
                batch = one_slot_states(rng, rows)
                t = time.perf_counter()
                ids += store.put_states(batch)
                runs.append(time.perf_counter() - t)
            return runs, ids

        runs, ids = put_batches(band, total // band)
        put_rate = band / min(runs)
        print(f"put_states, {band:,} rows a call      {best_rate(band, runs)}; all {total:,}: {total / sum(runs):,.0f} states/s")
        # The floor, same run: the same bytes written and fdatasync'ed to a
        # plain file (what a durable store must at least do), and hashed.
        batch = one_slot_states(rng, band)
        data = b"".join(np.ascontiguousarray(np.concatenate([batch["l0.h"], batch["l0.c"]], axis=1)).tobytes() for _ in range(1))
        writes, hashes = [], []
        for _ in range(5):
            t = time.perf_counter()
            with open(root / "plain.bin", "wb") as f:
                f.write(data)
                f.flush()
                os.fdatasync(f.fileno())
            writes.append(time.perf_counter() - t)
            os.remove(root / "plain.bin")
            t = time.perf_counter()
            hashlib.sha256(data).digest()
            hashes.append(time.perf_counter() - t)
        mb = len(data) / 1e6
        print(f"  same bytes ({mb:.0f} MB), plain write + fdatasync  {best_rate(band, writes)} ({mb / min(writes):,.0f} MB/s); sha256 {mb / min(hashes):,.0f} MB/s")
        plain_rate = band / min(writes)
        record(f"Python: put_states of one-slot LSTM-{UNITS} states, {band:,} rows a call (best of {len(runs)})",
               put_rate, "states/s", "the same bytes written to a plain file with fdatasync", plain_rate,
               put_rate / plain_rate, "x the plain file's rate", headline=True)
        # An actor's batch: 256 rows a call.
        runs, _ = put_batches(256, 20)
        print(f"put_states, 256 rows a call         {best_rate(256, runs)}")

        # get_state by id, in random order across the whole store.
        order = rng.permutation(len(ids))[:20000]
        t = time.perf_counter()
        for i in order:
            store.get_state(ids[i])
        dt = time.perf_counter() - t
        print(f"get_state by id, {len(order):,} calls        {len(order) / dt:>10,.0f} states/s ({dt / len(order) * 1e6:.1f} µs a call)")
        get_us, get_rate = dt / len(order) * 1e6, len(order) / dt
        # A learner's batch: 64 random start states stacked in one call.
        sample = [ids[i] for i in order]
        t = time.perf_counter()
        for at in range(0, len(sample), 64):
            store.get_states(sample[at : at + 64])
        dt = time.perf_counter() - t
        print(f"get_states, 64 ids a call           {len(sample) / dt:>10,.0f} states/s ({dt / (len(sample) / 64) * 1e6:.0f} µs a call)")
        record(f"Python: get_states of 64 random ids (a learner's batch) in a store of {total:,}",
               len(sample) / dt, "states/s", "get_state one id at a time", get_rate,
               len(sample) / dt / get_rate, "x one at a time")

        # A single put_state: one call, one transaction, one journal entry.
        per_call = []
        for i in range(1000):
            state = one_slot_states(rng, 1)
            t = time.perf_counter()
            store.put_state(state)
            per_call.append(time.perf_counter() - t)
        per_call.sort()
        print(f"put_state, one call                 median {statistics.median(per_call) * 1e6:.0f} µs, p90 {per_call[900] * 1e6:.0f} µs (1,000 calls)")

        # The CLI, one state per process: the way without the package.
        state_file = root / "one.safetensors"
        save_file(one_slot_states(rng, 1), str(state_file))
        cli_store = root / "cli"
        subprocess.run([cli, "--store", str(cli_store), "init"], check=True, capture_output=True)
        times = {"import": [], "export": []}
        for i in range(30):
            t = time.perf_counter()
            subprocess.run([cli, "--store", str(cli_store), "import", str(state_file), "--tag", f"s{i}", "--force"], check=True, capture_output=True)
            times["import"].append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run([cli, "--store", str(cli_store), "export", f"s{i}", "-o", str(root / "out.safetensors")], check=True, capture_output=True)
            times["export"].append(time.perf_counter() - t)
        for what, ts in times.items():
            print(f"CLI {what}, one state per process     median {statistics.median(ts) * 1e3:.2f} ms a call ({1 / statistics.median(ts):,.0f} calls/s)")
        ratio = statistics.median(times["import"]) / statistics.median(per_call)
        print(f"put_state is {ratio:,.0f}x faster than `statectl import` of one state, same run")
        record(f"Python: put_state of one one-slot LSTM-{UNITS} state (a transaction and journal entry each), median",
               statistics.median(per_call) * 1e6, "µs", "the CLI: statectl import of one state",
               statistics.median(times["import"]) * 1e6, ratio, "x the CLI's speed")
        export_us = statistics.median(times["export"]) * 1e6
        record(f"Python: get_state by id, random order in a store of {total:,}", get_us, "µs",
               "the CLI: statectl export of one state", export_us, export_us / get_us, "x the CLI's speed")
        store.close()


if __name__ == "__main__":
    sys.exit(main())
