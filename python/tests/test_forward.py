"""Store.forward: an acting loop's forward pass, recording nothing, with
the bits predict records from the same state."""

from __future__ import annotations

import numpy as np
import pytest

import statectl
from conftest import folder_digest, torch_lstm_weights


@pytest.fixture
def model(store):
    rng = np.random.default_rng(4)
    store.import_model(torch_lstm_weights(rng, 3, 8, 5), name="q", head="softmax", batch_size=2)
    return rng


def test_forward_records_nothing_and_matches_predict_bit_for_bit(store, store_path, model):
    rng = model
    xs = [rng.standard_normal((2, 4, 3)).astype(np.float32) for _ in range(3)]
    state = store.get_state("HEAD", model="q")
    before = folder_digest(store_path)
    acted = []
    for x in xs:  # an acting loop: the state carried in memory
        step = store.forward(x, state, model="q")
        acted.append(step)
        state = step.state
    assert folder_digest(store_path) == before
    for x, step in zip(xs, acted):  # the same steps, recorded
        recorded = store.predict(x, model="q")
        assert recorded.outputs.tobytes() == step.outputs.tobytes()
        assert recorded.logits.tobytes() == step.logits.tobytes()
        after = store.get_state(recorded.state_after)
        for name in after:
            assert after[name].tobytes() == step.state[name].tobytes()


def test_forward_refuses_a_state_of_another_layout_or_batch(store, model):
    x = np.zeros((2, 4, 3), np.float32)
    with pytest.raises(statectl.LayoutMismatchError):
        store.forward(x, {"l0.h": np.zeros((2, 7), np.float32), "l0.c": np.zeros((2, 7), np.float32)}, model="q")
    with pytest.raises(statectl.LayoutMismatchError, match="x has batch 2 but the state has 3 slot"):
        store.forward(x, {"l0.h": np.zeros((3, 8), np.float32), "l0.c": np.zeros((3, 8), np.float32)}, model="q")
    with pytest.raises(statectl.InvalidInputError):
        store.forward(x.astype(np.float64), {"l0.h": np.zeros((2, 8), np.float32)}, model="q")
