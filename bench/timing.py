"""Adaptive, interleaved timing.

Each Case is warmed up, then calibrated: the inner loop count is chosen so one
sample lasts at least `sample_s` (so a call of ~1 us at N=8 is timed over
thousands of calls and timer/loop overhead vanishes), and the number of samples
so that all samples together last at least `min_total_s` (at least
`min_samples`). Then the cases of one group are measured round-robin: sample 1
of every case, sample 2 of every case, ... so slow drifts of a shared, noisy
machine hit every implementation alike. Per-call time = sample time / inner;
the statistics are the median and the 20th/80th percentiles over samples.

Between cases of different implementations the harness sleeps `settle_s`:
OpenMP (torch) and Eigen (XLA) worker threads spin for a while after a parallel
region and would otherwise steal the second core from the next case.
"""
from __future__ import annotations

import gc
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Case:
    op: str
    impl: str
    threads: object          # int, or "all" for JAX
    fn: Callable[[], object]
    activate: Callable[[], None] = lambda: None   # e.g. set thread counts
    inner: int = 1
    samples_wanted: int = 0
    samples: list = field(default_factory=list)
    error: str | None = None

    def stats(self):
        xs = np.asarray(self.samples, dtype=np.float64)
        return (float(np.median(xs)), float(np.percentile(xs, 20)), float(np.percentile(xs, 80)))


def _run(fn, inner):
    rep = itertools.repeat(None, inner)
    t0 = time.perf_counter_ns()
    for _ in rep:
        fn()
    return (time.perf_counter_ns() - t0) * 1e-9


def calibrate(case: Case, *, warmup_s: float, sample_s: float, min_total_s: float,
              min_samples: int, max_samples: int, warmed: bool = False):
    """Choose case.inner and case.samples_wanted. warmed: fn was already called once."""
    case.activate()
    # Warm-up: at least one call (JAX compiles here), then until warmup_s.
    t_end = time.perf_counter() + warmup_s
    if not warmed:
        case.fn()
    while time.perf_counter() < t_end:
        case.fn()
    inner = 1
    while True:
        el = _run(case.fn, inner)
        if el >= sample_s or inner >= 1 << 24:
            break
        inner = max(inner * 2, math.ceil(inner * sample_s / max(el, 1e-9) * 1.2))
    per_call = el / inner
    case.inner = inner
    case.samples_wanted = int(min(max_samples, max(min_samples, math.ceil(min_total_s / (per_call * inner)))))


def measure_group(cases: list[Case], *, settle_s: float):
    """Round-robin sampling of already calibrated cases."""
    live = [c for c in cases if c.error is None]
    rounds = max((c.samples_wanted for c in live), default=0)
    gc_was = gc.isenabled()
    gc.disable()
    try:
        prev = None
        for r in range(rounds):
            for c in live:
                if r >= c.samples_wanted:
                    continue
                if settle_s and prev is not None and c.impl != prev:
                    time.sleep(settle_s)
                c.activate()
                c.samples.append(_run(c.fn, c.inner) / c.inner)
                prev = c.impl
    finally:
        if gc_was:
            gc.enable()
