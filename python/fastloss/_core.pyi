"""Type stubs of the compiled core (binding glue; use the fastloss package)."""

from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

__version__: str

Reduction = Literal["mean", "sum", "none"]

class Loss:
    def __init__(self, name: str) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def options(self) -> dict[str, float | bool]: ...
    @overload
    def __call__(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        *,
        reduction: Literal["mean", "sum"] = ...,
        weights: npt.ArrayLike | None = ...,
        offsets: npt.ArrayLike | None = ...,
        segment_ids: npt.ArrayLike | None = ...,
        num_segments: int | None = ...,
        **options: float | bool,
    ) -> np.floating[Any]: ...
    @overload
    def __call__(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        *,
        reduction: Literal["none"],
        weights: npt.ArrayLike | None = ...,
        offsets: npt.ArrayLike | None = ...,
        segment_ids: npt.ArrayLike | None = ...,
        num_segments: int | None = ...,
        **options: float | bool,
    ) -> npt.NDArray[np.floating[Any]]: ...
    def grad(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        *,
        reduction: Reduction = ...,
        weights: npt.ArrayLike | None = ...,
        offsets: npt.ArrayLike | None = ...,
        segment_ids: npt.ArrayLike | None = ...,
        num_segments: int | None = ...,
        out: npt.NDArray[np.floating[Any]] | None = ...,
        **options: float | bool,
    ) -> npt.NDArray[np.floating[Any]]: ...
    def value_and_grad(
        self,
        y_true: npt.ArrayLike,
        y_pred: npt.ArrayLike,
        *,
        reduction: Reduction = ...,
        weights: npt.ArrayLike | None = ...,
        offsets: npt.ArrayLike | None = ...,
        segment_ids: npt.ArrayLike | None = ...,
        num_segments: int | None = ...,
        out: npt.NDArray[np.floating[Any]] | None = ...,
        **options: float | bool,
    ) -> tuple[np.floating[Any] | npt.NDArray[np.floating[Any]], npt.NDArray[np.floating[Any]]]: ...

STATE_WORDS: int

class Accumulator:
    def __init__(self, name: str, reduction: str = ..., options: dict[str, Any] = ...) -> None: ...
    def update(self, *args: Any, **kwargs: Any) -> None: ...
    def _merge_one(self, other: Accumulator) -> None: ...
    def result(self) -> np.floating[Any]: ...
    def state(self) -> npt.NDArray[np.int64]: ...
    def _load_state(self, state: npt.ArrayLike) -> None: ...
    def reset(self) -> None: ...
    def _describe(self) -> str: ...
    dtype: str | None
    @property
    def count(self) -> int: ...
    @property
    def numerator(self) -> float: ...
    @property
    def denominator(self) -> float: ...
    @property
    def name(self) -> str: ...
    @property
    def reduction(self) -> str: ...
    @property
    def options(self) -> dict[str, Any]: ...

def loss_names() -> list[str]: ...
def multi_loss_names() -> list[str]: ...
def loss_info(name: str) -> dict[str, Any]: ...
def fusable(name: str) -> bool: ...
def loss_kind(name: str) -> str: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def simd_target() -> str: ...
def available_simd_targets() -> list[str]: ...
def force_simd_target(name: str) -> None: ...
