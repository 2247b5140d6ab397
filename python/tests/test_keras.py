"""The study's five cases from Python against a live Keras 3 stateful
model: states read from the layer into the store, restored, broadcast,
reset and put back into the layer; Keras's predictions and statectl's
agree within 1e-6, and statectl's hold bit for bit."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

import statectl
from statectl import keras as sk

import keras  # noqa: E402  (after the log level is set)

TOL = 1e-6


def alphabet():
    """27 letters A..Z,A: windows of 3 letter indices / 27 -> the next."""
    letters = list(range(26)) + [0]
    x = np.array([[letters[i + k] for k in range(3)] for i in range(24)], np.float32)[..., None] / 27
    y = np.array([letters[i + 3] for i in range(24)])
    return x, y


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(batch_shape=(6, 3, 1)),
        keras.layers.LSTM(16, stateful=True),
        keras.layers.Dense(27, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    x, y = alphabet()
    model.fit(x, y, batch_size=6, epochs=2, shuffle=False, verbose=0)
    return model


def keras_state_matches(model, store, ref):
    stored = store.get_state(ref)
    live = sk.read_state(model)
    assert set(live) == set(stored)
    for name in live:
        np.testing.assert_allclose(live[name], stored[name], rtol=0, atol=TOL)


def test_the_five_cases_against_a_live_keras_model(trained, store):
    model = trained
    sk.import_model(store, model, "keras-lstm")
    # The state training left, read from the layer into the store.
    sid = sk.put_state(store, model, tag="trained")
    np.testing.assert_array_equal(store.get_state("trained")["l0.h"], model.layers[0].states[0].numpy())
    store.restore("trained", model="keras-lstm")
    x = np.repeat(alphabet()[0][:1], 6, axis=0)

    def both():
        k = np.asarray(model.predict_on_batch(x))
        s = store.predict(x, model="keras-lstm")
        np.testing.assert_allclose(s.outputs, k, rtol=0, atol=TOL)
        keras_state_matches(model, store, s.state_after)
        return s

    # 1: keep the state training left: six different rows.
    case1 = both()
    assert len({row.tobytes() for row in case1.outputs}) == 6
    # 2: again, no reset: it moved on.
    case2 = both()
    assert not np.array_equal(case2.outputs, case1.outputs)
    # 3: restore the case-1 state in both: bit-identical to case 1.
    store.restore("trained", model="keras-lstm")
    sk.load_state(store, model, "trained")
    case3 = both()
    np.testing.assert_array_equal(case3.outputs, case1.outputs)
    assert case3.state_after == case1.state_after
    # 4: reset to zeros in both: six identical rows.
    store.reset(model="keras-lstm")
    model.layers[0].reset_states()
    keras_state_matches(model, store, store.show(model="keras-lstm")["state"])
    case4 = both()
    assert all(np.array_equal(row, case4.outputs[0]) for row in case4.outputs)
    # 5: every slot := slot 0 of the case-1 state, put back into the
    # layer from the store: every row is case 1's row 0, bit for bit.
    store.restore("trained", model="keras-lstm", slot=0)
    sk.load_state(store, model, "HEAD", statectl_model="keras-lstm")
    case5 = both()
    for row in case5.outputs:
        np.testing.assert_array_equal(row, case1.outputs[0])
    assert store.get_state("trained").id == sid
    assert store.audit(model="keras-lstm")["reproduced"] == 5


def test_a_state_of_the_wrong_shape_is_refused_before_the_layer_changes(trained, store):
    before = sk.read_state(trained)
    store.put_state({"l0.h": np.ones((2, 16), np.float32), "l0.c": np.ones((2, 16), np.float32)}, tag="small")
    with pytest.raises(statectl.LayoutMismatchError, match="batch_size=6"):
        sk.load_state(store, trained, "small")
    store.put_state({"l0.h": np.ones((6, 16), np.float32)}, tag="gru-like")
    with pytest.raises(statectl.LayoutMismatchError, match="l0.c"):
        sk.load_state(store, trained, "gru-like")
    for name, value in sk.read_state(trained).items():
        np.testing.assert_array_equal(value, before[name])


def test_a_stacked_gru_with_per_step_outputs(store):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input(batch_shape=(3, 5, 2)),
        keras.layers.GRU(7, stateful=True, return_sequences=True),
        keras.layers.GRU(4, stateful=True, return_sequences=True),
        keras.layers.Dense(2),
    ])
    sk.import_model(store, model, "gru")
    rng = np.random.default_rng(11)
    for _ in range(2):
        x = rng.standard_normal((3, 5, 2)).astype(np.float32)
        k = np.asarray(model.predict_on_batch(x))
        s = store.predict(x, model="gru")
        assert s.outputs.shape == (3, 5, 2) and s.logits is None
        np.testing.assert_allclose(s.outputs, k, rtol=0, atol=TOL)
        keras_state_matches(model, store, s.state_after)


@pytest.mark.parametrize(
    "layers, message",
    [
        (lambda: [keras.layers.Bidirectional(keras.layers.LSTM(4)), keras.layers.Dense(2)],
         r"layer 'bidirectional\w*' \(Bidirectional\) cannot be represented: it also runs its layer backwards"),
        (lambda: [keras.layers.LSTM(4), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)],
         r"the model has 2 Dense layers \('dense\w*', 'dense\w*'\); statectl runs one Dense head"),
        (lambda: [keras.layers.GRU(4, reset_after=False), keras.layers.Dense(2)],
         r"layer 'gru\w*' \(GRU\) has reset_after=False"),
        (lambda: [keras.layers.LSTM(4), keras.layers.Dense(2, activation="tanh")],
         r"the Dense head layer 'dense\w*' \(Dense\) has activation 'tanh'"),
    ],
    ids=["bidirectional", "two dense layers", "gru reset_after=False", "tanh head"],
)
def test_a_model_statectl_cannot_run_is_refused_naming_the_layer(store, layers, message):
    model = keras.Sequential([keras.Input(shape=(3, 1)), *layers()])
    with pytest.raises(statectl.InvalidInputError, match=message):
        sk.import_model(store, model, "m")
    assert store.models() == []
