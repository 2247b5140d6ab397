"""A live nn.LSTM / nn.GRU + nn.Linear against statectl: weights imported
from the state dict, (h, c) stored and restored, predictions and states
within 1e-5, the prediction auditing. Runs where torch is installed; CI
does not install it (PyPI's build brings CUDA libraries, 5 GB), so there
test_torch.py covers the same conversions on numpy arrays."""

from __future__ import annotations

import numpy as np
import pytest

from statectl import torch as st
from conftest import Cli

torch = pytest.importorskip("torch", reason="torch is not installed (CI leaves it out: 5 GB of CUDA wheels)")


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_live_torch_module_predicts_as_statectl_does(store, store_path, cell):
    torch.manual_seed(0)
    rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(3, 12, num_layers=2, batch_first=True)
    head = torch.nn.Linear(12, 4)
    weights = {**{f"rnn.{k}": v for k, v in rnn.state_dict().items()}, **{f"head.{k}": v for k, v in head.state_dict().items()}}
    st.import_model(store, weights, "t", head="linear", batch_size=5)
    x = torch.randn(5, 6, 3)
    h0 = torch.randn(2, 5, 12)
    hidden = (h0, torch.randn(2, 5, 12)) if cell == "lstm" else h0
    st.put_state(store, hidden, tag="start")
    store.restore("start", model="t")
    with torch.no_grad():
        seq, after = rnn(x, hidden)
        expected = head(seq[:, -1]).numpy()
    got = store.predict(x.numpy(), model="t")
    np.testing.assert_allclose(got.outputs, expected, rtol=0, atol=1e-5)
    back = st.get_state(store, got.state_after)
    for ours, theirs in zip(back if cell == "lstm" else (back,), after if cell == "lstm" else (after,)):
        assert isinstance(ours, torch.Tensor)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=0, atol=1e-5)
    assert Cli(store_path).json("audit", "--model", "t")["ok"] is True
