#!/usr/bin/env python
"""Markdown tables from bench/run.py's long-format CSV.

    python bench/table.py [bench/results/results.csv] [--dtype float32] [--n 1e7] [--small-n 8]

Prints: a header naming machine, SIMD target, thread counts and versions; the
large-N time table (1T / 2T in one cell); the issue's targets (ratios vs the
bandwidth floor, speed-ups vs NumPy and torch, 2T/1T scaling, N=8 per-call
time); and the per-call overhead table at the small N.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
LOSS_ORDER = ["mse", "mae", "huber", "smooth_l1", "quantile", "log_cosh", "msle", "poisson_nll", "mape"]
try:
    sys.path.insert(0, HERE)
    from impls import LOSS_CLASS
except Exception:  # noqa: BLE001  (table.py must work from a CSV alone)
    LOSS_CLASS = {}

DASH = "—"


def load(csv_path):
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    t = {}
    for r in rows:
        t[(r["impl"], r["op"], r["loss"], int(r["n"]), r["dtype"], str(r["threads"]))] = float(r["median_s"])
    return rows, t


def sig(x, digits=3):
    if x is None:
        return DASH
    if x == 0:
        return "0"
    s = f"{x:.{digits}g}"
    if "e" in s:  # keep plain notation
        s = f"{x:.{max(0, digits - 1)}f}"
    return s


def ratio(a, b, suffix="×"):
    if a is None or b is None or b == 0:
        return DASH
    return f"{a / b:.2f}{suffix}"


def header(rows, t):
    first = {}
    for r in rows:
        first.setdefault(r["impl"], r)
    any_row = rows[0]
    ints = sorted({int(r["threads"]) for r in rows if r["threads"].isdigit()})
    vers = [f"{impl} {first[impl]['version']}" for impl in ("fastloss", "numpy", "torch", "jax") if impl in first]
    simd = next((r["simd_target"] for r in rows if r["simd_target"]), "n/a")
    lines = [
        f"**Machine:** {any_row['machine']} · **SIMD target:** {simd} · "
        f"**threads:** 1T = 1 thread, {ints[-1]}T = {ints[-1]} threads (fastloss `set_num_threads`, torch "
        f"`set_num_threads`); NumPy 1 thread; JAX = all cores (XLA pool, not pinnable per run) · "
        f"**versions:** {', '.join(vers)}",
    ]
    bw = []
    for th in ints:
        cands = [(int(r["n"]) / float(r["median_s"]) / 1e9, r["loss"]) for r in rows
                 if r["op"] == "read_bandwidth" and r["threads"] == str(th)]
        if cands:
            g, k = max(cands)
            bw.append(f"{g:.1f} GB/s {th}T")
    if bw:
        lines.append(f"**Read bandwidth** (NumPy reductions over a large buffer, bench/floor.py): {', '.join(bw)}. "
                     "Floor = bytes that must move / that bandwidth: value 2·N·itemsize, value_and_grad 3·N·itemsize.")
    return lines, ints


def render(csv_path, dtypes=None, n_big=None, n_small=None):
    rows, t = load(csv_path)
    out, ints = header(rows, t)
    T1, TA = "1", str(ints[-1]) if ints else "1"
    loss_rows = [r for r in rows if r["op"] != "read_bandwidth"]
    sizes = sorted({int(r["n"]) for r in loss_rows})
    if not sizes:
        return "\n".join(out) + "\n"
    present_dtypes = [d for d in ("float32", "float64") if any(r["dtype"] == d for r in loss_rows)]
    dtypes = dtypes or present_dtypes
    n_big = n_big if n_big in sizes else sizes[-1]
    n_small = n_small if n_small in sizes else sizes[0]
    losses = [l for l in LOSS_ORDER if any(r["loss"] == l for r in loss_rows)]

    def g(impl, op, loss, n, dtype, th):
        return t.get((impl, op, loss, n, dtype, th))

    def pair(impl, op, loss, n, dtype, scale):
        a, b = g(impl, op, loss, n, dtype, T1), g(impl, op, loss, n, dtype, TA)
        if a is None and b is None:
            return DASH
        if TA == T1:
            return sig(a * scale if a is not None else None)
        return f"{sig(a * scale if a is not None else None)} / {sig(b * scale if b is not None else None)}"

    for dtype in dtypes:
        n = n_big
        out += ["", f"### {dtype}, N = {n:,}: median time per call, ms (1T / {TA}T)", ""]
        cols = ["loss", "fastloss value", "fastloss v+g", "fastloss v+g out=", "NumPy value", "NumPy v+g",
                "torch fwd", "torch fwd+bwd", "JAX value", "JAX v+g", "floor value", "floor v+g"]
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for loss in losses:
            ms = 1e3
            cells = [loss,
                     pair("fastloss", "value", loss, n, dtype, ms),
                     pair("fastloss", "value_and_grad", loss, n, dtype, ms),
                     pair("fastloss", "value_and_grad_out", loss, n, dtype, ms),
                     sig(_m(g("numpy", "value", loss, n, dtype, "1"), ms)),
                     sig(_m(g("numpy", "value_and_grad", loss, n, dtype, "1"), ms)),
                     pair("torch", "value", loss, n, dtype, ms),
                     pair("torch", "value_and_grad", loss, n, dtype, ms),
                     sig(_m(g("jax", "value", loss, n, dtype, "all"), ms)),
                     sig(_m(g("jax", "value_and_grad", loss, n, dtype, "all"), ms)),
                     pair("floor", "value", loss, n, dtype, ms),
                     pair("floor", "value_and_grad", loss, n, dtype, ms)]
            out.append("| " + " | ".join(cells) + " |")

        out += ["", f"### {dtype}: targets (N = {n:,} unless noted; time ÷ floor, lower is better, 1.00× = at the "
                f"floor; speed-up = other ÷ fastloss, higher is better)", ""]
        cols = ["loss", "class", f"value÷floor 1T / {TA}T", f"v+g÷floor 1T / {TA}T",
                f"v+g out=÷floor 1T / {TA}T", "v+g speed-up vs NumPy v+g (1T)",
                f"v+g speed-up vs torch fwd+bwd 1T / {TA}T", f"{TA}T÷1T speed-up value / v+g",
                f"N={n_small} per call, µs value / v+g (1T)"]
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for loss in losses:
            fv1, fvA = g("fastloss", "value", loss, n, dtype, T1), g("fastloss", "value", loss, n, dtype, TA)
            fg1, fgA = g("fastloss", "value_and_grad", loss, n, dtype, T1), g("fastloss", "value_and_grad", loss, n, dtype, TA)
            fo1, foA = (g("fastloss", "value_and_grad_out", loss, n, dtype, T1),
                        g("fastloss", "value_and_grad_out", loss, n, dtype, TA))
            flv1, flvA = g("floor", "value", loss, n, dtype, T1), g("floor", "value", loss, n, dtype, TA)
            flg1, flgA = g("floor", "value_and_grad", loss, n, dtype, T1), g("floor", "value_and_grad", loss, n, dtype, TA)
            s1 = g("fastloss", "value", loss, n_small, dtype, T1)
            s2 = g("fastloss", "value_and_grad", loss, n_small, dtype, T1)
            cells = [
                loss, LOSS_CLASS.get(loss, ""),
                f"{ratio(fv1, flv1)} / {ratio(fvA, flvA)}",
                f"{ratio(fg1, flg1)} / {ratio(fgA, flgA)}",
                f"{ratio(fo1, flg1)} / {ratio(foA, flgA)}",
                ratio(g("numpy", "value_and_grad", loss, n, dtype, "1"), fg1),
                f"{ratio(g('torch', 'value_and_grad', loss, n, dtype, T1), fg1)} / "
                f"{ratio(g('torch', 'value_and_grad', loss, n, dtype, TA), fgA)}",
                f"{ratio(fv1, fvA)} / {ratio(fg1, fgA)}",
                f"{sig(_m(s1, 1e6))} / {sig(_m(s2, 1e6))}",
            ]
            out.append("| " + " | ".join(cells) + " |")
        out += ["", "Targets: bandwidth-class losses judged by value÷floor and v+g÷floor; transcendental-class "
                "losses by the v+g speed-ups; all by 2T÷1T scaling and the N-small per-call time."]

        ns = n_small
        out += ["", f"### {dtype}, N = {ns:,}: per-call time, µs (1 thread; JAX: all)", ""]
        cols = ["loss", "fastloss value", "fastloss v+g", "fastloss v+g out=", "NumPy value", "NumPy v+g",
                "torch fwd", "torch fwd+bwd", "JAX value", "JAX v+g"]
        out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for loss in losses:
            us = 1e6
            cells = [loss] + [sig(_m(g(impl, op, loss, ns, dtype, th), us)) for impl, op, th in [
                ("fastloss", "value", T1), ("fastloss", "value_and_grad", T1), ("fastloss", "value_and_grad_out", T1),
                ("numpy", "value", "1"), ("numpy", "value_and_grad", "1"),
                ("torch", "value", T1), ("torch", "value_and_grad", T1),
                ("jax", "value", "all"), ("jax", "value_and_grad", "all")]]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _m(x, s):
    return None if x is None else x * s


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="?", default=os.path.join(HERE, "results", "results.csv"))
    ap.add_argument("--dtype", action="append", help="float32 and/or float64 (default: all present)")
    ap.add_argument("--n", type=float, default=1e7, help="large N (default 1e7; else the largest present)")
    ap.add_argument("--small-n", type=float, default=8, help="per-call N (default 8; else the smallest present)")
    a = ap.parse_args(argv)
    sys.stdout.write(render(a.csv, a.dtype, int(a.n), int(a.small_n)))


if __name__ == "__main__":
    main()
