"""The Python snippets of the README and the guide run as written: the
README's first look, and the R2D2 actor and learner, with sampled start
states that repeat (every episode starts at the zero state), as a learner's
batch does."""

from __future__ import annotations

import re

import numpy as np

import statectl
from conftest import ROOT, cli_path, documentation, torch_lstm_weights


def readme_python_block(after: str) -> str:
    """The first ```python block after the line containing ``after`` in the
    README or the guide."""
    text = documentation()
    start = text.index(after)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block after {after!r}"
    return match.group(1)


def test_the_readmes_first_look_runs_on_the_store_the_demo_made(tmp_path, monkeypatch, capsys):
    import shutil
    import subprocess

    block = readme_python_block("In Python, the same store and ids in-process")
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "examples" / "data")
    subprocess.run([cli_path(), "--store", ".statectl", "-q", "demo"], check=True)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    p, state = namespace["p"], namespace["state"]
    assert p.outputs.shape == (6, 27) and state.id and p.state_after
    assert str(p.outputs.shape) in capsys.readouterr().out
    assert namespace["store"].audit().ok


def test_the_r2d2_actor_and_learner_snippet_runs_with_repeated_start_states(store):
    block = readme_python_block("An R2D2-style actor and learner")
    units, features, envs, steps = 8, 3, 4, 5
    rng = np.random.default_rng(5)
    store.import_model(torch_lstm_weights(rng, features, units, 2), name="q", head="linear", batch_size=64)
    # Actor 0 at t=0: every environment starts at zeros, so all four
    # states are one state under four tags.
    h = np.zeros((1, envs, units), np.float32)
    c = np.zeros((1, envs, units), np.float32)
    batch_keys = [(0, int(e), 0) for e in rng.integers(0, envs, 64)]
    burn_in_obs = rng.standard_normal((64, steps, features)).astype(np.float32)
    namespace = {
        "store": store, "k": 0, "t": 0, "e": 0, "envs": envs, "h": h, "c": c,
        "batch_keys": batch_keys, "burn_in_obs": burn_in_obs, "step": 7,
    }
    for round in range(2):  # the learner loop comes round again
        namespace["step"] = round
        exec(compile(block, "README.md", "exec"), namespace)
        start, burned = namespace["start"], namespace["burned"]
        assert len(set(start.ids)) == 1 and len(start.ids) == 64
        assert [b.tag for b in burned] == [f"burned/{round}/{i}" for i in range(64)]
        # Different sequences from one start: different states, each tagged.
        assert len({b.state for b in burned}) == 64
        assert store.get_state(f"burned/{round}/5").id == burned[5].state


def test_per_source_tags_that_would_collide_are_refused_and_change_nothing(store, store_path):
    from conftest import folder_digest

    rng = np.random.default_rng(6)
    store.import_model(torch_lstm_weights(rng, 3, 8, 2), name="q", head="linear", batch_size=2)
    zero = store.put_state({"l0.h": np.zeros((1, 8), np.float32), "l0.c": np.zeros((1, 8), np.float32)})
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    before = folder_digest(store_path)
    try:
        store.burn_in([zero, zero], x, model="q", per_slot=True, tag_prefix="b/")
    except statectl.StatectlError as err:
        assert "rows 0 and 1 both start from" in str(err)
        assert 'tag_by="row"' in str(err)
    else:
        raise AssertionError("colliding tags were accepted")
    assert folder_digest(store_path) == before
    # The same sequence from the same start is one state: tagged once, fine.
    same = np.repeat(x[:1], 2, axis=0)
    burned = store.burn_in([zero, zero], same, model="q", per_slot=True, tag_prefix="b/")
    assert burned[0].state == burned[1].state and store.get_state(f"b/{zero}").id == burned[0].state
