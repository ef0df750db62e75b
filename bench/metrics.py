"""Metric benchmarks: accuracy and confusion-count scores against NumPy,
PyTorch and scikit-learn, and the memory floor.

    python bench/metrics.py            # ~1 min on 2 cores
    python bench/metrics.py --quick

Cases (float32 scores, 1 fastloss thread and 1 torch thread, medians of
interleaved samples, bench/timing.py); every implementation's value is
checked against fastloss's before it is timed:

* binary accuracy over N = 1e7 probabilities: ``fl.binary_accuracy`` vs
  NumPy ``((p > 0.5) == (y >= 0.5)).mean()`` vs torch's same expression;
* sparse categorical accuracy (top-1 and top-5) of R = 1e5 rows of C = 100
  logits: ``fl.sparse_categorical_accuracy`` vs NumPy ``argmax`` /
  ``argpartition`` vs torch ``argmax`` / ``topk``;
* macro F1 of the same rows (multiclass from scores): ``fl.f1_score`` vs
  scikit-learn's ``f1_score`` on ``argmax`` predictions (argmax included) vs
  a NumPy ``bincount`` formulation;
* token accuracy with the loss: sparse cross-entropy from logits of R = 1e5
  rows of C = 100 and R = 512 rows of C = 32000 (value_and_grad), alone,
  with ``hits=`` (the top-1 hits from the same pass) and followed by a
  separate ``fl.sparse_categorical_accuracy`` call;
* the floor: the time to read the inputs once at the machine's streaming
  read bandwidth (bench/floor.py).

Prints Markdown tables (times in ms) and the CPU model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fastloss as fl  # noqa: E402
from floor import measure_read_bandwidth  # noqa: E402
from streaming import cpu_model  # noqa: E402
from timing import Case, calibrate, measure_group  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - optional
    torch = None
try:
    from sklearn.metrics import f1_score as sk_f1
except ImportError:  # pragma: no cover - optional
    sk_f1 = None


def _bandwidth_gbs():
    """Streaming read bandwidth (GB/s, one thread): bench/floor.py's."""
    return measure_read_bandwidth(threads=1)["gbps"]


def _numpy_macro_f1(t, pred, C):
    tp = np.bincount(t[pred == t], minlength=C).astype(np.float64)
    fp = np.bincount(pred, minlength=C) - tp
    fn = np.bincount(t, minlength=C) - tp
    den = 2 * tp + fp + fn
    f = np.divide(2 * tp, den, out=np.zeros(C), where=den > 0)
    return f.mean()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    n = 1_000_000 if args.quick else 10_000_000
    R, C = (20_000 if args.quick else 100_000), 100
    y = (rng.random(n) < 0.4).astype(np.float32)
    p = rng.random(n).astype(np.float32)
    labels = rng.integers(0, C, R)
    logits = rng.normal(size=(R, C)).astype(np.float32)
    gbs = _bandwidth_gbs()

    groups = {}
    ref = fl.binary_accuracy(y, p)
    cases = [Case("fastloss", "fastloss", 1, lambda: fl.binary_accuracy(y, p)),
             Case("numpy", "numpy", 1, lambda: ((p > 0.5) == (y >= 0.5)).mean())]
    if torch is not None:
        ty, tp_ = torch.from_numpy(y), torch.from_numpy(p)
        cases.append(Case("torch", "torch", 1,
                          lambda: ((tp_ > 0.5) == (ty >= 0.5)).float().mean()))
    groups[f"binary_accuracy, N = {n:.0e}"] = (cases, (y.nbytes + p.nbytes) / gbs / 1e9, float(ref))

    for k in (1, 5):
        ref = fl.sparse_categorical_accuracy(labels, logits, top_k=k)
        if k == 1:
            npf = lambda: (logits.argmax(axis=1) == labels).mean()  # noqa: E731
        else:
            def npf(k=k):
                top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
                return (top == labels[:, None]).any(axis=1).mean()
        cases = [Case("fastloss", "fastloss", 1,
                      lambda k=k: fl.sparse_categorical_accuracy(labels, logits, top_k=k)),
                 Case("numpy", "numpy", 1, npf)]
        if torch is not None:
            tl, tx = torch.from_numpy(labels), torch.from_numpy(logits)
            if k == 1:
                tf = lambda: (tx.argmax(dim=1) == tl).float().mean()  # noqa: E731
            else:
                tf = lambda k=k: (tx.topk(k, dim=1).indices == tl[:, None]).any(dim=1).float().mean()  # noqa: E731
            cases.append(Case("torch", "torch", 1, tf))
        groups[f"sparse_categorical_accuracy top_k={k}, {R} x {C}"] = (
            cases, (logits.nbytes + labels.nbytes) / gbs / 1e9, float(ref))

    ref = fl.f1_score(labels, logits, task="multiclass", average="macro")
    cases = [Case("fastloss", "fastloss", 1,
                  lambda: fl.f1_score(labels, logits, task="multiclass", average="macro")),
             Case("numpy bincount", "numpy", 1,
                  lambda: _numpy_macro_f1(labels, logits.argmax(axis=1), C))]
    if sk_f1 is not None:
        cases.append(Case("scikit-learn", "sklearn", 1,
                          lambda: sk_f1(labels, logits.argmax(axis=1), average="macro",
                                        labels=np.arange(C), zero_division=0.0)))
    groups[f"f1_score macro, multiclass, {R} x {C}"] = (
        cases, (logits.nbytes + labels.nbytes) / gbs / 1e9, float(ref))

    big_r, big_c = (128, 32000) if args.quick else (512, 32000)
    for rr, cc in ((R, C), (big_r, big_c)):
        lx = logits if (rr, cc) == (R, C) else rng.normal(size=(rr, cc)).astype(np.float32)
        lt = labels if (rr, cc) == (R, C) else rng.integers(0, cc, rr)
        hbuf = np.empty(rr, np.float32)
        vg = fl.sparse_categorical_cross_entropy.value_and_grad
        cases = [
            Case("value_and_grad", "fastloss", 1, lambda lx=lx, lt=lt: vg(lt, lx, from_logits=True)),
            Case("value_and_grad, hits=", "fastloss", 1,
                 lambda lx=lx, lt=lt, h=hbuf: vg(lt, lx, from_logits=True, hits=h)),
            Case("value_and_grad + sparse_categorical_accuracy", "fastloss", 1,
                 lambda lx=lx, lt=lt: (vg(lt, lx, from_logits=True),
                                       fl.sparse_categorical_accuracy(lt, lx))),
        ]
        groups[f"sparse CE + token accuracy, {rr} x {cc}"] = (cases, (lx.nbytes * 2) / gbs / 1e9, None)

    settings = dict(warmup_s=0.05, sample_s=0.004 if args.quick else 0.01,
                    min_total_s=0.1 if args.quick else 0.4, min_samples=5, max_samples=100)
    old = fl.get_num_threads()
    fl.set_num_threads(1)
    if torch is not None:
        torch.set_num_threads(1)
    try:
        print(f"CPU: {cpu_model()}; SIMD target {fl.simd_target()}; 1 thread; float32; "
              f"read bandwidth {gbs:.1f} GB/s\n")
        print("| metric | impl | median ms | vs fastloss | value agrees |")
        print("|---|---|---:|---:|---|")
        for title, (cases, floor_s, ref) in groups.items():
            agrees = {}
            for c in cases:
                if ref is None:  # the loss cases: timing only
                    agrees[c.op] = "n/a"
                    continue
                v = float(c.fn())
                agrees[c.op] = "yes" if abs(v - ref) <= 1e-6 * max(1.0, abs(ref)) else f"no: {v} != {ref}"
            for c in cases:
                calibrate(c, **settings)
            measure_group(cases, settle_s=0.0)
            base = cases[0].stats()[0]
            for c in cases:
                t = c.stats()[0]
                print(f"| {title} | {c.op} | {t * 1e3:.3f} | {t / base:.2f}x | {agrees[c.op]} |")
            what = "floor (read once)" if ref is not None else "floor (read logits, write grad)"
            print(f"| {title} | {what} | {floor_s * 1e3:.3f} | {floor_s / base:.2f}x | |")
    finally:
        fl.set_num_threads(old)


if __name__ == "__main__":
    main()
