"""Model files by path: `statectl.keras.import_model(store, "model.keras")`
and `statectl.torch.import_model(store, "model.pt")` read the files the
tools wrote (tests/fixtures/model_files/) without Keras or torch, register
the same weights id as the live-model path, and predict what the tools
predicted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import statectl
from statectl import keras as sk
from statectl import torch as st

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "model_files"


def _forward_matches_fixture(store: statectl.Store, model: str, stem: str) -> None:
    expected = load_file(FIXTURES / f"{stem}.expected.safetensors")
    state = {k: v for k, v in expected.items() if k.startswith("l")}
    out = store.forward(expected["x"], state, model=model)
    np.testing.assert_allclose(np.asarray(out.outputs), expected["y"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("stem", ["lstm_stacked", "gru_per_step", "functional"])
def test_keras_file_by_path_matches_the_same_weights_as_arrays(store, stem):
    imported = sk.import_model(store, FIXTURES / f"{stem}.keras")
    assert imported.model == stem
    assert imported.origin["format"] == "keras"
    config = imported.config
    twin = store.import_model(
        load_file(FIXTURES / f"{stem}.keras_layout.safetensors"),
        name="twin",
        head=config["head"],
        batch_size=config["batch_size"],
        outputs=config.get("outputs", "last"),
    )
    assert twin.weights == imported.weights
    assert store.model(stem).origin["sha256"] == imported.origin["sha256"]
    _forward_matches_fixture(store, stem, stem)


def test_torch_file_by_path_and_checkpoint(store):
    plain = st.import_model(store, FIXTURES / "torch_lstm2.pt", "lstm2")
    assert plain.config["head"] == "linear"
    _forward_matches_fixture(store, "lstm2", "torch_lstm2")
    wrapped = st.import_model(store, str(FIXTURES / "torch_checkpoint.pt"), head="softmax")
    assert wrapped.model == "torch_checkpoint"
    assert any("under 'state_dict'" in note for note in wrapped.notes)


def test_bad_files_raise_invalid_input_and_store_nothing(store):
    for name in ["bad_pickle_global.pt", "bad_zip_bomb.keras", "bad_huge_shape.weights.h5", "bad_bidirectional.keras"]:
        with pytest.raises(statectl.StatectlError) as caught:
            store.import_model_file(FIXTURES / name, head="linear")
        assert "\n" not in str(caught.value)
    assert store.models() == []


def test_a_live_model_still_needs_a_name(store):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input(batch_shape=(1, 2, 1)), keras.layers.LSTM(2), keras.layers.Dense(1)])
    with pytest.raises(statectl.InvalidInputError, match="name the model"):
        sk.import_model(store, model)
