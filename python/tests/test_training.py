"""Training from Python: the same run as `statectl train` (same weights id
and final state), Ctrl-C stops it after a checkpoint and raises
KeyboardInterrupt, `resume` finishes it to the same bits, and bad settings
are refused before anything is written."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from safetensors.numpy import save_file

import statectl


def series(n: int = 400, steps: int = 8) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n * steps, dtype=np.float32) * 0.1
    x = np.sin(t).reshape(n, steps, 1).astype(np.float32)
    y = np.cos(np.arange(n, dtype=np.float32) * 0.37).reshape(n, 1).astype(np.float32)
    return x, y


SETTINGS = dict(units=(12,), batch_size=8, epochs=4, lr=2e-3, seed=3, checkpoint_every=7)


def test_python_training_is_the_clis_training(store, cli, tmp_path):
    x, y = series()
    seen = []
    trained = store.train(x, y, name="py", progress=seen.append, **SETTINGS)
    assert len(seen) == 4 * 50 and seen[-1]["epoch"] == 4 and seen[-1]["batches"] == 50
    assert trained.layout == "lstm:12" and len(trained.losses) == 4
    save_file({"x": x, "y": y}, str(tmp_path / "data.safetensors"))
    store.close()
    out = cli.json(
        "train", "--data", str(tmp_path / "data.safetensors"), "--units", "12", "--batch-size", "8",
        "--epochs", "4", "--lr", "2e-3", "--seed", "3", "--checkpoint-every", "7", "--name", "cli",
    )
    assert out["weights"] == trained.weights
    assert out["final_state"] == trained.final_state
    audit = cli.run("audit", "--train", "py").stdout.decode()
    assert "training of 'py': reproduced" in audit


def test_ctrl_c_checkpoints_raises_and_resume_gives_the_same_bits(store):
    x, y = series()
    alone = store.train(x, y, name="alone", **SETTINGS)

    def interrupt_at_batch_60(p):
        if (p["epoch"] - 1) * p["batches"] + p["batch"] == 60:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        store.train(x, y, name="stopped", progress=interrupt_at_batch_60, **SETTINGS)
    assert [m.model for m in store.models()] == ["alone"]
    resumed = store.resume("stopped")
    assert (resumed.weights, resumed.final_state, resumed.losses) == (
        alone.weights,
        alone.final_state,
        alone.losses,
    )
    assert store.verify().ok


def test_bad_training_settings_are_refused_and_write_nothing(store, store_path):
    x, y = series()
    with pytest.raises(statectl.StatectlError, match="a checkpoint every 0 batches"):
        store.train(x, y, name="m", checkpoint_every=0)
    with pytest.raises(statectl.StatectlError, match="cell='rnn' is not one of"):
        store.train(x, y, name="m", cell="rnn")
    with pytest.raises(statectl.StatectlError, match="no training run 'nope'"):
        store.resume("nope")
    for bad in ("../escape", "a/b", ""):
        with pytest.raises(statectl.StatectlError, match="cannot be a model name"):
            store.train(x, y, name=bad)
        with pytest.raises(statectl.StatectlError, match="cannot be a model name"):
            store.resume(bad)
    assert not (store_path / "escape.lock").exists()
    with pytest.raises(statectl.StatectlError, match=r"stateful training needs full batches.*x\[:8\]"):
        store.train(x[:13], y[:13], name="m", batch_size=8)
    assert store.models() == []
    assert not list((store_path / "runs").glob("*.lock")), "a refused train left its lock file"
    assert store.verify().ok


def test_keep_best_registers_the_best_epoch_as_the_cli_does(store, cli, store_path, tmp_path):
    from conftest import folder_digest

    x, y = series()
    settings = dict(SETTINGS, epochs=6, lr=2e-2, validation_split=0.2)
    trained = store.train(x, y, name="py", keep_best=True, **settings)
    best = trained.best
    lowest = min(trained.val_losses)
    assert best["epoch"] == trained.val_losses.index(lowest) + 1
    assert best["model"] == "py.best" and best["tag"] == "py/best"
    assert store.model("py.best").weights == best["weights"]
    assert store.get_state("py/best").id == best["state"]
    assert store.train(x, y, name="plain", **settings).best is None
    store.close()
    before = folder_digest(store_path)
    store = statectl.Store(store_path)
    with pytest.raises(statectl.StatectlError, match="chooses it by the validation loss"):
        store.train(x, y, name="m", keep_best=True, **SETTINGS)
    store.close()
    # Only the run's lock file (not store content) may appear.
    after = {k: v for k, v in folder_digest(store_path).items() if not k.startswith("runs/")}
    assert after == {k: v for k, v in before.items() if not k.startswith("runs/")}
    save_file({"x": x, "y": y}, str(tmp_path / "data.safetensors"))
    out = cli.json(
        "train", "--data", str(tmp_path / "data.safetensors"), "--units", "12", "--batch-size", "8",
        "--epochs", "6", "--lr", "2e-2", "--seed", "3", "--checkpoint-every", "7",
        "--validation-split", "0.2", "--keep-best", "--name", "cli",
    )
    assert out["best"]["weights"] == best["weights"] and out["best"]["epoch"] == best["epoch"]


def test_progress_tqdm_draws_a_bar_and_without_tqdm_says_how_to_get_it(store, capsys, monkeypatch):
    x, y = series()
    pytest.importorskip("tqdm", reason="tqdm is not installed in this venv")
    plain = store.train(x, y, name="plain", **SETTINGS)
    barred = store.train(x, y, name="barred", progress="tqdm", **SETTINGS)
    assert barred.weights == plain.weights
    drawn = capsys.readouterr().err
    assert "200/200" in drawn and "batch" in drawn, drawn
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)
    with pytest.raises(statectl.InvalidInputError, match="pip install tqdm"):
        store.train(x, y, name="m", progress="tqdm", **SETTINGS)
    with pytest.raises(statectl.InvalidInputError, match="pass a callable"):
        store.train(x, y, name="m", progress="bar", **SETTINGS)
    assert [m.model for m in store.models()] == ["plain", "barred"]


def test_resume_may_set_more_epochs_and_a_new_rate_which_the_record_keeps(store):
    x, y = series()
    six = store.train(x, y, name="six", **dict(SETTINGS, epochs=6))

    def interrupt_at_batch_60(p):
        if (p["epoch"] - 1) * p["batches"] + p["batch"] == 60:
            os.kill(os.getpid(), signal.SIGINT)

    for name in ("longer", "retuned"):
        with pytest.raises(KeyboardInterrupt):
            store.train(x, y, name=name, progress=interrupt_at_batch_60, **SETTINGS)
    longer = store.resume("longer", epochs=6)
    assert (longer.weights, longer.losses) == (six.weights, six.losses)
    retuned = store.resume("retuned", epochs=6, lr=5e-4)
    assert len(retuned.losses) == 6 and retuned.weights != six.weights
    train = store.model("retuned").to_dict()["training"]["train"]
    assert train["epochs"] == 6 and train["lr_changes"][0]["lr"] == 5e-4
    assert train["lr_changes"][0]["at_batch"] >= 60
    assert store.audit(train="retuned").training[0].status == "reproduced"


def test_validation_data_is_the_split_of_the_same_samples(store):
    x, y = series()
    split = store.train(x, y, name="split", validation_split=0.2, **SETTINGS)
    held = store.train(x[:320], y[:320], name="held", validation_data=(x[320:], y[320:]), **SETTINGS)
    assert (held.weights, held.val_losses) == (split.weights, split.val_losses)
    assert store.model("held").to_dict()["training"]["train"]["validation_samples"] == 80
    with pytest.raises(statectl.InvalidInputError, match="give samples of the same shape"):
        store.train(x[:320], y[:320], name="m", validation_data=(x[320:, :4], y[320:]), **SETTINGS)
    with pytest.raises(statectl.InvalidInputError, match="must be a tuple"):
        store.train(x[:320], y[:320], name="m", validation_data=[x[320:], y[320:]], **SETTINGS)
