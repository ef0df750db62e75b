"""Determinism and thread safety: float64 accumulation of huge float32 inputs,
bit-identical results for any thread count, concurrent callers."""

import concurrent.futures
import functools
import threading

import numpy as np
import pytest

import fastloss as fl
from checks import DTYPES, LOSS_NAMES, REDUCTIONS, assert_close, expected, make_data, rtol_for


def dtype_id(dtype):
    return np.dtype(dtype).name


def test_float32_twenty_million_mean_accuracy():
    """2e7 float32 elements: the mean is accumulated in float64, not in float32
    lanes that drift (a float32 running sum would be ~1e-3 off)."""
    n = 20_000_000
    rng = np.random.default_rng(2024)
    y = rng.standard_normal(n, dtype=np.float32)
    p = (rng.standard_normal(n, dtype=np.float32) + np.float32(0.5)).astype(np.float32)
    v = fl.mse(y, p)
    assert type(v) is np.float32
    total = 0.0
    chunk = 1 << 21
    for i in range(0, n, chunk):
        r = p[i : i + chunk].astype(np.float64) - y[i : i + chunk].astype(np.float64)
        total += float(np.dot(r, r))
    ref = total / n
    assert abs(float(v) - ref) <= 1e-6 * ref, (float(v), ref)
    s = fl.mse(y, p, reduction="sum")
    assert abs(float(s) - total) <= 1e-6 * total, (float(s), total)


N_BIG = 3_000_000


@functools.lru_cache(maxsize=None)
def big_data(name, dtype):
    y, p = make_data(name, {}, (N_BIG,), dtype, 77)
    y.setflags(write=False)
    p.setflags(write=False)
    return y, p


def run_all(fn, y, p, reduction, weights=None):
    v = fn(y, p, reduction=reduction, weights=weights)
    g = fn.grad(y, p, reduction=reduction, weights=weights)
    v2, g2 = fn.value_and_grad(y, p, reduction=reduction, weights=weights)
    return [np.asarray(v).tobytes(), g.tobytes(), np.asarray(v2).tobytes(), g2.tobytes()]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_bit_identical_across_thread_counts(name, dtype, restore_threads):
    fn = getattr(fl, name)
    y, p = big_data(name, dtype)
    for reduction in REDUCTIONS:
        results = {}
        for n_threads in (1, 2, 3):
            fl.set_num_threads(n_threads)
            results[n_threads] = run_all(fn, y, p, reduction)
        for n_threads in (2, 3):
            for what, a, b in zip(["value", "grad", "vg value", "vg grad"], results[1], results[n_threads]):
                assert a == b, f"{name} {reduction} {what}: 1 thread and {n_threads} threads differ"
    # and the threaded result is the right one
    fl.set_num_threads(3)
    v = fn(y, p, reduction="sum")
    ev, _, vm, _ = expected(name, {}, y, p, reduction="sum")
    assert_close(v, ev, rtol=rtol_for(name, dtype), mag=vm, what=f"{name} sum of {N_BIG}")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_bit_identical_weighted_2d(dtype, restore_threads):
    y, p = big_data("huber", dtype)
    y, p = y.reshape(30_000, 100), p.reshape(30_000, 100)
    w = np.random.default_rng(78).uniform(0.5, 2.0, (30_000, 1))
    for reduction in ("mean", "sum"):
        results = {}
        for n_threads in (1, 2, 3):
            fl.set_num_threads(n_threads)
            results[n_threads] = run_all(fl.huber, y, p, reduction, weights=w)
            results[n_threads].append(fl.huber.grad(y[:, ::-3], p[:, ::-3], reduction=reduction).tobytes())
        assert results[1] == results[2] == results[3], reduction
    ev, eg, vm, gm = expected("huber", {}, y, p, weights=w, reduction="mean")
    assert_close(fl.huber(y, p, weights=w), ev, rtol=rtol_for("huber", dtype), mag=vm, what="weighted mean")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_single_thread_matches_reference(dtype, restore_threads):
    fl.set_num_threads(1)
    y, p = big_data("log_cosh", dtype)
    for reduction in ("mean", "sum"):
        v = fl.log_cosh(y, p, reduction=reduction)
        ev, _, vm, _ = expected("log_cosh", {}, y, p, reduction=reduction)
        assert_close(v, ev, rtol=rtol_for("log_cosh", dtype), mag=vm, what=reduction)


def _job_list():
    rng = np.random.default_rng(99)
    jobs = []
    sizes = [10, 1000, 50_000, 1_000_000, 7, 333_333, 2_000_000, 129]
    for i, n in enumerate(sizes):
        name = LOSS_NAMES[i % len(LOSS_NAMES)]
        dtype = DTYPES[i % 2]
        y, p = make_data(name, {}, (n,), dtype, 200 + i)
        w = rng.uniform(0.5, 2.0, n) if i % 3 == 0 else None
        reduction = REDUCTIONS[i % 3]
        jobs.append((name, y, p, reduction, w))
    return jobs


def _run_job(job, barrier=None, repeat=1):
    name, y, p, reduction, w = job
    fn = getattr(fl, name)
    if barrier is not None:
        barrier.wait(timeout=60)
    out = None
    for _ in range(repeat):
        v, g = fn.value_and_grad(y, p, reduction=reduction, weights=w)
        v1 = fn(y, p, reduction=reduction, weights=w)
        g1 = fn.grad(y, p, reduction=reduction, weights=w)
        res = (np.asarray(v).tobytes(), g.tobytes(), np.asarray(v1).tobytes(), g1.tobytes())
        if out is None:
            out = res
        assert res == out, f"{name}: repeated call in a thread gave a different result"
    return out


def test_eight_python_threads_at_once():
    jobs = _job_list()
    sequential = [_run_job(job) for job in jobs]
    for _ in range(3):
        barrier = threading.Barrier(len(jobs))
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as ex:
            futures = [ex.submit(_run_job, job, barrier, 3) for job in jobs]
            results = [f.result(timeout=120) for f in futures]
        for job, seq, res in zip(jobs, sequential, results):
            assert seq == res, f"{job[0]} (n={job[1].size}) differs when run concurrently"


def test_many_small_calls_from_threads():
    """Small inputs stay on the caller's thread; many callers at once still get
    their own answers."""
    rng = np.random.default_rng(5)
    data = [(rng.normal(size=17), rng.normal(size=17)) for _ in range(64)]
    expect = [fl.huber.value_and_grad(y, p) for y, p in data]

    def work(k):
        for _ in range(50):
            for i in range(k, len(data), 8):
                v, g = fl.huber.value_and_grad(*data[i])
                if v != expect[i][0] or not np.array_equal(g, expect[i][1]):
                    return i
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        bad = [r for r in ex.map(work, range(8)) if r is not None]
    assert not bad, f"wrong results for inputs {bad}"
