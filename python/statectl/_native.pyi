"""Type stubs for the Rust half of the package (statectl._native). Use the
wrappers in `statectl` (`statectl.Store`); these are their building blocks."""

from collections.abc import Sequence
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
    ) -> dict[str, Any]: ...
    def run(self, argv: Sequence[str]) -> tuple[int, str]: ...

def encode_safetensors(tensors: _Arrays, metadata: dict[str, str] | None = None) -> bytes: ...
