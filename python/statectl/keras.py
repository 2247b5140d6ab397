"""Keras 3 helpers: a stateful model's recurrent state in and out of a
store, and its weights imported as a statectl model.

A model here is a ``keras.Sequential`` (or functional) model whose
recurrent layers are ``LSTM``/``GRU`` with ``stateful=True`` followed by
one ``Dense`` head, the shape statectl runs. Recurrent layers are counted
in order: the first one's state is ``l0.h`` (and ``l0.c``), the next
``l1.*``.

>>> from statectl import keras as sk
>>> sid = sk.put_state(store, model, tag="epoch-3")   # layer state -> store
>>> sk.load_state(store, model, "epoch-3")            # store -> layer state
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import InvalidInputError, LayoutMismatchError, ModelImported, State, Store


def _keras():
    import keras  # imported here: statectl itself does not need Keras

    return keras


def recurrent_layers(model: Any) -> list:
    """The model's LSTM and GRU layers, in order."""
    keras = _keras()
    layers = [l for l in model.layers if isinstance(l, (keras.layers.LSTM, keras.layers.GRU))]
    if not layers:
        raise InvalidInputError("the model has no LSTM or GRU layer")
    return layers


def _tensor_names(layer: Any) -> list[str]:
    return ["h", "c"] if isinstance(layer, _keras().layers.LSTM) else ["h"]


def _state_variables(layer: Any) -> list:
    states = getattr(layer, "states", None)
    if not getattr(layer, "stateful", False) or not states or states[0] is None:
        raise InvalidInputError(
            f"layer '{layer.name}' keeps no state between calls; build it with "
            f"stateful=True and a fixed batch size (keras.Input(batch_shape=...))"
        )
    return list(states)


def read_state(model: Any) -> dict[str, np.ndarray]:
    """The current state of every recurrent layer, as statectl names it."""
    tensors = {}
    for k, layer in enumerate(recurrent_layers(model)):
        for name, variable in zip(_tensor_names(layer), _state_variables(layer)):
            tensors[f"l{k}.{name}"] = np.asarray(variable.numpy(), dtype=np.float32)
    return tensors


def write_state(model: Any, tensors: dict[str, np.ndarray]) -> None:
    """Sets every recurrent layer's state from statectl-named tensors;
    refuses (changing nothing) when a tensor is missing or mis-shaped."""
    plan = []
    for k, layer in enumerate(recurrent_layers(model)):
        for name, variable in zip(_tensor_names(layer), _state_variables(layer)):
            key = f"l{k}.{name}"
            if key not in tensors:
                raise LayoutMismatchError(
                    f"the state has no '{key}' for layer '{layer.name}' (it has {', '.join(tensors)}); "
                    f"pick a state made for this model"
                )
            value = np.asarray(tensors[key], dtype=np.float32)
            if tuple(value.shape) != tuple(variable.shape):
                raise LayoutMismatchError(
                    f"'{key}' is {tuple(value.shape)} but layer '{layer.name}' holds "
                    f"{tuple(variable.shape)}; restore it with batch_size={variable.shape[0]} "
                    f"or pick a state made for this model"
                )
            plan.append((variable, value))
    for variable, value in plan:
        variable.assign(value)


def put_state(store: Store, model: Any, tag: str | None = None, *, force: bool = False) -> str:
    """Stores the model's current recurrent state; returns its id."""
    return store.put_state(read_state(model), tag, force=force)


def load_state(
    store: Store, model: Any, ref: str = "HEAD", *, stream: str = "main", statectl_model: str | None = None
) -> State:
    """Puts a stored state (a tag, an id, or a stream's ``HEAD``) into the
    model's layers; returns it."""
    state = store.get_state(ref, model=statectl_model, stream=stream)
    write_state(model, state)
    return state


def weights(model: Any) -> dict[str, np.ndarray]:
    """The model's weights under Keras names (``<layer>/kernel``, ...), the
    form ``statectl model import --layout keras`` reads."""
    keras = _keras()
    tensors = {}
    for layer in recurrent_layers(model):
        cell = layer.cell
        for part in ("kernel", "recurrent_kernel", "bias"):
            tensors[f"{layer.name}/{part}"] = np.asarray(getattr(cell, part).numpy(), dtype=np.float32)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    if len(dense) != 1:
        raise InvalidInputError(f"statectl runs recurrent layers and one Dense head; this model has {len(dense)} Dense layers")
    for part in ("kernel", "bias"):
        tensors[f"{dense[0].name}/{part}"] = np.asarray(getattr(dense[0], part).numpy(), dtype=np.float32)
    return tensors


def import_model(store: Store, model: Any, name: str, *, force: bool = False) -> ModelImported:
    """Registers the live model's weights as statectl model ``name``: head
    from the Dense activation, outputs from ``return_sequences``, batch
    size from the model's input. ``force`` replaces a model of that name
    (re-running a notebook cell)."""
    keras = _keras()
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    activation = getattr(dense[0].activation, "__name__", "") if dense else ""
    heads = {"softmax": "softmax", "linear": "linear"}
    if activation not in heads:
        raise InvalidInputError(
            f"the Dense head's activation is '{activation}'; statectl runs softmax or linear heads"
        )
    layers = recurrent_layers(model)
    batch = model.inputs[0].shape[0] if model.inputs else None
    return store.import_model(
        weights(model),
        name=name,
        head=heads[activation],
        layout="keras",
        batch_size=int(batch or 1),
        outputs="sequence" if layers[-1].return_sequences else "last",
        layers=[l.name for l in layers],
        force=force,
    )
