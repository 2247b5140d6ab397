"""PyTorch helpers: ``nn.LSTM``'s ``(h, c)`` and ``nn.GRU``'s ``h``
(``[num_layers, batch, units]``) in and out of a store, and an
``nn.LSTM``/``nn.GRU`` + ``nn.Linear`` pair imported as a statectl model.

Layer k of the recurrent module is statectl's ``l{k}.h`` (and ``l{k}.c``),
``[batch, units]``. Tensors are detached and moved to the CPU on the way
in; on the way out they are torch tensors sharing the arrays' memory
(``torch.from_numpy``), or numpy arrays when torch is not installed.

>>> from statectl import torch as st
>>> sid = st.put_state(store, (h, c), tag="actor3/seq120")
>>> h, c = st.get_state(store, "actor3/seq120")
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import InvalidInputError, LayoutMismatchError, ModelImported, Store


def _numpy(value: Any, what: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != 3:
        raise LayoutMismatchError(
            f"{what} has shape {tuple(array.shape)}; PyTorch's recurrent states are "
            f"[num_layers, batch, units]"
        )
    return array


def to_tensors(hidden: Any) -> dict[str, np.ndarray]:
    """``(h, c)`` (LSTM) or ``h`` (GRU) as statectl-named arrays."""
    if isinstance(hidden, (tuple, list)):
        if len(hidden) != 2:
            raise InvalidInputError(
                f"an LSTM state is a pair (h, c); got {len(hidden)} tensors"
            )
        h, c = _numpy(hidden[0], "h"), _numpy(hidden[1], "c")
        if h.shape != c.shape:
            raise LayoutMismatchError(f"h is {tuple(h.shape)} but c is {tuple(c.shape)}; they must match")
        parts = {"h": h, "c": c}
    else:
        parts = {"h": _numpy(hidden, "h")}
    tensors = {}
    for k in range(parts["h"].shape[0]):
        for name, array in parts.items():
            tensors[f"l{k}.{name}"] = array[k]
    return tensors


def _torch_or_numpy(array: np.ndarray):
    try:
        import torch
    except ImportError:
        return array
    return torch.from_numpy(array)


def from_tensors(tensors: dict[str, np.ndarray]) -> Any:
    """statectl-named arrays as ``(h, c)`` or ``h``, ``[num_layers, batch,
    units]`` (every layer must have the same width, as in one nn.LSTM)."""
    layers = sorted({int(name[1:].split(".")[0]) for name in tensors})
    names = ["h", "c"] if "l0.c" in tensors else ["h"]
    stacked = []
    for name in names:
        rows = [tensors.get(f"l{k}.{name}") for k in layers]
        if any(r is None for r in rows) or len({r.shape for r in rows}) != 1:
            raise LayoutMismatchError(
                f"the state's layers ({', '.join(tensors)}) do not stack into one "
                f"[num_layers, batch, units] tensor; layers of different widths are separate modules"
            )
        stacked.append(_torch_or_numpy(np.stack(rows)))
    return tuple(stacked) if len(stacked) == 2 else stacked[0]


def put_state(store: Store, hidden: Any, tag: str | None = None, *, force: bool = False) -> str:
    """Stores ``(h, c)`` or ``h``; returns the state id."""
    return store.put_state(to_tensors(hidden), tag, force=force)


def get_state(store: Store, ref: str = "HEAD", *, model: str | None = None, stream: str = "main") -> Any:
    """A stored state as ``(h, c)`` or ``h``."""
    return from_tensors(store.get_state(ref, model=model, stream=stream))


def weights(state_dict: dict[str, Any], *, head_prefix: str | None = None) -> dict[str, np.ndarray]:
    """A module's ``state_dict()`` (recurrent ``*.weight_ih_l0``, ... and a
    linear head's ``*.weight``/``*.bias``) as float32 arrays, the form
    ``statectl model import --layout torch`` reads. ``head_prefix`` keeps
    only that linear layer when the dict holds several."""
    out = {}
    for name, value in state_dict.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
        recurrent = any(part in name for part in ("weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"))
        if not recurrent and head_prefix is not None and not name.startswith(head_prefix):
            continue
        out[name] = array.astype(np.float32, copy=False)
    return out


def import_model(
    store: Store,
    state_dict: dict[str, Any] | str | os.PathLike,
    name: str | None = None,
    *,
    head: str | None = None,
    batch_size: int = 1,
    outputs: str = "last",
    head_prefix: str | None = None,
    force: bool = False,
) -> ModelImported:
    """Registers an ``nn.LSTM``/``nn.GRU`` + ``nn.Linear`` state dict as
    statectl model ``name``: a live ``state_dict()``, or the path of a
    ``torch.save`` file (read as data without torch; a checkpoint's
    ``state_dict`` entry is found). ``head`` is ``softmax`` or ``linear``
    (the ``nn.Linear``'s output, the default for a file)."""
    if isinstance(state_dict, (str, os.PathLike)):
        return store.import_model_file(
            state_dict, name=name, head=head, batch_size=batch_size, outputs=outputs, force=force
        )
    if name is None or head is None:
        raise InvalidInputError("name the model and its head: import_model(store, state_dict, name='...', head='softmax')")
    return store.import_model(
        weights(state_dict, head_prefix=head_prefix),
        name=name,
        head=head,
        layout="torch",
        batch_size=batch_size,
        outputs=outputs,
        force=force,
    )
