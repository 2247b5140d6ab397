"""Type stubs for the Rust half of the package (statectl._native). Use the
wrappers in `statectl` (`statectl.Store`); these are their building blocks."""

from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

import numpy as np

__version__: str

class StatectlError(Exception): ...
class NotFoundError(StatectlError): ...
class AmbiguousError(StatectlError): ...
class LayoutMismatchError(StatectlError): ...
class StoreTooNewError(StatectlError): ...
class NoStoreError(StatectlError): ...
class CorruptError(StatectlError): ...
class StreamMovedError(StatectlError): ...
class ConflictError(StatectlError): ...
class StoreIOError(StatectlError): ...
class ClosedStoreError(StatectlError): ...
class InheritedStoreError(StatectlError): ...

_Arrays = Sequence[tuple[str, np.ndarray]]
_OutTensor = tuple[str, list[int], bytearray]

class SharedStore:
    url: str
    def __init__(self, url: str, cache_bytes: int = 0) -> None: ...
    def cache_info(self) -> str: ...
    def get_states(self, refs: list[str]) -> tuple[list[str], list[_OutTensor]]: ...
    def put_state(
        self,
        tensors: _Arrays,
        tag: str | None = None,
        force: bool = False,
        allow_nonfinite: bool = False,
    ) -> str: ...
    def put_states(
        self,
        tensors: _Arrays,
        tags: list[str] | None = None,
        tag_prefix: str | None = None,
        force: bool = False,
        allow_nonfinite: bool = False,
    ) -> list[str]: ...
    def predict(
        self,
        x: np.ndarray,
        model: str | None = None,
        stream: str = "main",
        from_: str | None = None,
        advance: bool = True,
        tag: str | None = None,
        force: bool = False,
        retry: bool = False,
        kernel: str = "fused",
        new_stream: bool = False,
    ) -> dict[str, Any]: ...
    def restore(
        self,
        reference: str,
        model: str | None = None,
        stream: str = "main",
        slot: int | None = None,
        slots: list[int] | None = None,
        batch_size: int | None = None,
    ) -> str: ...
    def reset(self, model: str | None = None, stream: str = "main", batch_size: int | None = None) -> str: ...
    def audit(
        self,
        model: str | None = None,
        stream: str | None = None,
        events: list[int] = ...,
        since: str | None = None,
        tag: str | None = None,
        tolerance: float | None = None,
        train: str | None = None,
        allow_empty: bool = False,
    ) -> str: ...
    def burn_in(
        self,
        references: list[str],
        x: np.ndarray,
        model: str | None = None,
        per_slot: bool = False,
        tag: str | None = None,
        tag_prefix: str | None = None,
        force: bool = False,
        tag_by: str = "source",
    ) -> str: ...
    def stack(self, references: list[str], tag: str | None = None, force: bool = False) -> str: ...
    def split(self, reference: str, tag_prefix: str, force: bool = False) -> list[str]: ...
    def snapshot(self, tag: str, reference: str, model: str | None = None, force: bool = False) -> str: ...
    def diff(
        self,
        a: str,
        b: str,
        inputs: np.ndarray | None = None,
        per_slot: bool = False,
        tolerance: float | None = None,
        model: str | None = None,
    ) -> str: ...
    def log(
        self,
        model: str | None = None,
        stream: str = "main",
        kind: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> str: ...
    def tags(self) -> str: ...
    def delete_tags(self, names: list[str]) -> str: ...
    def verify(self) -> str: ...
    def close(self) -> None: ...

class Store:
    path: PathLike[str]
    closed: bool
    def __init__(self, path: str | None = None, create: bool = False) -> None: ...
    def close(self) -> None: ...
    def put_state(
        self,
        tensors: _Arrays,
        tag: str | None = None,
        force: bool = False,
        allow_nonfinite: bool = False,
        model: str | None = None,
    ) -> str: ...
    def put_states(
        self,
        tensors: _Arrays,
        tags: Sequence[str] | None = None,
        tag_prefix: str | None = None,
        force: bool = False,
        allow_nonfinite: bool = False,
        model: str | None = None,
    ) -> list[str]: ...
    def get_state(
        self, reference: str, model: str | None = None, stream: str = "main"
    ) -> tuple[str, list[_OutTensor]]: ...
    def get_states(
        self, references: list[str], model: str | None = None, stream: str = "main"
    ) -> tuple[list[str], list[_OutTensor]]: ...
    def predict(
        self,
        x: np.ndarray,
        model: str | None = None,
        stream: str = "main",
        from_: str | None = None,
        advance: bool = True,
        tag: str | None = None,
        force: bool = False,
        retry: bool = False,
        kernel: str = "fused",
        new_stream: bool = False,
    ) -> dict[str, Any]: ...
    # The methods below return their operation's report as the CLI's
    # --json text (statectl._reports parses it).
    def snapshot(self, tag: str, reference: str, model: str | None = None, stream: str = "main", force: bool = False) -> str: ...
    def restore(
        self,
        reference: str,
        model: str | None = None,
        stream: str = "main",
        slot: int | None = None,
        slots: list[int] | None = None,
        batch_size: int | None = None,
    ) -> str: ...
    def reset(self, model: str | None = None, stream: str = "main", batch_size: int | None = None) -> str: ...
    def forward(
        self, x: np.ndarray, tensors: _Arrays, model: str | None = None
    ) -> tuple[list[int], bytearray, bytearray | None, list[tuple[str, list[int], bytearray]]]: ...
    def train(
        self,
        x: np.ndarray,
        y: np.ndarray,
        name: str,
        cell: str = "lstm",
        units: list[int] = ...,
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
        checkpoint_every: str | None = None,
        keep_checkpoints: int | None = None,
        progress: Callable[[dict], None] | None = None,
        validation_split: float | None = None,
        patience: int | None = None,
        keep_best: bool = False,
        validation_samples: int | None = None,
    ) -> str: ...
    def resume(
        self,
        name: str,
        checkpoint_every: str | None = None,
        keep_checkpoints: int | None = None,
        progress: Callable[[dict], None] | None = None,
        from_checkpoint: int | None = None,
        epochs: int | None = None,
        lr: float | None = None,
    ) -> str: ...
    def burn_in(
        self,
        references: list[str],
        x: np.ndarray,
        model: str | None = None,
        per_slot: bool = False,
        tag: str | None = None,
        tag_prefix: str | None = None,
        force: bool = False,
        tag_by: str = "source",
    ) -> str: ...
    def log(
        self,
        model: str | None = None,
        stream: str = "main",
        all: bool = False,
        kind: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> str: ...
    def show(self, reference: str, model: str | None = None, stream: str = "main", values: bool = False) -> str: ...
    def diff(
        self,
        a: str,
        b: str,
        inputs: np.ndarray | None = None,
        per_slot: bool = False,
        tolerance: float | None = None,
        model: str | None = None,
        stream: str = "main",
    ) -> str: ...
    def audit(
        self,
        model: str | None = None,
        stream: str | None = None,
        events: list[int] = ...,
        since: str | None = None,
        tag: str | None = None,
        tolerance: float | None = None,
        train: str | None = None,
        allow_empty: bool = False,
    ) -> str: ...
    def verify(self, repair: bool = False) -> str: ...
    def push(self, url: str, tags: str | None = None, force: bool = False, retry: bool = False) -> str: ...
    def pull(self, url: str, tags: str | None = None, force: bool = False) -> str: ...
    def tags(self) -> str: ...
    def delete_tag(self, name: str) -> str: ...
    def delete_tags(self, names: list[str]) -> str: ...
    def delete_model(self, name: str) -> str: ...
    def rename_model(self, name: str, new_name: str) -> str: ...
    def gc(
        self,
        dry_run: bool = False,
        keep_events_since: str | None = None,
        keep_newest: int | None = None,
        prefix: str | None = None,
    ) -> str: ...
    def models(self) -> str: ...
    def model(self, name: str | None = None) -> str: ...
    def import_model(
        self,
        tensors: _Arrays,
        name: str,
        head: str | None = None,
        layout: str | None = None,
        batch_size: int = 1,
        outputs: str | None = None,
        layers: list[str] | None = None,
        force: bool = False,
    ) -> str: ...
    def import_model_file(
        self,
        path: str,
        name: str | None = None,
        head: str | None = None,
        batch_size: int | None = None,
        outputs: str | None = None,
        layers: list[str] | None = None,
        force: bool = False,
    ) -> str: ...
    def stack(
        self, references: list[str], tag: str | None = None, force: bool = False, model: str | None = None, stream: str = "main"
    ) -> str: ...
    def split(
        self, reference: str, tag_prefix: str, force: bool = False, model: str | None = None, stream: str = "main"
    ) -> list[str]: ...

def encode_safetensors(tensors: _Arrays, metadata: dict[str, str] | None = None) -> bytes: ...
