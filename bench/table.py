#!/usr/bin/env python
"""Markdown tables from bench/run.py's long-format CSV.

    python bench/table.py [bench/results/results.csv] [--dtype float32] [--n 1e7] [--small-n 8]
    python bench/table.py bench/results/classification.csv   # classification tables (auto-detected)
    python bench/table.py bench/results/structured.csv       # structured-loss tables (auto-detected)

Prints: a header naming machine, SIMD target, thread counts and versions; per
dtype the time table (1T / 2T in one cell) and the group's tables: for the
regression losses (at the large N) the issue's targets (ratios vs the
bandwidth floor, speed-ups vs NumPy and torch, 2T/1T scaling, N=8 per-call
time) and the per-call overhead table at the small N; for the classification
and structured losses (per shape) the speed-ups against the issue's targets
with a verdict; then the legend from the groups' Specs (bench/spec.py). One
renderer (render) writes every group's tables; VIEWS holds what differs.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
try:
    sys.path.insert(0, HERE)
    import spec as _spec
    SPECS = {g.name: __import__(g.module).SPECS for g in _spec.GROUPS.values()}
except Exception:  # noqa: BLE001  (table.py must work from a CSV alone)
    SPECS = {}
# The targets of a Spec's `target`, on fastloss value_and_grad: (reference impl, reference op, its
# threads ("1", "all"), fastloss threads ("1" or "all"), minimum speed-up).
TARGETS = {
    # classification: binary >= 10x NumPy v+g and >= 4x torch fwd+bwd (1T), >= 3x JAX v+g (all threads);
    # sparse_cce >= 4x torch fwd+bwd (1T), >= 3x JAX v+g
    "binary": [("numpy", "value_and_grad", "1", "1", 10.0), ("torch", "value_and_grad", "1", "1", 4.0),
               ("jax", "value_and_grad", "all", "all", 3.0)],
    "sparse": [("torch", "value_and_grad", "1", "1", 4.0), ("jax", "value_and_grad", "all", "all", 3.0)],
    # structured (float32, 1 thread): dice, cosine_similarity, triplet_margin, box_*: >= 10x NumPy v+g and
    # >= 5x torch fwd+bwd ("ranking": pairwise_ranking at n = 1e6 under 1 s, below)
    "main": [("numpy", "value_and_grad", "1", "1", 10.0), ("torch", "value_and_grad", "1", "1", 5.0)],
}
ST_RANKING_N = 1_000_000
ST_RANKING_LIMIT_S = 1.0

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
        if abs(x) >= 1:
            s = f"{x:.0f}"
        else:
            s = f"{x:.{digits - 1 - math.floor(math.log10(abs(x)))}f}"
    return s


def ratio(a, b, suffix="×"):
    if a is None or b is None or b == 0:
        return DASH
    return f"{a / b:.2f}{suffix}"


def header(rows, t, floor_note=None):
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
                     + (floor_note or "Floor = bytes that must move / that bandwidth: value 2·N·itemsize, "
                        "value_and_grad 3·N·itemsize."))
    return lines, ints


def _m(x, s):
    return None if x is None else x * s


class Times:
    """The medians of one CSV and the lookups every table makes of them."""

    def __init__(self, csv_path, floor_note=None):
        self.rows, self.t = load(csv_path)
        self.head, ints = header(self.rows, self.t, floor_note)
        self.T1, self.TA = "1", str(ints[-1]) if ints else "1"
        self.loss_rows = [r for r in self.rows if r["op"] != "read_bandwidth"]

    def g(self, impl, op, loss, n, dtype, th):
        """The median; th "all" is the largest thread count but for JAX."""
        if th == "all" and impl != "jax":
            th = self.TA
        return self.t.get((impl, op, loss, n, dtype, th))

    def pair(self, impl, op, loss, n, dtype, scale):
        """'1T / allT' times scale."""
        a, b = self.g(impl, op, loss, n, dtype, self.T1), self.g(impl, op, loss, n, dtype, self.TA)
        if a is None and b is None:
            return DASH
        if self.TA == self.T1:
            return sig(_m(a, scale))
        return f"{sig(_m(a, scale))} / {sig(_m(b, scale))}"

    def missed(self, rules, loss, n, dtype):
        """The targets ``rules`` (TARGETS) that fastloss value_and_grad misses, as words."""
        missed = []
        for impl, op, oth, fth, x in rules:
            other = self.g(impl, op, loss, n, dtype, oth)
            mine = self.g("fastloss", "value_and_grad", loss, n, dtype, fth)
            if mine is None:
                return ["fastloss not measured"]
            if other is None:
                missed.append(f"{impl}: not measured")
            elif other / mine < x:
                missed.append(f"{impl} {other / mine:.2f}× < {x:g}×")
        return missed


def speedup(other, mine, need=None):
    if other is None or mine is None or mine == 0:
        return DASH
    x = other / mine
    mark = "" if need is None else (" ✓" if x >= need else " ✗")
    return f"{x:.2f}×{mark}"


def table(cols, rows):
    """A Markdown table: the header row, its rule, a row of cells per row."""
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)] + ["| " + " | ".join(r) + " |" for r in rows]


def time_table(v, cells, dtype, shape=None, jax=True):
    """Median time per call in ms, 1T / allT, of each (loss, n) of ``cells``;
    ``shape``: the shape column's names of the cells (none for N)."""
    ms = 1e3
    cols = (["loss"] + (["shape"] if shape else []) + ["fastloss value", "fastloss v+g", "fastloss v+g out=",
                                                        "NumPy value", "NumPy v+g", "torch fwd", "torch fwd+bwd"]
            + (["JAX value", "JAX v+g"] if jax else []) + ["floor value", "floor v+g"])
    rows = []
    for loss, n in cells:
        rows.append([loss] + ([shape[(loss, n)]] if shape else []) + [
            v.pair("fastloss", "value", loss, n, dtype, ms),
            v.pair("fastloss", "value_and_grad", loss, n, dtype, ms),
            v.pair("fastloss", "value_and_grad_out", loss, n, dtype, ms),
            sig(_m(v.g("numpy", "value", loss, n, dtype, "1"), ms)),
            sig(_m(v.g("numpy", "value_and_grad", loss, n, dtype, "1"), ms)),
            v.pair("torch", "value", loss, n, dtype, ms),
            v.pair("torch", "value_and_grad", loss, n, dtype, ms),
        ] + ([sig(_m(v.g("jax", "value", loss, n, dtype, "all"), ms)),
              sig(_m(v.g("jax", "value_and_grad", loss, n, dtype, "all"), ms))] if jax else []) + [
            v.pair("floor", "value", loss, n, dtype, ms),
            v.pair("floor", "value_and_grad", loss, n, dtype, ms)])
    return table(cols, rows)


# --------------------------------------------------------------------------
# Each group's tables after the time table: (title of the time table,
# targets-and-more function, notes). One renderer (render) runs them all.
# --------------------------------------------------------------------------


def _regression_tables(v, dtype, cells, shape, n_small):
    """The issue's targets (ratios to the floor, speed-ups, scaling, the
    small-N call) and the per-call times at the small N."""
    T1, TA, g = v.T1, v.TA, v.g
    n = cells[0][1] if cells else 0
    out = ["", f"### {dtype}: targets (N = {n:,} unless noted; time ÷ floor, lower is better, 1.00× = at the "
           f"floor; speed-up = other ÷ fastloss, higher is better)", ""]
    cols = ["loss", "class", f"value÷floor 1T / {TA}T", f"v+g÷floor 1T / {TA}T",
            f"v+g out=÷floor 1T / {TA}T", "v+g speed-up vs NumPy v+g (1T)",
            f"v+g speed-up vs torch fwd+bwd 1T / {TA}T", f"{TA}T÷1T speed-up value / v+g",
            f"N={n_small} per call, µs value / v+g (1T)"]
    rows = []
    for loss, _ in cells:
        fv1, fvA = g("fastloss", "value", loss, n, dtype, T1), g("fastloss", "value", loss, n, dtype, TA)
        fg1, fgA = g("fastloss", "value_and_grad", loss, n, dtype, T1), g("fastloss", "value_and_grad", loss, n, dtype, TA)
        fo1, foA = (g("fastloss", "value_and_grad_out", loss, n, dtype, T1),
                    g("fastloss", "value_and_grad_out", loss, n, dtype, TA))
        flv1, flvA = g("floor", "value", loss, n, dtype, T1), g("floor", "value", loss, n, dtype, TA)
        flg1, flgA = g("floor", "value_and_grad", loss, n, dtype, T1), g("floor", "value_and_grad", loss, n, dtype, TA)
        s1 = g("fastloss", "value", loss, n_small, dtype, T1)
        s2 = g("fastloss", "value_and_grad", loss, n_small, dtype, T1)
        target = SPECS.get("regression", {}).get(loss)
        rows.append([
            loss, target.target if target else "",
            f"{ratio(fv1, flv1)} / {ratio(fvA, flvA)}",
            f"{ratio(fg1, flg1)} / {ratio(fgA, flgA)}",
            f"{ratio(fo1, flg1)} / {ratio(foA, flgA)}",
            ratio(g("numpy", "value_and_grad", loss, n, dtype, "1"), fg1),
            f"{ratio(g('torch', 'value_and_grad', loss, n, dtype, T1), fg1)} / "
            f"{ratio(g('torch', 'value_and_grad', loss, n, dtype, TA), fgA)}",
            f"{ratio(fv1, fvA)} / {ratio(fg1, fgA)}",
            f"{sig(_m(s1, 1e6))} / {sig(_m(s2, 1e6))}",
        ])
    out += table(cols, rows)
    out += ["", "Targets: bandwidth-class losses judged by value÷floor and v+g÷floor; transcendental-class "
            "losses by the v+g speed-ups; all by 2T÷1T scaling and the N-small per-call time."]

    ns = n_small
    out += ["", f"### {dtype}, N = {ns:,}: per-call time, µs (1 thread; JAX: all)", ""]
    cols = ["loss", "fastloss value", "fastloss v+g", "fastloss v+g out=", "NumPy value", "NumPy v+g",
            "torch fwd", "torch fwd+bwd", "JAX value", "JAX v+g"]
    rows = []
    for loss, _ in cells:
        rows.append([loss] + [sig(_m(g(impl, op, loss, ns, dtype, th), 1e6)) for impl, op, th in [
            ("fastloss", "value", T1), ("fastloss", "value_and_grad", T1), ("fastloss", "value_and_grad_out", T1),
            ("numpy", "value", "1"), ("numpy", "value_and_grad", "1"),
            ("torch", "value", T1), ("torch", "value_and_grad", T1),
            ("jax", "value", "all"), ("jax", "value_and_grad", "all")]])
    return out + table(cols, rows)


def _classification_tables(v, dtype, cells, shape, n_small):
    """Speed-ups against the issue's targets (fastloss value_and_grad,
    allocating) and time ÷ floor."""
    T1, TA, g = v.T1, v.TA, v.g
    out = ["", f"### Classification, {dtype}: speed-ups (other ÷ fastloss; higher is better) and time ÷ floor "
           f"(lower is better). ✓/✗: the issue's target (binary: ≥10× NumPy v+g 1T, ≥4× torch fwd+bwd 1T, "
           f"≥3× JAX v+g with fastloss on {TA}T; sparse_cce: ≥4× torch fwd+bwd 1T, ≥3× JAX v+g)", ""]
    cols = ["loss", "shape", "target", "v+g vs NumPy v+g (1T)", f"v+g vs torch fwd+bwd 1T / {TA}T",
            f"v+g {TA}T vs JAX v+g", f"value vs NumPy / torch fwd 1T / JAX ({TA}T)",
            f"v+g÷floor 1T / {TA}T", f"v+g out=÷floor 1T / {TA}T", f"{TA}T÷1T value / v+g", "verdict"]
    rows = []
    for loss, n in cells:
        spec = SPECS.get("classification", {}).get(loss)
        cls = spec.target if spec else ""
        need = {(impl, th): x for impl, _, _, th, x in TARGETS.get(cls, [])}
        fg1, fgA = g("fastloss", "value_and_grad", loss, n, dtype, T1), g("fastloss", "value_and_grad", loss, n, dtype, TA)
        fo1, foA = (g("fastloss", "value_and_grad_out", loss, n, dtype, T1),
                    g("fastloss", "value_and_grad_out", loss, n, dtype, TA))
        fv1, fvA = g("fastloss", "value", loss, n, dtype, T1), g("fastloss", "value", loss, n, dtype, TA)
        flg1, flgA = g("floor", "value_and_grad", loss, n, dtype, T1), g("floor", "value_and_grad", loss, n, dtype, TA)
        missed = v.missed(TARGETS.get(cls, []), loss, n, dtype)
        verdict = DASH if not cls else ("all met" if not missed else "missed: " + "; ".join(missed))
        rows.append([
            loss, shape[(loss, n)], cls or DASH,
            speedup(g("numpy", "value_and_grad", loss, n, dtype, "1"), fg1, need.get(("numpy", "1"))),
            f"{speedup(g('torch', 'value_and_grad', loss, n, dtype, T1), fg1, need.get(('torch', '1')))} / "
            f"{speedup(g('torch', 'value_and_grad', loss, n, dtype, TA), fgA)}",
            speedup(g("jax", "value_and_grad", loss, n, dtype, "all"), fgA, need.get(("jax", "all"))),
            f"{speedup(g('numpy', 'value', loss, n, dtype, '1'), fv1)} / "
            f"{speedup(g('torch', 'value', loss, n, dtype, T1), fv1)} / "
            f"{speedup(g('jax', 'value', loss, n, dtype, 'all'), fvA)}",
            f"{ratio(fg1, flg1)} / {ratio(fgA, flgA)}",
            f"{ratio(fo1, flg1)} / {ratio(foA, flgA)}",
            f"{ratio(fv1, fvA)} / {ratio(fg1, fgA)}",
            verdict])
    return out + table(cols, rows)


def _structured_tables(v, dtype, cells, shape, n_small):
    """The issue's targets (fastloss value_and_grad, allocating its
    gradients, 1 thread) and time ÷ floor."""
    T1, TA, g = v.T1, v.TA, v.g
    out = ["", f"### Structured losses, {dtype}: speed-ups (other ÷ fastloss; higher is better) and time ÷ "
           f"floor (lower is better). ✓/✗: the issue's targets on fastloss v+g, 1 thread (dice, "
           f"cosine_similarity, triplet_margin, box_*: ≥10× NumPy v+g and ≥5× torch fwd+bwd; "
           f"pairwise_ranking n = {ST_RANKING_N:,}: under {ST_RANKING_LIMIT_S:g} s)", ""]
    cols = ["loss", "shape", "target", "v+g vs NumPy v+g (1T)", f"v+g vs torch fwd+bwd 1T / {TA}T",
            "value vs NumPy / torch fwd (1T)", f"v+g÷floor 1T / {TA}T", f"{TA}T÷1T value / v+g", "verdict"]
    rows = []
    for loss, n in cells:
        spec = SPECS.get("structured", {}).get(loss)
        cls = spec.target if spec else ""
        need = {impl: x for impl, _, _, _, x in TARGETS.get(cls, [])} if cls == "main" else {}
        fg1, fgA = g("fastloss", "value_and_grad", loss, n, dtype, T1), g("fastloss", "value_and_grad", loss, n, dtype, TA)
        fv1, fvA = g("fastloss", "value", loss, n, dtype, T1), g("fastloss", "value", loss, n, dtype, TA)
        flg1, flgA = g("floor", "value_and_grad", loss, n, dtype, T1), g("floor", "value_and_grad", loss, n, dtype, TA)
        target = DASH
        verdict = DASH
        if cls == "main":
            target = "≥10× NumPy, ≥5× torch"
            missed = v.missed(TARGETS[cls], loss, n, dtype)
            verdict = "all met" if not missed else "missed: " + "; ".join(missed)
        elif cls == "ranking" and n == ST_RANKING_N:
            target = f"v+g < {ST_RANKING_LIMIT_S:g} s"
            if fg1 is None:
                verdict = "fastloss not measured"
            else:
                ok = fg1 < ST_RANKING_LIMIT_S and (fv1 is None or fv1 < ST_RANKING_LIMIT_S)
                verdict = (f"v+g {sig(fg1 * 1e3)} ms, value {sig(_m(fv1, 1e3))} ms (1T) "
                           + ("✓" if ok else "✗"))
        rows.append([
            loss, shape[(loss, n)], target,
            speedup(g("numpy", "value_and_grad", loss, n, dtype, "1"), fg1, need.get("numpy")),
            f"{speedup(g('torch', 'value_and_grad', loss, n, dtype, T1), fg1, need.get('torch'))} / "
            f"{speedup(g('torch', 'value_and_grad', loss, n, dtype, TA), fgA)}",
            f"{speedup(g('numpy', 'value', loss, n, dtype, '1'), fv1)} / "
            f"{speedup(g('torch', 'value', loss, n, dtype, T1), fv1)}",
            f"{ratio(fg1, flg1)} / {ratio(fgA, flgA)}",
            f"{ratio(fv1, fvA)} / {ratio(fg1, fgA)}",
            verdict])
    return out + table(cols, rows)


# Per group: the time table's title (str.format of dtype, n, TA), whether it
# has JAX columns, the floor's note under the header, the tables after it,
# the legend's introduction, and whether the JSON's notes and check
# mismatches are listed.
VIEWS = {
    "regression": dict(
        title="### {dtype}, N = {n:,}: median time per call, ms (1T / {TA}T)", jax=True, floor_note=None,
        tables=_regression_tables, legend=None, meta=False),
    "classification": dict(
        title="### Classification, {dtype}: median time per call, ms (1T / {TA}T)", jax=True,
        floor_note="Floor = bytes that must move / that bandwidth: value reads y_true and y_pred (labels: int64, "
                   "R·8 bytes), value_and_grad also writes the gradient (y_pred's size). Arrays that fit in the "
                   "8 MiB L3 (e.g. 65536x10 float32 = 2.6 MB) can beat it.",
        tables=_classification_tables,
        legend="Losses (fastloss call; the reference expressions; reduction mean, rows mean for row-wise "
               "losses, kl = torch batchmean). fastloss v+g allocates its gradient (as torch and JAX do); "
               "v+g out= writes a preallocated one. JAX runs on all cores (its XLA pool).",
        meta=False),
    "structured": dict(
        title="### Structured losses, {dtype}: median time per call, ms (1T / {TA}T)", jax=False,
        floor_note="Floor = bytes that must move / that bandwidth: value reads every input once, value_and_grad "
                   "also writes one gradient per differentiable input. Inputs that fit in the 8 MiB L3 (dice's "
                   "4 MiB masks) can beat it; pairwise_ranking (sorting) and the box losses (arithmetic) are not "
                   "bound by it.",
        tables=_structured_tables,
        legend="Losses (fastloss call; the reference expressions; reduction mean). `shape` is the main "
               "differentiable input's (boxes: N×4; triplet: each of a, p, n; gan_discriminator: each of real "
               "and fake). fastloss v+g allocates its gradients (as torch does); v+g out= writes a preallocated "
               "one (single-gradient losses only). NumPy value = the tutorial expression, NumPy v+g = a "
               "straightforward NumPy value and gradient; torch fwd under no_grad, fwd+bwd = forward + "
               "backward into fresh .grad tensors. JAX is not part of this group.",
        meta=True),
}


def render(csv_path, group="regression", dtypes=None, n_big=None, n_small=None):
    """The Markdown of a run of ``group`` (run.py's --group): the header, then
    per dtype the time table and the group's tables (VIEWS), then the legend.
    Regression cells are the losses at the large N (``n_big``, else the
    largest present; ``n_small``: the per-call N, else the smallest); the
    other groups' cells are every (loss, shape) measured."""
    view = VIEWS[group]
    v = Times(csv_path, view["floor_note"])
    out = v.head
    specs = SPECS.get(group, {})
    order = list(specs)
    if group == "regression":
        sizes = sorted({int(r["n"]) for r in v.loss_rows})
        if not sizes:
            return "\n".join(out) + "\n"
        n_big = n_big if n_big in sizes else sizes[-1]
        n_small = n_small if n_small in sizes else sizes[0]
        present = {r["loss"] for r in v.loss_rows}
        order += sorted(present - set(order))
        cells = [(loss, n_big) for loss in order if loss in present]
        shape = None
    else:
        shape = {}
        for r in v.loss_rows:
            shape.setdefault((r["loss"], int(r["n"])), r.get("shape") or r["n"])
        order += sorted({loss for loss, _ in shape} - set(order))
        cells = sorted(shape, key=lambda k: (order.index(k[0]) if k[0] in order else len(order), -k[1]))
    present_dtypes = [d for d in ("float32", "float64") if any(r["dtype"] == d for r in v.loss_rows)]
    for dtype in dtypes or present_dtypes:
        cs = cells if shape is None else [
            (loss, n) for loss, n in cells
            if any(r["loss"] == loss and int(r["n"]) == n and r["dtype"] == dtype for r in v.loss_rows)]
        out += ["", view["title"].format(dtype=dtype, n=n_big or 0, TA=v.TA), ""]
        out += time_table(v, cs, dtype, shape, view["jax"])
        out += view["tables"](v, dtype, cs, shape, n_small)
    descr = [f"- `{loss}`: {specs[loss].description}" for loss in order
             if loss in specs and specs[loss].description and any(k[0] == loss for k in cells)]
    if descr and view["legend"]:
        out += ["", view["legend"], ""] + descr
    if view["meta"]:
        out += _run_notes(csv_path)
    return "\n".join(out) + "\n"


def _run_notes(csv_path):
    """The implementations that were skipped and the sanity-check mismatches,
    from the run's JSON next to the CSV."""
    meta = {}
    json_path = os.path.splitext(csv_path)[0] + ".json"
    if os.path.exists(json_path):
        try:
            with open(json_path) as f:
                meta = json.load(f).get("meta", {})
        except (OSError, ValueError):
            meta = {}
    out = []
    skipped = meta.get("notes", [])
    if skipped:
        out += ["", "Not measured (the implementation's setup failed; run.py skipped it):", ""]
        out += [f"- {x}" for x in skipped]
    checks = meta.get("checks", [])
    if checks:
        out += ["", "Sanity-check mismatches against the float64 NumPy reference (value rtol 1e-4, gradients "
                "rtol 2e-3; timed anyway):", ""]
        out += [f"- {x}" for x in checks]
    return out


def _only(csv_path, group) -> bool:
    """Whether every loss of the CSV is one of ``group``'s."""
    with open(csv_path, newline="") as f:
        losses = {r["loss"] for r in csv.DictReader(f) if r["op"] != "read_bandwidth"}
    return bool(losses) and bool(SPECS.get(group)) and losses <= set(SPECS[group])


def is_structured(csv_path) -> bool:
    return _only(csv_path, "structured")


def is_classification(csv_path) -> bool:
    return _only(csv_path, "classification")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="?", default=os.path.join(HERE, "results", "results.csv"))
    ap.add_argument("--dtype", action="append", help="float32 and/or float64 (default: all present)")
    ap.add_argument("--n", type=float, default=1e7, help="large N (default 1e7; else the largest present)")
    ap.add_argument("--small-n", type=float, default=8, help="per-call N (default 8; else the smallest present)")
    ap.add_argument("--classification", action="store_true",
                    help="classification tables (default: when every loss in the CSV is a classification one)")
    ap.add_argument("--structured", action="store_true",
                    help="structured-loss tables (default: when every loss in the CSV is a structured one)")
    a = ap.parse_args(argv)
    if a.structured or (not a.classification and is_structured(a.csv)):
        sys.stdout.write(render(a.csv, "structured", a.dtype))
    elif a.classification or is_classification(a.csv):
        sys.stdout.write(render(a.csv, "classification", a.dtype))
    else:
        sys.stdout.write(render(a.csv, "regression", a.dtype, int(a.n), int(a.small_n)))


if __name__ == "__main__":
    main()
