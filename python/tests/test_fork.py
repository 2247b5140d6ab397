"""fork(): RL code forks actor processes (Python's default start method on
Linux before 3.14). A child opens its own Store and everything works there,
also after the parent ran parallel work; a Store inherited from the parent
is refused with a clear error and never touched; the parent loses nothing."""

from __future__ import annotations

import multiprocessing
import os

import numpy as np
import pytest

import statectl
from conftest import Cli, random_state, torch_lstm_weights

FORK = multiprocessing.get_context("fork")
CHILD_TIMEOUT_S = 120


def _parent_ran_parallel_work(store: statectl.Store) -> None:
    """put_states of >= 128 rows and a predict: both use the thread pool."""
    rng = np.random.default_rng(1)
    store.import_model(torch_lstm_weights(rng, 2, 8, 3), name="m", head="softmax", batch_size=2)
    store.put_states(random_state(rng, 256, [8]), tag_prefix="parent/")
    store.predict(rng.standard_normal((2, 3, 2)).astype(np.float32), model="m")


def _child_writes_its_own(path: str, n: int, results) -> None:
    try:
        rng = np.random.default_rng(100 + n)
        with statectl.Store(path) as own:
            for chunk in range(4):
                own.put_states(random_state(rng, 250, [8]), tag_prefix=f"child{n}/{chunk}/")
            own.predict(rng.standard_normal((2, 3, 2)).astype(np.float32), model="m", stream=f"c{n}")
        results.put((n, "ok"))
    except BaseException as e:  # reported to the parent
        results.put((n, repr(e)))


def _join_all(children) -> None:
    for child in children:
        child.join(CHILD_TIMEOUT_S)
    hung = [c.pid for c in children if c.is_alive()]
    for child in children:
        if child.is_alive():
            child.kill()
    assert not hung, f"children {hung} hung for {CHILD_TIMEOUT_S} s"


def test_forked_children_open_their_own_store_and_lose_nothing(store, store_path):
    _parent_ran_parallel_work(store)
    results = FORK.Queue()
    children = [FORK.Process(target=_child_writes_its_own, args=(str(store_path), n, results)) for n in range(4)]
    for child in children:
        child.start()
    _join_all(children)
    outcomes = dict(results.get(timeout=5) for _ in children)
    assert outcomes == {n: "ok" for n in range(4)}, outcomes
    assert [c.exitcode for c in children] == [0, 0, 0, 0]
    # Every child's 1,000 states, under their tags, read by the parent.
    for n in range(4):
        batch = store.get_states([f"child{n}/{chunk}/{i}" for chunk in range(4) for i in range(250)])
        assert len(batch.ids) == 1000
    store.close()
    cli = Cli(store_path)
    assert len(cli.json("tag", "list")["tags"]) == 256 + 4000
    assert cli.json("verify")["ok"] is True


def _child_uses_the_inherited_store(store: statectl.Store, results) -> None:
    try:
        store.put_state(random_state(np.random.default_rng(5), 2, [8]), tag="from-child")
        results.put("no error")
    except statectl.InheritedStoreError as e:
        results.put(("refused", str(e), store.closed))
    except BaseException as e:
        results.put(repr(e))
    # The child's copy goes away as an exiting child's objects do; closing
    # it must not touch the parent's connection.
    store.close()
    del store
    import gc

    gc.collect()


def test_a_store_inherited_through_fork_is_refused_and_the_parent_loses_nothing(store, store_path):
    _parent_ran_parallel_work(store)
    results = FORK.Queue()
    children = [FORK.Process(target=_child_uses_the_inherited_store, args=(store, results)) for _ in range(2)]
    for child in children:
        child.start()
    # The parent keeps writing while the children run and exit.
    rng = np.random.default_rng(7)
    written = {}
    for i in range(300):
        tensors = random_state(rng, 2, [8])
        written[f"p/{i}"] = (store.put_state(tensors, tag=f"p/{i}"), tensors)
    _join_all(children)
    for _ in children:
        outcome = results.get(timeout=5)
        assert outcome[0] == "refused", outcome
        assert "fork()" in outcome[1] and "open statectl.Store(" in outcome[1], outcome[1]
        assert outcome[2] is True  # seen from the child, the copy is closed
    store.close()
    with statectl.Store(store_path) as reopened:
        for tag, (sid, tensors) in written.items():
            back = reopened.get_state(tag)
            assert back.id == sid
            np.testing.assert_array_equal(back["l0.h"], tensors["l0.h"])
        with pytest.raises(statectl.NotFoundError):
            reopened.get_state("from-child")
    assert Cli(store_path).json("verify")["ok"] is True


def test_the_inherited_store_stays_usable_in_the_parent(store):
    _parent_ran_parallel_work(store)
    pid = os.fork()
    if pid == 0:  # the child leaves at once, without Python's clean-up
        os._exit(0)
    os.waitpid(pid, 0)
    ids = store.put_states(random_state(np.random.default_rng(3), 200, [8]), tag_prefix="after/")
    assert len(ids) == 200

