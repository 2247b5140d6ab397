"""Names in Python: models replaced on purpose (a notebook cell run twice),
deleted and renamed; tags deleted by pattern; a stream one typo from
another refused unless asked for."""

from __future__ import annotations

import numpy as np
import pytest

import statectl
from conftest import folder_digest, torch_lstm_weights


def test_a_model_is_replaced_only_with_force_and_the_error_speaks_python(store):
    rng = np.random.default_rng(1)
    weights = torch_lstm_weights(rng, 2, 6, 3)
    store.import_model(weights, name="m", head="softmax")
    with pytest.raises(statectl.StatectlError, match="force=True"):
        store.import_model(weights, name="m", head="softmax")
    other = torch_lstm_weights(rng, 2, 6, 3)
    replaced = store.import_model(other, name="m", head="softmax", force=True)
    assert store.model("m").weights == replaced.weights


def test_models_are_renamed_and_deleted(store):
    rng = np.random.default_rng(2)
    store.import_model(torch_lstm_weights(rng, 2, 6, 3), name="m", head="softmax")
    renamed = store.rename_model("m", "q")
    assert (renamed.from_, renamed.to) == ("m", "q")
    assert [m.model for m in store.models()] == ["q"]
    deleted = store.delete_model("q")
    assert deleted.model == "q" and deleted.streams == ["main"]
    assert store.models() == []


def test_tags_are_deleted_by_pattern_or_not_at_all(store, store_path):
    zero = {"l0.h": np.zeros((1, 4), np.float32)}
    for name in ["buf/0", "buf/1", "keep"]:
        store.put_state(zero, tag=name)
    before = folder_digest(store_path)
    with pytest.raises(statectl.StatectlError, match="did you mean 'keep'"):
        store.delete_tags("buf/*", "kep")
    assert folder_digest(store_path) == before
    gone = store.delete_tags("buf/*")
    assert [d.tag for d in gone] == ["buf/0", "buf/1"]
    assert [t.tag for t in store.tags()] == ["keep"]


def test_a_batch_mismatch_is_a_layout_error_with_python_advice(store):
    rng = np.random.default_rng(5)
    store.import_model(torch_lstm_weights(rng, 2, 6, 3), name="m", head="softmax", batch_size=2)
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    with pytest.raises(statectl.LayoutMismatchError) as caught:
        store.predict(x)
    message = str(caught.value)
    assert "x has batch 3 but state" in message and "slots=[0, 1, 0]" in message, message
    assert "store.reset(batch_size=3)" in message and "statectl " not in message, message


def test_a_taken_model_name_is_a_conflict(store):
    rng = np.random.default_rng(6)
    store.import_model(torch_lstm_weights(rng, 2, 6, 3), name="m", head="softmax")
    with pytest.raises(statectl.ConflictError, match="force=True"):
        store.import_model(torch_lstm_weights(rng, 2, 6, 3), name="m", head="softmax")


def test_a_stream_one_typo_away_is_refused_unless_new_stream(store):
    rng = np.random.default_rng(3)
    store.import_model(torch_lstm_weights(rng, 2, 6, 3), name="m", head="softmax")
    x = rng.standard_normal((1, 4, 2)).astype(np.float32)
    with pytest.raises(statectl.StatectlError, match="did you mean 'main'"):
        store.predict(x, stream="mian")
    made = store.predict(x, stream="mian", new_stream=True)
    assert made.created_stream
    assert not store.predict(x, stream="mian").created_stream
