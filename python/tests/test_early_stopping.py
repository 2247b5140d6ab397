"""Validation and early stopping against a live Keras 3 run: the same
initial weights, `validation_split=0.2` and `EarlyStopping(patience=3)`
in Keras's `fit`, and `statectl train --from ... --validation-split 0.2
--patience 3`: the same epoch stops, and the validation losses agree
within 1e-5. A stateless model with the data in order, so both sides see
the same batches."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from safetensors.numpy import save_file

from statectl import keras as sk

import keras  # noqa: E402  (after the log level is set)


def test_validation_loss_and_early_stop_match_keras(store, cli, tmp_path):
    rng = np.random.default_rng(5)
    n, steps = 60, 5
    x = rng.standard_normal((n, steps, 2)).astype(np.float32)
    y = (x[:, -1, :1] * 0.5 + x[:, 0, 1:] * 0.3 + 0.05 * rng.standard_normal((n, 1))).astype(np.float32)
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input(batch_shape=(6, steps, 2)),
        keras.layers.LSTM(8),
        keras.layers.Dense(1),
    ])
    sk.import_model(store, model, "start")
    store.close()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)
    history = model.fit(
        x, y, batch_size=6, epochs=60, shuffle=False, validation_split=0.2, callbacks=[stop], verbose=0
    ).history
    assert len(history["loss"]) < 60, "the problem must stop early for the comparison to mean anything"

    save_file({"x": x, "y": y}, str(tmp_path / "data.safetensors"))
    out = cli.json(
        "train", "--data", str(tmp_path / "data.safetensors"), "--from", "start", "--batch-size", "6",
        "--epochs", "60", "--lr", "0.05", "--no-shuffle", "--no-stateful", "--validation-split", "0.2",
        "--patience", "3", "--name", "tuned",
    )
    print(f"stopped after epoch {out['stopped_early']} (Keras {len(history['loss'])}); largest validation-loss difference {np.max(np.abs(np.array(out['val_losses']) - history['val_loss'])):.2e}")
    assert out["stopped_early"] == len(history["loss"])
    np.testing.assert_allclose(out["val_losses"], history["val_loss"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["losses"], history["loss"], atol=1e-5, rtol=0)
    assert "training of 'tuned': reproduced" in cli.run("audit", "--train", "tuned").stdout.decode()
