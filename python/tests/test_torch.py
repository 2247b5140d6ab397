"""PyTorch's (h, c) in and out of the store, on numpy arrays shaped as
PyTorch's ([num_layers, batch, units]); test_torch_live.py runs the same
helpers against a live nn.LSTM / nn.GRU where torch is installed."""

from __future__ import annotations

import numpy as np
import pytest

import statectl
from statectl import torch as st
from conftest import Cli


def test_hc_tuples_round_trip_with_numpy(store):
    rng = np.random.default_rng(12)
    h = rng.standard_normal((2, 5, 8)).astype(np.float32)  # [num_layers, batch, units]
    c = rng.standard_normal((2, 5, 8)).astype(np.float32)
    sid = st.put_state(store, (h, c), tag="hc")
    back = store.get_state("hc")
    assert back.id == sid and sorted(back) == ["l0.c", "l0.h", "l1.c", "l1.h"]
    np.testing.assert_array_equal(back["l1.c"], c[1])
    h2, c2 = st.from_tensors(back)
    np.testing.assert_array_equal(np.asarray(h2), h)
    np.testing.assert_array_equal(np.asarray(c2), c)
    gru_h = rng.standard_normal((1, 3, 4)).astype(np.float32)
    st.put_state(store, gru_h, tag="gru")
    np.testing.assert_array_equal(np.asarray(st.get_state(store, "gru")), gru_h)


def test_bad_torch_shaped_input(store):
    with pytest.raises(statectl.LayoutMismatchError, match="num_layers, batch, units"):
        st.put_state(store, (np.zeros((5, 8), np.float32), np.zeros((5, 8), np.float32)))
    with pytest.raises(statectl.LayoutMismatchError, match="must match"):
        st.put_state(store, (np.zeros((1, 5, 8), np.float32), np.zeros((1, 4, 8), np.float32)))
    with pytest.raises(statectl.InvalidInputError, match="pair"):
        st.put_state(store, (np.zeros((1, 5, 8), np.float32),) * 3)
    store.put_state({"l0.h": np.zeros((2, 3), np.float32), "l1.h": np.zeros((2, 5), np.float32)}, tag="uneven")
    with pytest.raises(statectl.LayoutMismatchError, match="different widths"):
        st.get_state(store, "uneven")
