"""statectl in-process: the hidden state of stateful recurrent networks as
versioned, verifiable objects, in the same store the ``statectl`` CLI uses.

>>> import numpy as np, statectl
>>> store = statectl.Store("runs/.statectl", create=True)
>>> sid = store.put_state({"l0.h": h, "l0.c": c}, tag="after-epoch-3")
>>> store.get_state("after-epoch-3")["l0.h"]

States go in and come out as dicts of float32 numpy arrays named as in
state files (``l0.h``, ``l0.c``, ``l1.h``, ... each ``[batch, units]``).
Ids are the CLI's: a state put from Python has the id ``statectl import``
gives the same values, and a prediction made here audits with
``statectl audit``. Reports (``log``, ``show``, ``diff``, ``audit``,
``verify``, ...) are typed objects whose ``to_dict()`` is the CLI's
``--json`` value for the same call. Every failure raises a
:class:`StatectlError` subclass. Calls release the GIL while they work, and one
:class:`Store` may be shared by several threads.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from . import _native, _reports
from ._reports import (
    AuditReport,
    BurnedState,
    DiffReport,
    GcReport,
    LogReport,
    ModelDetail,
    ModelImported,
    ModelSummary,
    ShowReport,
    TagInfo,
    TrainedModel,
    VerifyReport,
)
from ._native import (
    AmbiguousError,
    ClosedStoreError,
    ConflictError,
    CorruptError,
    InheritedStoreError,
    LayoutMismatchError,
    NoStoreError,
    NotFoundError,
    StatectlError,
    StoreIOError,
    StoreTooNewError,
    StreamMovedError,
)

__version__ = _native.__version__

__all__ = [
    "Store",
    "SharedStore",
    "State",
    "StateBatch",
    "Prediction",
    "Forward",
    "AuditReport",
    "BurnedState",
    "DiffReport",
    "GcReport",
    "LogReport",
    "ModelDetail",
    "ModelImported",
    "ModelSummary",
    "ShowReport",
    "TagInfo",
    "TrainedModel",
    "VerifyReport",
    "StatectlError",
    "InvalidInputError",
    "NotFoundError",
    "AmbiguousError",
    "LayoutMismatchError",
    "StoreTooNewError",
    "NoStoreError",
    "CorruptError",
    "StreamMovedError",
    "ConflictError",
    "StoreIOError",
    "ClosedStoreError",
    "InheritedStoreError",
]


class InvalidInputError(StatectlError, ValueError):
    """An argument of the wrong type, dtype or form (checked before the
    store is touched)."""


class _Tensors(dict):
    """State tensors by name (``l0.h`` -> ``[batch, units]`` float32)."""

    @property
    def batch(self) -> int:
        return next(iter(self.values())).shape[0]

    def _shapes(self) -> str:
        return "{" + ", ".join(f"{k}: {tuple(v.shape)}" for k, v in self.items()) + "}"


class State(_Tensors):
    """A stored state: its tensors by name (``l0.h`` -> ``[batch, units]``
    float32 arrays), and its id."""

    id: str

    def __init__(self, state_id: str, tensors: Mapping[str, np.ndarray]):
        super().__init__(tensors)
        self.id = state_id

    def __repr__(self) -> str:
        return f"State({self.id[:12]}, {self._shapes()})"


class StateBatch(_Tensors):
    """Several stored states stacked into one batch: tensors by name
    (``l0.h`` -> ``[rows, units]`` float32 arrays, the states' slots in the
    order asked for), and the id of each state (``ids``)."""

    ids: list[str]

    def __repr__(self) -> str:
        return f"StateBatch({len(self.ids)} states, {self._shapes()})"


class Prediction(NamedTuple):
    """A recorded prediction: what the model output and which states and
    journal entry it left."""

    outputs: np.ndarray
    """``[batch, out]`` (or ``[batch, steps, out]`` for per-step outputs);
    probabilities for a softmax head."""
    logits: np.ndarray | None
    """The head's pre-softmax values (``None`` for a linear head)."""
    state_before: str
    state_after: str
    event: int
    model: str
    input: str
    """Id of the recorded input object."""
    output: str
    """Id of the recorded output object."""
    created_stream: bool = False
    """The stream did not exist before this prediction (it started at zeros)."""


class Forward(NamedTuple):
    """What :meth:`Store.forward` computed; nothing of it is recorded."""

    outputs: np.ndarray
    """``[batch, out]`` (or ``[batch, steps, out]``); probabilities for a
    softmax head."""
    logits: np.ndarray | None
    """The head's pre-softmax values (``None`` for a linear head)."""
    state: dict[str, np.ndarray]
    """The new state, ``l0.h`` (and ``l0.c``), ... as ``[batch, units]``:
    pass it to the next ``forward``, or store it with ``put_state``."""


def _float32(name: str, value: Any) -> np.ndarray:
    """A C-ordered float32 array of ``value``, refusing other dtypes: a
    state's id is the hash of its float32 bytes, so a silent conversion
    would store something other than what the caller holds."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype != np.float32:
        raise InvalidInputError(
            f"'{name}' has dtype {array.dtype}; statectl stores and computes in "
            f"float32: pass {name}.astype(numpy.float32) (float64 values are "
            f"rounded by that, and the id is that of the rounded values)"
        )
    # C order and f32 alignment (copies only arrays that lack them).
    return np.require(array, requirements=["C", "A"])


def _arrays(tensors: Any, what: str) -> list[tuple[str, np.ndarray]]:
    if not isinstance(tensors, Mapping):
        raise InvalidInputError(
            f"{what} must be a dict of numpy arrays named as in state files "
            f"(l0.h, l0.c, ...), not {type(tensors).__name__}"
        )
    out = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise InvalidInputError(f"{what}: tensor names must be strings, not {name!r}")
        out.append((name, _float32(name, value)))
    if not out:
        raise InvalidInputError(f"{what} is empty; give l0.h (and l0.c for an LSTM), ...")
    return out


_FLOAT32 = np.dtype(np.float32)


def _array(buffer, shape) -> np.ndarray:
    """A float32 array of `shape` over `buffer` (no copy; writable when the
    buffer is): one constructor call, a third of frombuffer + reshape's
    cost, which shows in get_state's per-call time."""
    return np.ndarray(shape, _FLOAT32, buffer)


def _tensors(pairs) -> dict[str, np.ndarray]:
    return {name: _array(buffer, shape) for name, shape, buffer in pairs}


def _slot_index(name: str, value: Any) -> None:
    """A batch slot index: a non-negative int (checked before the store is
    touched)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0):
            raise InvalidInputError(f"{name} must be a batch slot index (an int from 0), got {v!r}")


def _state_batch(ids: list[str], pairs) -> StateBatch:
    """A StateBatch from the native layer's ids and (name, shape, buffer)."""
    batch = StateBatch.__new__(StateBatch)
    for name, shape, buffer in pairs:
        batch[name] = _array(buffer, shape)
    batch.ids = ids
    return batch


def _row_tags(tags: Sequence[str] | None) -> list[str] | None:
    """``put_states``'s tags: one name per row, as strings."""
    if tags is None:
        return None
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise InvalidInputError("tags must be a list of names, one per row")
    return [str(t) for t in tags]


def _is_shared_url(path) -> bool:
    return isinstance(path, str) and path.startswith(("postgres://", "postgresql://"))


def _diff_inputs(inputs, tolerance):
    """``diff``'s inputs as float32, its tolerance checked."""
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise InvalidInputError(f"tolerance must be a number from 0, got {tolerance!r}")
    return None if inputs is None else _float32("inputs", inputs)


def _burn_in(native, refs, x, model, per_slot, tag, tag_prefix, force, tag_by) -> list[BurnedState]:
    """Burn-in through a local or a shared store's native half."""
    refs = [refs] if isinstance(refs, str) else [str(r) for r in refs]
    text = native.burn_in(refs, _float32("x", x), model, per_slot, tag, tag_prefix, force, tag_by)
    return [_reports.BurnedState.from_json(s) for s in json.loads(text)["states"]]


def _prediction(r: dict) -> Prediction:
    """A Prediction from the native layer's dict."""
    shape = tuple(r["shape"])
    logits = r["logits"]
    return Prediction(
        outputs=_array(r["outputs"], shape),
        logits=None if logits is None else _array(logits, shape),
        state_before=r["state_before"],
        state_after=r["state_after"],
        event=r["event"],
        model=r["model"],
        input=r["input"],
        output=r["output"],
        created_stream=r["created_stream"],
    )


def _restore(native, ref, model, stream, slot, slots, batch_size) -> str:
    _slot_index("slot", slot)
    _slot_index("slots", slots)
    if slot is not None and slots is not None:
        raise InvalidInputError("pass slot (one slot broadcast) or slots (a selection), not both")
    _batch_size(batch_size)
    text = native.restore(
        str(ref), model, stream, slot, None if slots is None else [int(s) for s in slots], batch_size
    )
    return _reports.parse(_reports.StreamSet, text).state


def _reset(native, model, stream, batch_size) -> str:
    _batch_size(batch_size)
    return _reports.parse(_reports.StreamSet, native.reset(model, stream, batch_size)).state


def _audit(native, model, stream, events, since, tag, tolerance, train, allow_empty) -> AuditReport:
    train_arg = "" if train is True else (str(train) if train else None)
    events = [] if events is None else [int(e) for e in events]
    text = native.audit(model, stream, events, since, tag, tolerance, train_arg, allow_empty)
    return _reports.parse(AuditReport, text)


class SharedStore:
    """A shared store on PostgreSQL (``postgres://USER@HOST/DB``), used
    without a local store: actors write states straight to it, learners
    read them by tag or full id (every slot re-hashed against its id), no
    push or pull. ``statectl.Store(url)`` opens one too. Each write is one
    transaction on the server: acknowledged whole, or not at all.

    ``cache_bytes`` keeps up to that many bytes of what reads read (state
    rows and slots, by id: content-addressed, so never stale); a repeated
    read then asks the server only for its tags."""

    def __init__(self, url: str, *, cache_bytes: int = 0):
        if type(cache_bytes) is not int or cache_bytes < 0:
            raise InvalidInputError(f"cache_bytes={cache_bytes!r}: pass a number of bytes, 0 or more")
        self._native = _native.SharedStore(url, cache_bytes)

    def cache_info(self) -> dict | None:
        """The read cache's budget, size and slot hits and misses (None
        without a cache)."""
        return json.loads(self._native.cache_info())

    @property
    def url(self) -> str:
        """The URL, its password replaced by ``***``."""
        return self._native.url

    def put_state(
        self,
        tensors: Mapping[str, np.ndarray],
        tag: str | None = None,
        *,
        force: bool = False,
        allow_nonfinite: bool = False,
    ) -> str:
        """Writes one state (``{"l0.h": [batch, units], ...}``, float32) and
        returns its id, the id a local store gives; ``tag`` names it
        (``force`` moves a tag that names another state)."""
        return self._native.put_state(_arrays(tensors, "tensors"), tag, force, allow_nonfinite)

    def put_states(
        self,
        tensors: Mapping[str, np.ndarray],
        tags: Sequence[str] | None = None,
        *,
        tag_prefix: str | None = None,
        force: bool = False,
        allow_nonfinite: bool = False,
    ) -> list[str]:
        """Writes each row of a batch as its own one-slot state, all in one
        transaction under one journal entry; returns their ids in row
        order. ``tags`` gives one name per row; ``tag_prefix`` names row i
        ``prefix + str(i)``."""
        tags = _row_tags(tags)
        return self._native.put_states(_arrays(tensors, "tensors"), tags, tag_prefix, force, allow_nonfinite)

    def get_state(self, ref: str) -> State:
        """One state by tag or full 64-digit id."""
        batch = self.get_states([ref])
        return State(batch.ids[0], batch)

    def get_states(self, refs: Iterable[str]) -> StateBatch:
        """The states ``refs`` name (tags, or full 64-digit ids), stacked
        into one batch in the order given (one row per slot), read in three
        queries however many there are."""
        if isinstance(refs, (str, bytes)):
            raise InvalidInputError("refs must be a list of refs, not one string")
        refs = [r if type(r) is str else str(r) for r in refs]
        if not refs:
            raise InvalidInputError("refs is empty; pass one or more tags or ids")
        return _state_batch(*self._native.get_states(refs))

    # -- streams ----------------------------------------------------------

    def predict(
        self,
        x: np.ndarray,
        *,
        model: str | None = None,
        stream: str = "main",
        from_: str | None = None,
        advance: bool = True,
        tag: str | None = None,
        force: bool = False,
        retry: bool = False,
        kernel: str = "fused",
        new_stream: bool = False,
    ) -> Prediction:
        """As ``Store.predict``, on a stream of the shared store: the
        stream moves by compare-and-set on the server, so of two writers
        that start from the same HEAD one records and the other gets
        ``StreamMovedError`` (or with ``retry=True`` recomputes from the
        new HEAD). ``statectl --store URL audit`` replays it."""
        r = self._native.predict(
            _float32("x", x), model, stream, from_, advance, tag, force, retry, kernel, new_stream
        )
        return _prediction(r)

    def restore(
        self,
        ref: str,
        *,
        model: str | None = None,
        stream: str = "main",
        slot: int | None = None,
        slots: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> str:
        """As ``Store.restore``, on a stream of the shared store (``ref``: a
        tag, a full id, ``HEAD~N`` or ``zeros``)."""
        return _restore(self._native, ref, model, stream, slot, slots, batch_size)

    def reset(
        self, *, model: str | None = None, stream: str = "main", batch_size: int | None = None
    ) -> str:
        """As ``Store.reset``, on a stream of the shared store."""
        return _reset(self._native, model, stream, batch_size)

    def audit(
        self,
        *,
        model: str | None = None,
        stream: str | None = None,
        events: Sequence[int] | None = None,
        since: str | None = None,
        tag: str | None = None,
        tolerance: float | None = None,
        train: bool | str = False,
        allow_empty: bool = False,
    ) -> AuditReport:
        """As ``Store.audit``: replays the shared store's recorded
        predictions (and trainings) from what it holds, bit for bit."""
        return _audit(self._native, model, stream, events, since, tag, tolerance, train, allow_empty)

    def burn_in(
        self,
        refs: str | Sequence[str],
        x: np.ndarray,
        *,
        model: str | None = None,
        per_slot: bool = False,
        tag: str | None = None,
        tag_prefix: str | None = None,
        force: bool = False,
        tag_by: str = "source",
    ) -> list[BurnedState]:
        """R2D2's burn-in on the shared store: runs the states ``refs`` name
        (tags, patterns such as ``"buf/*"``, full ids) through the prefix
        ``x`` with a model there (the newest unless ``model``), and stores
        the states reached there, as ``Store.burn_in`` does locally: the
        same ids, tags and journal entries."""
        return _burn_in(self._native, refs, x, model, per_slot, tag, tag_prefix, force, tag_by)

    def stack(self, refs: Sequence[str], *, tag: str | None = None, force: bool = False) -> str:
        """Stacks states of one layout into one batch on the shared store,
        in order; returns its id (the id a local store gives)."""
        refs = [refs] if isinstance(refs, str) else [str(r) for r in refs]
        return self._native.stack(refs, tag, force)

    def split(self, ref: str, tag_prefix: str, *, force: bool = False) -> list[str]:
        """Stores each slot of a state as a one-slot state tagged
        ``tag_prefix + slot`` on the shared store; returns their ids."""
        return self._native.split(str(ref), tag_prefix, force)

    def diff(
        self,
        a: str,
        b: str,
        *,
        inputs: np.ndarray | None = None,
        per_slot: bool = False,
        tolerance: float | None = None,
        model: str | None = None,
    ) -> DiffReport:
        """Compares two states on the shared store (tags, full ids,
        ``zeros``), as ``Store.diff`` does; with ``inputs``, also how
        differently ``model`` (the newest by default) answers from each."""
        x = _diff_inputs(inputs, tolerance)
        return _reports.parse(DiffReport, self._native.diff(str(a), str(b), x, per_slot, tolerance, model))

    def log(
        self,
        *,
        model: str | None = None,
        stream: str = "main",
        kind: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> LogReport:
        """The shared store's journal, newest first (with ``model``, that
        model's stream), each event with ``origin``: the store that wrote it
        and its number there."""
        return _reports.parse(LogReport, self._native.log(model, stream, kind, since, limit))

    def snapshot(self, tag: str, ref: str, *, model: str | None = None, force: bool = False) -> str:
        """Names a state on the shared store (a tag, a full id, or ``zeros``
        with ``model``); returns its id."""
        return self._native.snapshot(tag, str(ref), model, force)

    def tags(self) -> list[TagInfo]:
        """Every tag on the shared store and the state it names, in natural
        order."""
        return _reports.parse(_reports.TagInfo, self._native.tags())

    def delete_tags(self, *names: str) -> list[_reports.TagDeleted]:
        """Deletes the tags named, or matched by patterns (``"buf/*"``), in
        one transaction; a name that is not a tag, or a pattern matching
        none, deletes nothing."""
        return _reports.parse(_reports.TagDeleted, self._native.delete_tags(list(names)))

    def verify(self) -> dict:
        """Re-hashes every slot, state, object and weights file and checks
        every ref; ``{"ok": bool, "report": {..., "problems": [...]}}``."""
        return json.loads(self._native.verify())

    def close(self) -> None:
        """Closes the connection; later reads raise."""
        self._native.close()

    def __enter__(self) -> "SharedStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"statectl.SharedStore({self.url!r})"



def _progress_of(progress: Callable[[dict], None] | str | None):
    """The progress callback for ``train``/``resume``: the callable given, or
    for ``"tqdm"`` one that drives a tqdm bar (returned too, to close)."""
    if progress != "tqdm":
        if isinstance(progress, str):
            raise InvalidInputError(f"progress={progress!r}: pass a callable, \"tqdm\" or None")
        return progress, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise InvalidInputError("progress='tqdm' needs the tqdm package (pip install tqdm); or pass a callable") from None
    bar = tqdm(unit="batch")

    def update(p: dict) -> None:
        bar.total = p["epochs"] * p["batches"]
        bar.n = (p["epoch"] - 1) * p["batches"] + p["batch"]
        bar.set_postfix(epoch=p["epoch"], loss=f"{p['loss']:.4g}", refresh=False)
        bar.refresh()

    return update, bar

class Store:
    """An open statectl store.

    ``path`` is resolved as the CLI resolves ``--store``: the path given,
    else ``$STATECTL_STORE``, else ``./.statectl``. A shared store's URL
    (``postgres://USER@HOST/DB``) opens a :class:`SharedStore` instead. Without ``create=True``
    a missing store raises :class:`NoStoreError` instead of being made.
    Use it as a context manager, or call :meth:`close`.
    """

    def __new__(cls, path: str | os.PathLike | None = None, *, create: bool = False):
        # A shared store's URL (given, or in $STATECTL_STORE) opens it.
        url = path if path is not None else os.environ.get("STATECTL_STORE")
        if cls is Store and _is_shared_url(url):
            return SharedStore(url)
        return super().__new__(cls)

    def __init__(self, path: str | os.PathLike | None = None, *, create: bool = False):
        self._pusher: concurrent.futures.ThreadPoolExecutor | None = None
        try:
            self._native = _native.Store(None if path is None else os.fspath(path), create)
        except NoStoreError as e:
            # The CLI's message names its flags; from Python the fix is create=True.
            raise NoStoreError(f"{e}; from Python: statectl.Store(path, create=True)") from None

    @property
    def path(self) -> str:
        return str(self._native.path)

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Closes the store (after the pushes started in the background
        finish); later calls raise :class:`ClosedStoreError`."""
        if self._pusher is not None:
            self._pusher.shutdown(wait=True)
            self._pusher = None
        self._native.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"statectl.Store({self.path!r}{', closed' if self.closed else ''})"

    # -- states in and out ------------------------------------------------

    def put_state(
        self,
        tensors: Mapping[str, np.ndarray],
        tag: str | None = None,
        *,
        force: bool = False,
        allow_nonfinite: bool = False,
        model: str | None = None,
    ) -> str:
        """Stores one state (``{"l0.h": [batch, units], "l0.c": ...}``,
        float32) and returns its id; ``tag`` names it (``force`` moves an
        existing tag); ``model`` checks the layout is that model's.
        Journalled as an ``import``, like ``statectl import``."""
        return self._native.put_state(_arrays(tensors, "tensors"), tag, force, allow_nonfinite, model)

    def put_states(
        self,
        tensors: Mapping[str, np.ndarray],
        tags: Sequence[str] | None = None,
        *,
        tag_prefix: str | None = None,
        force: bool = False,
        allow_nonfinite: bool = False,
        model: str | None = None,
    ) -> list[str]:
        """Stores each slot of a batch (row i of every tensor) as its own
        one-slot state, all in one transaction under one journal entry, and
        returns their ids in row order. ``tags`` gives one name per row;
        ``tag_prefix`` names row i ``prefix + str(i)``; ``model`` checks the
        layout is that model's."""
        tags = _row_tags(tags)
        return self._native.put_states(
            _arrays(tensors, "tensors"), tags, tag_prefix, force, allow_nonfinite, model
        )

    def get_state(
        self, ref: str = "HEAD", *, model: str | None = None, stream: str = "main"
    ) -> State:
        """A stored state by ref (a tag, an id or id prefix, ``HEAD``,
        ``HEAD~N``, ``zeros``), as float32 arrays (writable, owned by the
        caller). Every slot is re-hashed on the way out."""
        state_id, pairs = self._native.get_state(ref if type(ref) is str else str(ref), model, stream)
        state = State.__new__(State)
        for name, shape, buffer in pairs:
            state[name] = _array(buffer, shape)
        state.id = state_id
        return state

    def get_states(
        self, refs: Iterable[str], *, model: str | None = None, stream: str = "main"
    ) -> StateBatch:
        """Several stored states, read from one snapshot of the store and
        stacked into one batch in the order given (one row per slot): a
        learner's batch of start states in one call. Every slot is
        re-hashed on the way out; states of different layouts raise
        ``LayoutMismatchError``."""
        if isinstance(refs, (str, bytes)):
            raise InvalidInputError("refs must be a list of refs, not one string; for one state use get_state(ref)")
        refs = [r if type(r) is str else str(r) for r in refs]
        if not refs:
            raise InvalidInputError("refs is empty; pass one or more tags, ids or HEAD~N")
        return _state_batch(*self._native.get_states(refs, model, stream))

    # -- streams ----------------------------------------------------------

    def snapshot(
        self,
        tag: str,
        ref: str = "HEAD",
        *,
        model: str | None = None,
        stream: str = "main",
        force: bool = False,
    ) -> str:
        """Names a state (the stream's HEAD by default); returns its id."""
        return self._native.snapshot(tag, str(ref), model, stream, force)

    def restore(
        self,
        ref: str,
        *,
        model: str | None = None,
        stream: str = "main",
        slot: int | None = None,
        slots: Sequence[int] | None = None,
        batch_size: int | None = None,
    ) -> str:
        """Sets the stream to a stored state; ``slot=k`` broadcasts slot k
        to every slot, ``slots=[...]`` picks slots, ``batch_size`` re-batches.
        Returns the stream's new state id."""
        return _restore(self._native, ref, model, stream, slot, slots, batch_size)

    def reset(
        self, *, model: str | None = None, stream: str = "main", batch_size: int | None = None
    ) -> str:
        """Sets the stream to zeros; returns the zero state's id."""
        return _reset(self._native, model, stream, batch_size)

    def predict(
        self,
        x: np.ndarray,
        *,
        model: str | None = None,
        stream: str = "main",
        from_: str | None = None,
        advance: bool = True,
        tag: str | None = None,
        force: bool = False,
        retry: bool = False,
        kernel: str = "fused",
        new_stream: bool = False,
    ) -> Prediction:
        """Runs the model on ``x`` (``[batch, steps, features]`` float32)
        from the stream's HEAD (or ``from_``), records input, output and
        both states in the journal exactly as ``statectl predict`` does (so
        ``statectl audit`` replays it), and moves the stream unless
        ``advance=False``. A stream the model does not have starts at
        zeros, unless its name is one typo away from one it has (``mian``
        beside ``main``): that is refused unless ``new_stream=True``."""
        r = self._native.predict(
            _float32("x", x), model, stream, from_, advance, tag, force, retry, kernel, new_stream
        )
        return _prediction(r)

    def forward(self, x: np.ndarray, state: Mapping[str, np.ndarray], *, model: str | None = None) -> Forward:
        """Runs the model on ``x`` (``[batch, steps, features]`` float32)
        from ``state`` (``{"l0.h": [batch, units], ...}``) and returns the
        outputs and the new state, recording nothing: for acting loops
        that must not grow the journal. The numbers are those ``predict``
        records from the same state (the same kernels, bit for bit); use
        ``predict`` for predictions you want to audit."""
        shape, outputs, logits, pairs = self._native.forward(
            _float32("x", x), _arrays(state, "state"), model
        )
        return Forward(
            outputs=_array(outputs, shape),
            logits=None if logits is None else _array(logits, shape),
            state=_tensors(pairs),
        )

    def train(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        name: str,
        cell: str = "lstm",
        units: Sequence[int] = (16,),
        head: str | None = None,
        classes: int | None = None,
        per_step: bool = False,
        batch_size: int = 6,
        epochs: int = 2,
        lr: float = 1e-3,
        seed: int = 42,
        stateful: bool = True,
        shuffle: bool = True,
        record: str = "epoch",
        checkpoint_every: int | str | None = None,
        keep_checkpoints: int | None = None,
        progress: Callable[[dict], None] | str | None = None,
        validation_split: float | None = None,
        patience: int | None = None,
        keep_best: bool = False,
        validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> TrainedModel:
        """Trains a new model ``name`` on ``x`` (``[n, steps, features]``)
        and ``y`` (``[n]`` class indices, ``[n, outputs]`` targets, or per
        step with ``per_step=True``), as ``statectl train`` does: the same
        numbers, checkpoints (``checkpoint_every``: batches, or ``"epoch"``,
        the default) and exact resume. ``progress`` is called after every
        batch with ``{"epoch", "epochs", "batch", "batches", "loss"}``, or
        ``progress="tqdm"`` draws a tqdm bar (with tqdm installed). A
        Ctrl-C finishes the batch, writes a checkpoint and raises
        ``KeyboardInterrupt``; ``resume(name)`` continues the run.
        ``validation_split`` holds out the last share of the samples for a
        validation loss after every epoch, and ``patience`` stops once it
        has not improved for that many epochs (Keras's ``EarlyStopping``).
        ``validation_data=(x_val, y_val)`` validates on those samples
        instead (Keras's ``validation_data``; kept with the training data).
        ``keep_best`` also registers the epoch with the lowest validation
        loss as model ``name + ".best"`` and tags the state it left
        ``name + "/best"`` (the result's ``best`` says which epoch)."""
        every = None if checkpoint_every is None else str(checkpoint_every)
        x, y = _float32("x", x), _float32("y", y)
        held_out = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                raise InvalidInputError("validation_data must be a tuple (x_val, y_val)")
            x_val, y_val = _float32("x_val", validation_data[0]), _float32("y_val", validation_data[1])
            if x_val.shape[1:] != x.shape[1:] or y_val.shape[1:] != y.shape[1:]:
                raise InvalidInputError(
                    f"validation_data's samples are {x_val.shape[1:]} -> {y_val.shape[1:]} where x and y's are "
                    f"{x.shape[1:]} -> {y.shape[1:]}; give samples of the same shape"
                )
            x, y, held_out = np.concatenate([x, x_val]), np.concatenate([y, y_val]), len(x_val)
        progress, bar = _progress_of(progress)
        try:
            text = self._native.train(
                x,
                y,
                name,
                cell,
                [int(u) for u in units],
                head,
                classes,
                per_step,
                batch_size,
                epochs,
                lr,
                seed,
                stateful,
                shuffle,
                record,
                every,
                keep_checkpoints,
                progress,
                validation_split,
                patience,
                keep_best,
                held_out,
            )
        finally:
            if bar is not None:
                bar.close()
        return TrainedModel.from_json(json.loads(text))

    def resume(
        self,
        name: str,
        *,
        checkpoint_every: int | str | None = None,
        keep_checkpoints: int | None = None,
        progress: Callable[[dict], None] | str | None = None,
        from_checkpoint: int | None = None,
        epochs: int | None = None,
        lr: float | None = None,
    ) -> TrainedModel:
        """Continues the unfinished training run ``name`` (stopped by
        Ctrl-C or killed) from its latest checkpoint (or the one after
        ``from_checkpoint`` batches, when the latest is damaged), to the
        bits it would have had; a second Ctrl-C raises again after another
        checkpoint. ``epochs`` changes the run's total and ``lr`` the
        learning rate from the checkpoint on, both kept in its plan (as
        ``statectl train --resume RUN --epochs N --lr R``)."""
        every = None if checkpoint_every is None else str(checkpoint_every)
        progress, bar = _progress_of(progress)
        try:
            text = self._native.resume(name, every, keep_checkpoints, progress, from_checkpoint, epochs, lr)
        finally:
            if bar is not None:
                bar.close()
        return TrainedModel.from_json(json.loads(text))

    def burn_in(
        self,
        refs: str | Sequence[str],
        x: np.ndarray,
        *,
        model: str | None = None,
        per_slot: bool = False,
        tag: str | None = None,
        tag_prefix: str | None = None,
        force: bool = False,
        tag_by: str = "source",
    ) -> list[BurnedState]:
        """Runs stored states through a prefix ``x`` without predicting
        (R2D2's burn-in) and stores the states reached; ``per_slot`` takes
        one-slot states (one row of ``x`` each). ``tag_prefix`` tags each
        result with the prefix plus its source's name (``tag_by="source"``)
        or its row (``tag_by="row"``, for sampled sources that repeat)."""
        return _burn_in(self._native, refs, x, model, per_slot, tag, tag_prefix, force, tag_by)

    # -- reading ----------------------------------------------------------

    def log(
        self,
        *,
        model: str | None = None,
        stream: str = "main",
        all: bool = False,
        kind: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> LogReport:
        """The journal, newest first (a stream's, or with ``all`` every
        model's); ``since`` is a duration such as ``"2h"``."""
        if all and model is not None:
            raise InvalidInputError("pass model (one model's stream) or all=True (every model), not both")
        return _reports.parse(LogReport, self._native.log(model, stream, all, kind, since, limit))

    def show(
        self, ref: str = "HEAD", *, model: str | None = None, stream: str = "main", values: bool = False
    ) -> ShowReport:
        """One state's layout, slots, tags, origin and statistics (and with
        ``values=True`` its tensors as float32 arrays)."""
        return _reports.parse(ShowReport, self._native.show(str(ref), model, stream, values))

    def diff(
        self,
        a: str,
        b: str,
        *,
        inputs: np.ndarray | None = None,
        per_slot: bool = False,
        tolerance: float | None = None,
        model: str | None = None,
        stream: str = "main",
    ) -> DiffReport:
        """Compares two states; with ``inputs`` (``[batch, steps,
        features]`` float32), also how differently the model answers from
        each (how stale one is for the other)."""
        x = _diff_inputs(inputs, tolerance)
        text = self._native.diff(str(a), str(b), x, per_slot, tolerance, model, stream)
        return _reports.parse(DiffReport, text)

    def audit(
        self,
        *,
        model: str | None = None,
        stream: str | None = None,
        events: Sequence[int] | None = None,
        since: str | None = None,
        tag: str | None = None,
        tolerance: float | None = None,
        train: bool | str = False,
        allow_empty: bool = False,
    ) -> AuditReport:
        """Replays recorded predictions (and with ``train``, the training:
        ``True`` for every trained model, or a model's name) and compares
        bit for bit; the report's ``ok`` says whether all matched (a
        mismatch is a result, not an exception)."""
        return _audit(self._native, model, stream, events, since, tag, tolerance, train, allow_empty)

    def push(
        self, url: str, *, tags: str | None = None, force: bool = False, retry: bool = False
    ) -> _reports.PushReport:
        """Sends what the shared store at ``url`` (``postgres://USER@HOST/DB``)
        lacks: content by id, then the journal, models, tags and streams in
        one transaction. ``tags`` (a pattern) pushes only those tags and
        their states. A tag or stream the shared store has elsewhere is
        refused unless ``force``. ``retry`` reads again and pushes again
        (up to 5 times) when another writer moves a stream while the push
        runs. Runs on a connection of its own, without holding this store's
        lock, so other threads keep writing."""
        return _reports.parse(_reports.PushReport, self._native.push(url, tags, force, retry))

    def push_in_background(
        self, url: str, *, tags: str | None = None, force: bool = False, retry: bool = False
    ) -> concurrent.futures.Future[_reports.PushReport]:
        """Starts ``push`` on this store's background thread and returns at
        once; the future's ``result()`` is the report (or raises the push's
        error). Pushes queue one after another: an actor's loop calls this
        every N states and never waits on the network."""
        if self._pusher is None:
            self._pusher = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="statectl-push"
            )
        return self._pusher.submit(self.push, url, tags=tags, force=force, retry=retry)

    def pull(self, url: str, *, tags: str | None = None, force: bool = False) -> _reports.PullReport:
        """Copies the shared store's refs and the content they need into this
        store (every row checked against its id); ``tags`` pulls only those
        tags and their states."""
        return _reports.parse(_reports.PullReport, self._native.pull(url, tags, force))

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Re-hashes everything stored and checks every link; ``ok`` says
        whether the store is whole. ``repair`` first puts back streams the
        journal says an earlier upgrade lost."""
        return _reports.parse(VerifyReport, self._native.verify(repair))

    def gc(
        self,
        *,
        keep_newest: int | None = None,
        prefix: str | None = None,
        keep_events_since: str | None = None,
        dry_run: bool = False,
    ) -> GcReport:
        """Removes what nothing reaches, as ``statectl gc`` does. A replay
        buffer's bound: ``keep_newest=N, prefix="buf/"`` keeps the N most
        recently set tags under the prefix and drops the rest, with the
        states only they named. ``keep_events_since`` (``"7d"``) drops older
        journal events first. ``dry_run`` reports and changes nothing."""
        if keep_newest is not None and (isinstance(keep_newest, bool) or not isinstance(keep_newest, (int, np.integer)) or keep_newest < 0):
            raise InvalidInputError(f"keep_newest must be an int >= 0, got {keep_newest!r}")
        text = self._native.gc(bool(dry_run), keep_events_since, keep_newest, prefix)
        return _reports.parse(GcReport, text)

    def tags(self) -> list[TagInfo]:
        """Every tag and the state it names, in natural order."""
        return _reports.parse(_reports.TagInfo, self._native.tags())

    def delete_tag(self, name: str) -> str:
        """Deletes a tag (journalled); returns the id of the state it named."""
        return _reports.parse(_reports.TagDeleted, self._native.delete_tag(name)).state

    def delete_tags(self, *names: str) -> list[_reports.TagDeleted]:
        """Deletes the tags named, or matched by patterns (``"buf/*"``: ``*``
        any run, ``?`` one character), in one transaction; a name that is
        not a tag, or a pattern matching none, deletes nothing."""
        return _reports.parse(_reports.TagDeleted, self._native.delete_tags(list(names)))

    def delete_model(self, name: str) -> _reports.ModelDeleted:
        """Removes model ``name`` and its streams (journalled); its events
        stay, and ``audit`` still replays them until ``gc`` drops them."""
        return _reports.parse(_reports.ModelDeleted, self._native.delete_model(name))

    def rename_model(self, name: str, new_name: str) -> _reports.ModelRenamed:
        """Gives model ``name`` a new name (journalled); its history,
        streams and audits follow it."""
        return _reports.parse(_reports.ModelRenamed, self._native.rename_model(name, new_name))

    def models(self) -> list[ModelSummary]:
        """The models in the store, oldest first."""
        return _reports.parse(ModelSummary, self._native.models())

    def model(self, name: str | None = None) -> ModelDetail:
        """One model in full: weights, layout, config, training, streams
        (the newest model when ``name`` is None)."""
        return _reports.parse(ModelDetail, self._native.model(name))

    def stack(
        self,
        refs: Sequence[str],
        *,
        tag: str | None = None,
        force: bool = False,
        model: str | None = None,
        stream: str = "main",
    ) -> str:
        """Stacks states of one layout (tag patterns such as ``"buf/*"``
        allowed) into one batch, in order; returns its id. Writes a slot
        list, no tensor bytes."""
        refs = [refs] if isinstance(refs, str) else [str(r) for r in refs]
        return self._native.stack(refs, tag, force, model, stream)

    def split(
        self,
        ref: str,
        tag_prefix: str,
        *,
        force: bool = False,
        model: str | None = None,
        stream: str = "main",
    ) -> list[str]:
        """Stores each slot of a state as a one-slot state tagged
        ``tag_prefix + slot``; returns their ids in slot order."""
        return self._native.split(str(ref), tag_prefix, force, model, stream)

    def import_model(
        self,
        tensors: Mapping[str, np.ndarray],
        *,
        name: str,
        head: str | None = None,
        layout: str | None = None,
        batch_size: int = 1,
        outputs: str | None = None,
        layers: Sequence[str] | None = None,
        force: bool = False,
    ) -> ModelImported:
        """Registers weights (PyTorch names ``lstm.weight_ih_l0``, ... or
        Keras names ``lstm/kernel``, ...) as a model, as ``statectl model
        import`` does; ``head`` is ``softmax`` or ``linear``. ``force``
        replaces a model of that name (its events stay in the journal).
        Nothing is written outside the store."""
        _batch_size(batch_size)
        text = self._native.import_model(
            _arrays(tensors, "weights"), str(name), head, layout, batch_size, outputs,
            None if layers is None else [str(l) for l in layers], bool(force),
        )
        return _reports.parse(ModelImported, text)

    def import_model_file(
        self,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        head: str | None = None,
        batch_size: int | None = None,
        outputs: str | None = None,
        layers: Sequence[str] | None = None,
        force: bool = False,
    ) -> ModelImported:
        """Registers a model file as a model, as ``statectl model import``
        does: safetensors, a Keras ``.keras`` file (whose architecture,
        head, outputs and batch size need not be repeated), a Keras
        ``.weights.h5`` or a PyTorch ``torch.save`` state_dict (``.pt``),
        recognised by content. The file's format and sha256 are recorded
        as the model's origin; nothing in the file is ever run."""
        _batch_size(batch_size)
        text = self._native.import_model_file(
            os.fspath(path), None if name is None else str(name), head, batch_size, outputs,
            None if layers is None else [str(l) for l in layers], bool(force),
        )
        return _reports.parse(ModelImported, text)


def _batch_size(value: Any) -> None:
    """A batch size: a positive int (checked before the store is touched)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise InvalidInputError(f"batch_size must be a positive int, got {value!r}")
