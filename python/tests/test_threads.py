"""One Store shared by Python threads: calls serialise on the store and
release the GIL while they work."""

from __future__ import annotations

import threading
import time

import numpy as np

from conftest import Cli, random_state, torch_lstm_weights


def test_threads_share_one_store(store, store_path):
    rng = np.random.default_rng(9)
    store.import_model(torch_lstm_weights(rng, 2, 8, 3), name="m", head="softmax", batch_size=2)
    errors, ids = [], {}

    def worker(n: int) -> None:
        try:
            local = np.random.default_rng(100 + n)
            for i in range(20):
                tensors = random_state(local, 2, [8])
                sid = store.put_state(tensors, tag=f"t{n}/{i}")
                back = store.get_state(f"t{n}/{i}")
                assert back.id == sid
                np.testing.assert_array_equal(back["l0.c"], tensors["l0.c"])
                store.restore(sid, model="m", stream=f"s{n}")
                store.predict(local.standard_normal((2, 3, 2)).astype(np.float32), model="m", stream=f"s{n}")
                ids[(n, i)] = sid
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == 80
    cli = Cli(store_path)
    assert cli.json("verify")["ok"] is True
    audit = cli.json("audit", "--model", "m")
    assert audit["ok"] is True and audit["reproduced"] == 80


def test_long_work_releases_the_gil(store):
    rng = np.random.default_rng(10)
    store.import_model(torch_lstm_weights(rng, 8, 64, 4), name="m", head="softmax", batch_size=16)
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        steps = 200
        while True:
            x = rng.standard_normal((16, steps, 8)).astype(np.float32)
            start = time.perf_counter()
            store.predict(x, model="m", advance=False)
            end = time.perf_counter()
            if end - start > 0.1 or steps > 100_000:
                break
            steps *= 4
    finally:
        stop.set()
        thread.join()
    # Had the call held the GIL, the other thread could not have run in
    # the middle of it (Python hands the GIL over every 5 ms at most).
    third = (end - start) / 3
    assert any(start + third < t < end - third for t in ticks)


def test_put_states_stays_correct_while_another_thread_writes_the_array(store):
    """The arrays are copied while the GIL is held, so a writer thread (numpy
    releases the GIL in large fills) can only make a call store one of the
    values it wrote, each stored state matching its id: never a crash, never
    bytes that differ from what the id says."""
    import threading

    rows, units = 64, 4096
    h = np.zeros((rows, units), dtype=np.float32)
    c = np.zeros((rows, units), dtype=np.float32)
    stop = threading.Event()
    written = {0.0}

    def writer():
        k = 0
        while not stop.is_set():
            k += 1
            written.add(float(k))
            h[...] = k
            c[...] = -k

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        ids = []
        for _ in range(20):
            ids += store.put_states({"l0.h": h, "l0.c": c})
    finally:
        stop.set()
        thread.join()
    # Every id reads back (re-hashed on the way out) as values the writer
    # wrote, h and c each.
    for start in range(0, len(ids), 256):
        batch = store.get_states(ids[start : start + 256])
        assert set(np.unique(batch["l0.h"]).tolist()) <= written
        assert set((-np.unique(batch["l0.c"])).tolist()) <= written
