"""Typed reports: what the store's operations answer, as objects with
attributes. Each keeps the exact JSON value the CLI's ``--json`` prints for
the same call: ``to_dict()`` returns it, and ``report["key"]`` reads it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any, ClassVar

import numpy as np


@dataclasses.dataclass(frozen=True)
class Report:
    """Base of every report: attributes, ``to_dict()`` (the CLI's JSON),
    and ``report["key"]`` for dict-style reading."""

    _json: dict = dataclasses.field(repr=False, compare=False)

    # Fields holding other reports: name -> class (lists are converted
    # item by item).
    _nested: ClassVar[dict[str, type]] = {}
    # JSON keys that are Python keywords: key -> attribute.
    _renamed: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_json(cls, value: dict) -> "Report":
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name == "_json":
                continue
            key = next((k for k, a in cls._renamed.items() if a == f.name), f.name)
            kwargs[f.name] = cls._convert(f.name, value.get(key))
        return cls(_json=value, **kwargs)

    @classmethod
    def _convert(cls, name: str, value: Any) -> Any:
        kind = cls._nested.get(name)
        if kind is None or value is None:
            return value
        if isinstance(value, list):
            return [kind.from_json(v) for v in value]
        return kind.from_json(value)

    def to_dict(self) -> dict:
        """The report as the CLI's ``--json`` prints it (a copy)."""
        return copy.deepcopy(self._json)

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __contains__(self, key: str) -> bool:
        return key in self._json

    def keys(self):
        return self._json.keys()


def parse(kind: type, text: str):
    """A report (or a list of them) from the native layer's JSON text."""
    value = json.loads(text)
    if isinstance(value, list):
        return [kind.from_json(v) for v in value]
    return kind.from_json(value)


@dataclasses.dataclass(frozen=True)
class StreamSet(Report):
    """Where ``restore`` or ``reset`` set a stream."""

    model: str
    stream: str
    state: str
    source: str | None
    """The state restored from (``None`` for a reset)."""


@dataclasses.dataclass(frozen=True)
class Event(Report):
    """One journal entry."""

    event: int
    kind: str
    at: int
    """Milliseconds since the epoch."""
    model: str | None
    stream: str | None
    state_before: str | None
    state_after: str | None
    input: str | None
    output: str | None
    tag: str | None
    detail: Any
    origin: dict | None
    """For an event another store wrote (pulled, or read from a shared
    store): ``{"store": its id, "event": its number there}``."""


@dataclasses.dataclass(frozen=True)
class LogReport(Report):
    """The journal, newest first."""

    _nested: ClassVar[dict[str, type]] = {"events": Event}

    model: str | None
    stream: str | None
    head: str | None
    events: list[Event]


@dataclasses.dataclass(frozen=True)
class TensorStats(Report):
    layer: int
    tensor: str
    min: float | None
    max: float | None
    mean: float | None
    mean_abs: float | None


@dataclasses.dataclass(frozen=True)
class ShowReport(Report):
    """One state: layout, slots, tags, origin, statistics, values."""

    _nested: ClassVar[dict[str, type]] = {"origin": Event, "stats": TensorStats}

    state: str
    layout: str
    batch: int
    slots: list[str]
    tags: list[str]
    origin: Event | None
    stats: list[TensorStats]
    values: dict[str, np.ndarray] | None
    """``l0.h`` -> ``[batch, units]`` float32 (with ``values=True``)."""

    @classmethod
    def _convert(cls, name, value):
        if name == "values" and value is not None:
            return {k: np.asarray(rows, dtype=np.float32) for k, rows in value.items()}
        return super()._convert(name, value)


@dataclasses.dataclass(frozen=True)
class LayerDiff(Report):
    layer: int
    tensor: str
    max_abs: float
    mean_abs: float
    rms: float
    cosine: float | None
    bit_equal_slots: int


@dataclasses.dataclass(frozen=True)
class SlotDiff(Report):
    slot: int
    max_abs: float
    bit_equal: bool


@dataclasses.dataclass(frozen=True)
class Staleness(Report):
    """How differently the model answers from two states."""

    overall: float
    max_abs: float
    per_slot: list[float]
    mean_over_slots: float
    max_over_slots: float
    steps: int
    per_slot_mean_over_steps: list[float]


@dataclasses.dataclass(frozen=True)
class DiffReport(Report):
    """Two states compared."""

    _nested: ClassVar[dict[str, type]] = {"layers": LayerDiff, "slots": SlotDiff, "outputs": Staleness}

    a: str
    b: str
    layout: str
    batch: int
    bit_equal: bool
    max_abs: float
    different: bool
    tolerance: float | None
    layers: list[LayerDiff]
    slots: list[SlotDiff] | None
    """With ``per_slot=True``."""
    outputs: Staleness | None
    """With ``inputs``."""


@dataclasses.dataclass(frozen=True)
class EventAudit(Report):
    event: int
    kind: str
    model: str | None
    status: str
    """reproduced, within-tolerance, mismatch or failed."""
    differences: list | None
    reason: str | None
    recorded_platform: Any


@dataclasses.dataclass(frozen=True)
class TrainAudit(Report):
    model: str
    status: str
    weights_recorded: str
    weights_replayed: str | None
    states_checked: int
    states_differing: int
    reason: str | None


@dataclasses.dataclass(frozen=True)
class AuditReport(Report):
    """Recorded predictions (and trainings) replayed; ``ok`` says whether
    all matched (a mismatch is a result, not an exception)."""

    _nested: ClassVar[dict[str, type]] = {"events": EventAudit, "training": TrainAudit}

    ok: bool
    events: list[EventAudit]
    reproduced: int
    within_tolerance: int
    mismatched: int
    failed: int
    tolerance: float | None
    training: list[TrainAudit]
    platform: Any
    seconds: float


@dataclasses.dataclass(frozen=True)
class Problem(Report):
    kind: str
    id: str
    problem: str


@dataclasses.dataclass(frozen=True)
class StoreCheck(Report):
    """What verify counted and found."""

    _nested: ClassVar[dict[str, type]] = {"problems": Problem}

    slots: int
    states: int
    objects: int
    weights_files: int
    tags: int
    streams: int
    events: int
    problems: list[Problem]
    leftovers: list[str]
    pack_dead_bytes: int


@dataclasses.dataclass(frozen=True)
class VerifyReport(Report):
    """The whole store checked; ``ok`` says whether it is whole."""

    _nested: ClassVar[dict[str, type]] = {"report": StoreCheck}

    ok: bool
    report: StoreCheck
    repaired: dict | None
    """With ``repair=True``: ``{"streams": [...]}`` put back."""


@dataclasses.dataclass(frozen=True)
class GcReport(Report):
    """What ``gc`` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    events: int
    states: list[str]
    slots: int
    objects: int
    weights_files: list[str]
    bytes: int
    retention: dict | None
    """With ``keep_newest``/``prefix``: ``tags_dropped`` and the first few."""


@dataclasses.dataclass(frozen=True)
class BurnedState(Report):
    """One state reached by burn-in."""

    _renamed: ClassVar[dict[str, str]] = {"from": "from_"}

    from_: str
    """The ref as given."""
    source: str
    state: str
    tag: str | None


@dataclasses.dataclass(frozen=True)
class TagInfo(Report):
    tag: str
    state: str
    updated_at: int


@dataclasses.dataclass(frozen=True)
class TagDeleted(Report):
    tag: str
    state: str
    deleted: bool


@dataclasses.dataclass(frozen=True)
class ModelDeleted(Report):
    model: str
    weights: str
    streams: list


@dataclasses.dataclass(frozen=True)
class ModelRenamed(Report):
    _renamed: ClassVar[dict[str, str]] = {"from": "from_"}
    from_: str
    to: str


@dataclasses.dataclass(frozen=True)
class ModelSummary(Report):
    model: str
    weights: str
    config: dict | None
    created_at: int


@dataclasses.dataclass(frozen=True)
class StreamHead(Report):
    stream: str
    state: str


@dataclasses.dataclass(frozen=True)
class ModelDetail(Report):
    _nested: ClassVar[dict[str, type]] = {"streams": StreamHead}

    model: str
    weights: str
    layout: str
    config: dict
    training: dict | None
    origin: dict | None
    """The file it was imported from: ``format``, ``file``, ``sha256``."""
    streams: list[StreamHead]


@dataclasses.dataclass(frozen=True)
class ModelImported(Report):
    model: str
    weights: str
    layout: str
    config: dict
    naming: str
    converted_f64: list[str]
    origin: dict | None
    """The file it came from (``format``, ``file``, ``sha256``), or ``None``."""
    notes: list[str]


@dataclasses.dataclass(frozen=True)
class TrainedModel(Report):
    """A model a training run registered (``Store.train``/``resume``)."""

    model: str
    weights: str
    layout: str
    final_state: str
    losses: list
    accuracy: float | None
    val_losses: list
    stopped_early: int | None
    best: dict | None
    """With ``keep_best``: the model, epoch, val_loss, weights, state and tag
    the best epoch was kept as."""


@dataclasses.dataclass(frozen=True)
class PushReport(Report):
    """What ``push`` sent to the shared store (only what it lacked)."""

    url: str
    slots_sent: int
    slot_bytes_sent: int
    slots_already_there: int
    states_sent: int
    objects_sent: int
    weights_files_sent: int
    events_sent: int
    models_changed: int
    tags_changed: int
    streams_moved: int
    retries: int
    """Times the push read again because a stream moved under it (``retry``)."""
    seconds: float


@dataclasses.dataclass(frozen=True)
class PullReport(Report):
    """What ``pull`` copied from the shared store into this one."""

    url: str
    slots_received: int
    slot_bytes_received: int
    states_received: int
    objects_received: int
    weights_files_received: int
    events_received: int
    models_added: int
    tags_changed: int
    streams_moved: int
    seconds: float
