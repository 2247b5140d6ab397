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

import os
from typing import Any

import numpy as np

from . import InvalidInputError, LayoutMismatchError, ModelImported, State, Store


def _keras():
    import keras  # imported here: statectl itself does not need Keras

    return keras


# Layers statectl cannot run, and why, by class name.
_WHY_NOT = {
    "Bidirectional": "it also runs its layer backwards over the sequence, and statectl carries state forwards only",
    "SimpleRNN": "statectl runs LSTM and GRU cells",
    "ConvLSTM1D": "statectl runs dense LSTM and GRU cells",
    "ConvLSTM2D": "statectl runs dense LSTM and GRU cells",
    "Embedding": "statectl reads float inputs [batch, steps, features]; feed it the embedded vectors",
    "TimeDistributed": "statectl's head is one Dense layer (outputs='sequence' puts it at every step)",
}

# Layers that compute nothing at inference, or only pass the input on.
_PASS_THROUGH = ("InputLayer", "Dropout", "SpatialDropout1D", "GaussianNoise")


def _describe(layer: Any) -> str:
    return f"layer '{layer.name}' ({type(layer).__name__})"


def _check_representable(model: Any) -> None:
    """Refuses, naming the layer and why, a model that is not LSTM/GRU
    layers followed by one Dense head."""
    keras = _keras()
    dense = []
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.GRU) and not getattr(layer, "reset_after", True):
            raise InvalidInputError(
                f"{_describe(layer)} has reset_after=False; statectl runs Keras 3's default GRU "
                f"(reset_after=True, PyTorch's formula)"
            )
        if isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            if dense:
                raise InvalidInputError(
                    f"{_describe(layer)} comes after the Dense {_describe(dense[0])}; statectl runs "
                    f"LSTM/GRU layers followed by one Dense head"
                )
            continue
        if isinstance(layer, keras.layers.Dense):
            dense.append(layer)
            continue
        if kind in _PASS_THROUGH:
            continue
        why = _WHY_NOT.get(kind, "statectl runs LSTM/GRU layers followed by one Dense head")
        raise InvalidInputError(f"{_describe(layer)} cannot be represented: {why}")
    if len(dense) > 1:
        names = ", ".join(f"'{d.name}'" for d in dense)
        raise InvalidInputError(
            f"the model has {len(dense)} Dense layers ({names}); statectl runs one Dense head "
            f"after the recurrent layers, so a Dense layer before the head cannot be represented"
        )


def recurrent_layers(model: Any) -> list:
    """The model's LSTM and GRU layers, in order."""
    keras = _keras()
    layers = [l for l in model.layers if isinstance(l, (keras.layers.LSTM, keras.layers.GRU))]
    if not layers:
        _check_representable(model)
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


def import_model(store: Store, model: Any, name: str | None = None, *, force: bool = False) -> ModelImported:
    """Registers a Keras model as statectl model ``name``: a live model, or
    the path of a ``.keras`` file (read without Keras: ``name`` defaults to
    the file's name). Head from the Dense activation, outputs from
    ``return_sequences``, batch size from the model's input. ``force``
    replaces a model of that name (re-running a notebook cell)."""
    if isinstance(model, (str, os.PathLike)):
        return store.import_model_file(model, name=name, force=force)
    if name is None:
        raise InvalidInputError("name the model: import_model(store, model, name='...')")
    keras = _keras()
    _check_representable(model)
    dense = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    if not dense:
        raise InvalidInputError("the model has no Dense head; statectl runs LSTM/GRU layers followed by one Dense head")
    activation = getattr(dense[0].activation, "__name__", "")
    heads = {"softmax": "softmax", "linear": "linear"}
    if activation not in heads:
        raise InvalidInputError(
            f"the Dense head {_describe(dense[0])} has activation '{activation}'; statectl runs "
            f"softmax or linear heads"
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
