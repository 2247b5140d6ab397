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


def test_keras_saves_statectl_trains_exports_and_keras_predicts_the_same(tmp_path, cli):
    """A model saved by Keras, imported, trained a few batches by statectl,
    exported as .keras and loaded by Keras predicts what statectl predicts,
    from zeros and from the state training left."""
    keras = pytest.importorskip("keras")
    from safetensors.numpy import save_file

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(3, 5, 2)),
            keras.layers.LSTM(8, return_sequences=True, stateful=True),
            keras.layers.LSTM(6, stateful=True),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    saved = tmp_path / "saved.keras"
    model.save(saved)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 5, 2)).astype(np.float32)
    data = tmp_path / "data.safetensors"
    save_file({"x": x, "y": rng.integers(0, 4, 9).astype(np.float32)}, data)
    cli.run("model", "import", str(saved), "--name", "saved")
    cli.run(
        "train", "--from", "saved", "--data", str(data), "--batch-size", "3", "--epochs", "2",
        "--no-shuffle", "--name", "tuned",
    )
    exported = tmp_path / "tuned.keras"
    cli.run("model", "export", "tuned", "--format", "keras", "-o", str(exported))
    back = keras.models.load_model(exported)
    assert [type(l).__name__ for l in back.layers] == ["LSTM", "LSTM", "Dense"]
    assert all(l.stateful for l in back.layers[:2])

    probe = x[:3]
    probe_file = tmp_path / "probe.safetensors"
    save_file({"x": probe}, probe_file)
    # From the state training left (statectl's HEAD of `main`).
    head = tmp_path / "head.safetensors"
    cli.run("export", "HEAD", "--model", "tuned", "-o", str(head))
    state = load_file(head)
    for k, layer in enumerate(back.layers[:2]):
        layer.states[0].assign(state[f"l{k}.h"])
        layer.states[1].assign(state[f"l{k}.c"])
    ours = np.asarray(cli.json("predict", "--model", "tuned", "--input", str(probe_file), "--no-advance")["outputs"])
    theirs = np.asarray(back.predict_on_batch(probe))
    assert np.abs(ours - theirs).max() < 1e-6
    # And from zeros.
    cli.run("reset", "--model", "tuned")
    for layer in back.layers[:2]:
        layer.reset_states()
    ours = np.asarray(cli.json("predict", "--model", "tuned", "--input", str(probe_file))["outputs"])
    theirs = np.asarray(back.predict_on_batch(probe))
    assert np.abs(ours - theirs).max() < 1e-6
    # The file statectl wrote reads back as the same weights.
    again = cli.json("model", "import", str(exported), "--name", "again")
    assert again["weights"] == cli.json("model", "show", "tuned")["weights"]


def test_the_readme_snippet_loads_an_export_into_torch(tmp_path, cli):
    """The README's lines that load statectl's safetensors export into
    nn.LSTM + nn.Linear give PyTorch's own prediction."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed in this venv")
    import re

    from conftest import ROOT

    from conftest import documentation

    readme = documentation()
    start = readme.index("For PyTorch, the safetensors export loads")
    block = re.search(r"```python\n(.*?)```", readme[start:], re.S).group(1)
    block = "\n".join(line[2:] if line.startswith("  ") else line for line in block.splitlines())
    cli.run("model", "import", str(FIXTURES / "torch_checkpoint.pt"), "--name", "policy")
    cli.run("model", "export", "policy", "-o", str(tmp_path / "policy.safetensors"))
    namespace: dict = {}
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(block, namespace)
    finally:
        os.chdir(here)
    expected = {k: torch.from_numpy(v) for k, v in load_file(FIXTURES / "torch_checkpoint.expected.safetensors").items()}
    with torch.no_grad():
        out, _ = namespace["rnn"](expected["x"], (expected["l0.h"][None], expected["l0.c"][None]))
        y = namespace["head"](out[:, -1])
    assert (y - expected["y"]).abs().max().item() < 1e-6


def test_argument_errors_speak_python_not_cli_flags(store):
    """An import's argument errors name keyword arguments, not CLI flags,
    and are InvalidInputError (a ValueError)."""
    tensors = load_file(FIXTURES / "torch_gru.torch_layout.safetensors")
    with pytest.raises(statectl.InvalidInputError) as missing:
        store.import_model(tensors, name="g")
    assert "head='softmax'" in str(missing.value) and "head='linear'" in str(missing.value)
    assert "--" not in str(missing.value)
    with pytest.raises(ValueError) as contradicts:
        store.import_model_file(FIXTURES / "lstm_stacked.keras", head="linear")
    text = str(contradicts.value)
    assert "head='linear' disagrees with the file" in text and "leave head out" in text, text
    with pytest.raises(statectl.InvalidInputError) as batch:
        store.import_model_file(FIXTURES / "lstm_stacked.keras", batch_size=5)
    assert "batch_size=5 disagrees" in str(batch.value), str(batch.value)
    assert store.models() == []
