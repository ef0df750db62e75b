"""Test hooks: run the SIMD kernels of one instruction set at a time.

Forcing a target is process-wide and not synchronised with calls running in
other threads; use it in tests, never in production code.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from . import _core


def simd_targets() -> list[str]:
    """The SIMD targets compiled in and supported by this CPU, best first."""
    return list(_core.available_simd_targets())


@contextlib.contextmanager
def force_target(name: str) -> Iterator[str]:
    """Within the block, every kernel runs the ``name`` target (e.g. "SSE4")."""
    if name not in simd_targets():
        raise ValueError(f"SIMD target {name!r} is not available here: {simd_targets()}")
    _core.force_simd_target(name)
    try:
        yield name
    finally:
        _core.force_simd_target("")
