#!/usr/bin/env python
"""GPU benchmark: fastloss on CUDA against PyTorch CUDA and the HBM floor.

    python bench/gpu.py                          # N = 1e8, float32 and bfloat16, every loss below
    python bench/gpu.py --quick                  # N = 1e6 smoke test -> bench/results/quick/
    python bench/gpu.py --n 1e7 --dtypes float32 --losses mse --runs 200
    python bench/gpu.py --losses dice,box_iou_giou --dtypes float32

Losses (fastloss vs the PyTorch code people run):
  mse, huber, bce_logits   N elements (--n); torch.nn.functional
  dice                     (16, 4, 512, 512) logits (--quick: (2, 4, 128, 128)), axis=(2, 3), from_logits:
                           one score per (sample, class); torch: segmentation_models_pytorch's
                           soft_dice_score on sigmoid(logits), dims=(2, 3), 1 - score, mean
  box_iou_giou             1e7 boxes (N, 4) (--quick: 1e5), kind="giou"; torch:
                           torchvision.ops.generalized_box_iou_loss's code, mean

Every case is timed with CUDA events on the current stream after a warm-up:
one (start, end) event pair around each of --runs (>= 50) calls, all calls
enqueued back to back, then one synchronisation; per-call time = the
elapsed time between its events; median, 20th and 80th percentiles.

Rows (long format, bench/run.py's columns; threads = "gpu", simd_target = "cuda"):
  impl=fastloss  op=value | value_and_grad (allocates the gradient)
                 | value_and_grad_out (out= preallocated)
  impl=torch     op=value (the torch reference's forward)
                 | value_and_grad (forward + backward; the leaf's grad reset
                 to None before each call, so backward allocates it)
  impl=floor     op=value | value_and_grad: bytes that must move (2 or 3
                 arrays of the inputs' size) / the measured copy bandwidth
                 (a lower bound: dice's gradient needs its sums first, so
                 it reads the inputs twice);
                 op=copy_bandwidth: the measurement itself (n = bytes read +
                 written by dst.copy_(src), median_s = its time)

Writes DIR/gpu.csv and DIR/gpu.md (DIR = --out, default bench/results) and
prints the Markdown. Without a GPU (no torch CUDA, or fastloss built without
its CUDA extension, or no device) it says why and exits with status 0,
measuring and writing nothing.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gc
import os
import platform
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

COLUMNS = ["op", "impl", "loss", "n", "dtype", "threads", "median_s", "p20_s", "p80_s",
           "version", "simd_target", "machine", "inner", "samples", "shape"]

def _torch_dice(F, torch):
    """segmentation_models_pytorch's soft_dice_score (losses/_functional.py)
    as its DiceLoss uses it on logits (sigmoid through logsigmoid().exp()),
    with dims=(2, 3): one score per (sample, class), then the mean of
    1 - score. (DiceLoss also zeroes the classes absent from y_true; every
    class is present in these inputs.)"""
    smooth, eps, dims = 1e-6, 1e-7, (2, 3)

    def loss(y_pred, y_true):
        y_pred = F.logsigmoid(y_pred).exp()
        intersection = torch.sum(y_pred * y_true, dim=dims)
        cardinality = torch.sum(y_pred + y_true, dim=dims)
        score = (2.0 * intersection + smooth) / (cardinality + smooth).clamp_min(eps)
        return (1.0 - score).mean()

    return loss


def _torch_giou(F, torch):
    """torchvision.ops.generalized_box_iou_loss (with its _loss_inter_union),
    reduction="mean", eps=1e-7, written out so that torchvision need not be
    installed."""
    eps = 1e-7

    def loss(boxes1, boxes2):
        x1, y1, x2, y2 = boxes1.unbind(dim=-1)
        x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
        xkis1, ykis1 = torch.max(x1, x1g), torch.max(y1, y1g)
        xkis2, ykis2 = torch.min(x2, x2g), torch.min(y2, y2g)
        intsctk = torch.zeros_like(x1)
        mask = (ykis2 > ykis1) & (xkis2 > xkis1)
        intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
        unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk
        iouk = intsctk / (unionk + eps)
        xc1, yc1 = torch.min(x1, x1g), torch.min(y1, y1g)
        xc2, yc2 = torch.max(x2, x2g), torch.max(y2, y2g)
        area_c = (xc2 - xc1) * (yc2 - yc1)
        miouk = iouk - ((area_c - unionk) / (area_c + eps))
        return (1 - miouk).mean()

    return loss


def _f(name, **kw):
    # A torch.nn.functional loss, called (prediction, target).
    return lambda F, torch: (lambda p, y: getattr(F, name)(p, y, **kw))


def _elementwise_shape(n, quick):
    return (n,)


# name -> the fastloss loss and its options, the torch reference (a function
# of (F, torch) giving loss(prediction, target)), the input shape (a function
# of (--n, --quick)) and the footnote of the table.
LOSSES = {
    "mse": dict(loss="mse", opts={}, torch=_f("mse_loss"), shape=_elementwise_shape,
                text="`fl.mse(y, p)` vs `F.mse_loss(p, y)`"),
    "huber": dict(loss="huber", opts={"delta": 1.0}, torch=_f("huber_loss", delta=1.0), shape=_elementwise_shape,
                  text="`fl.huber(y, p, delta=1.0)` vs `F.huber_loss(p, y, delta=1.0)`"),
    "bce_logits": dict(loss="binary_cross_entropy", opts={"from_logits": True},
                       torch=_f("binary_cross_entropy_with_logits"), shape=_elementwise_shape,
                       text="`fl.bce(y, x, from_logits=True)` vs `F.binary_cross_entropy_with_logits(x, y)`, "
                            "y in {0, 1}"),
    "dice": dict(loss="dice", opts={"axis": (2, 3), "from_logits": True}, torch=_torch_dice,
                 shape=lambda n, quick: (2, 4, 128, 128) if quick else (16, 4, 512, 512),
                 text="`fl.dice(y, x, axis=(2, 3), from_logits=True)` vs segmentation_models_pytorch's "
                      "`soft_dice_score(sigmoid(x), y, dims=(2, 3))`, y in {0, 1}"),
    "box_iou_giou": dict(loss="box_iou", opts={"kind": "giou"}, torch=_torch_giou,
                         shape=lambda n, quick: (10**5, 4) if quick else (10**7, 4),
                         text="`fl.box_iou(boxes, pred, kind='giou')` vs torchvision's "
                              "`generalized_box_iou_loss(pred, boxes)` (its code, written out)"),
}

TARGET_FLOOR = 1.15   # fastloss value_and_grad within 1.15x of the floor
TARGET_TORCH = 2.0    # and at least 2x faster than torch forward + backward
MIN_RUNS = 50


def no_gpu_reason():
    """'' when a GPU benchmark can run here, else why not."""
    try:
        import fastloss.cuda as flc
    except Exception as e:  # noqa: BLE001 - fastloss itself broken or missing
        return f"fastloss does not import ({type(e).__name__}: {e})"
    if not flc.is_available():
        return f"fastloss has no usable CUDA backend: {flc._why_unavailable()}"
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        return f"PyTorch does not import ({type(e).__name__}: {e}); it is the baseline and the timer"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} sees no CUDA device"
    return ""


def percentile(xs, q):
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def time_events(torch, fn, runs, warmup):
    """(median, p20, p80) seconds per call of fn, timed with CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for s, e in zip(starts, ends):
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    ts = [s.elapsed_time(e) / 1e3 for s, e in zip(starts, ends)]
    return statistics.median(ts), percentile(ts, 0.2), percentile(ts, 0.8)


def make_inputs(torch, name, shape, dtype, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    n = shape
    if name == "bce_logits":
        y = (torch.rand(n, device="cuda", generator=g) < 0.5).to(dtype)
        p = (4.0 * torch.randn(n, device="cuda", generator=g)).to(dtype)
    elif name == "dice":
        y = (torch.rand(n, device="cuda", generator=g) < 0.3).to(dtype)
        p = (3.0 * torch.randn(n, device="cuda", generator=g)).to(dtype)
    elif name == "box_iou_giou":
        # boxes (x1, y1, x2, y2) in a 100 x 100 image, predictions near them
        xy = 100.0 * torch.rand(n[0], 2, device="cuda", generator=g)
        wh = 1.0 + 20.0 * torch.rand(n[0], 2, device="cuda", generator=g)
        pxy = xy + 3.0 * torch.randn(n[0], 2, device="cuda", generator=g)
        pwh = (wh + 3.0 * torch.randn(n[0], 2, device="cuda", generator=g)).abs() + 0.5
        y = torch.cat([xy, xy + wh], dim=1).to(dtype)
        p = torch.cat([pxy, pxy + pwh], dim=1).to(dtype)
    else:
        y32 = torch.randn(n, device="cuda", generator=g)
        p = (y32 + torch.randn(n, device="cuda", generator=g)).to(dtype)
        y = y32.to(dtype)
    return y, p


def check(torch, F, fl, name, y, p, dtype):
    """Differences of fastloss from torch (value: relative; grad: max abs
    over max |grad|); a message when they exceed the dtype's allowance."""
    spec = LOSSES[name]
    v, g = getattr(fl, spec["loss"]).value_and_grad(y, p, **spec["opts"])
    leaf = p.detach().clone().requires_grad_(True)
    tv = spec["torch"](F, torch)(leaf, y)
    tv.backward()
    tg = leaf.grad
    tv = tv.detach()
    dv = abs(float(v) - float(tv)) / max(abs(float(tv)), 1e-30)
    dg = float((g.float() - tg.float()).abs().max()) / max(float(tg.float().abs().max()), 1e-30)
    allow = 1e-5 if dtype == torch.float32 else 2e-2
    if dv > allow or dg > allow:
        return f"{name} {str(dtype)[6:]}: fastloss vs torch differ: value {dv:.2e}, grad {dg:.2e} (allowed {allow:g})"
    return ""


def copy_time(torch, nbytes, runs, warmup):
    """Timing of dst.copy_(src) over two float32 buffers of nbytes."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device="cuda").uniform_()
    dst = torch.empty_like(src)
    return time_events(torch, lambda: dst.copy_(src), runs, warmup)


def cases(torch, F, fl, name, y, p):
    """(op, impl, callable) for one loss on one pair of inputs."""
    spec = LOSSES[name]
    fn, tfn, opts = getattr(fl, spec["loss"]), spec["torch"](F, torch), spec["opts"]
    out = torch.empty_like(p)
    leaf = p.detach().clone().requires_grad_(True)

    def torch_vg():
        leaf.grad = None
        tfn(leaf, y).backward()

    return [
        ("value", "fastloss", lambda: fn(y, p, **opts)),
        ("value_and_grad", "fastloss", lambda: fn.value_and_grad(y, p, **opts)),
        ("value_and_grad_out", "fastloss", lambda: fn.value_and_grad(y, p, out=out, **opts)),
        ("value", "torch", lambda: tfn(p, y)),
        ("value_and_grad", "torch", torch_vg),
    ]


def ms(x):
    return f"{x * 1e3:.3f}"


def render(rows, meta):
    """Markdown: one table per dtype; times in ms (median)."""
    med = {(r["op"], r["impl"], r["loss"], r["dtype"]): float(r["median_s"]) for r in rows}
    lines = [f"# fastloss on the GPU: N = {meta['n']:.0e} (elementwise losses), median of {meta['runs']} runs "
             "(CUDA events)", ""]
    lines.append(f"{meta['machine']}; CUDA {meta['cuda']}; torch {meta['torch']}; fastloss {meta['fastloss']}; "
                 f"Python {meta['python']}; {meta['date']}")
    lines.append("")
    lines.append(f"Copy bandwidth (dst.copy_(src), {meta['bw_bytes'] / 2**20:.0f} MiB): "
                 f"{meta['bandwidth'] / 1e9:.0f} GB/s (read + write). Floor = bytes / bandwidth: "
                 "2 arrays of the inputs' size for the value, 3 for value_and_grad.")
    for dtype in meta["dtypes"]:
        lines += ["", f"## {dtype}", "",
                  "| loss | fastloss value | torch fwd | floor value | fastloss v+g | v+g out= | torch fwd+bwd "
                  f"| floor v+g | v+g / floor (<= {TARGET_FLOOR}) | torch fwd+bwd / v+g (>= {TARGET_TORCH:g}) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in meta["losses"]:
            def t(op, impl):
                return med.get((op, impl, name, dtype))
            fv, tv, flv = t("value", "fastloss"), t("value", "torch"), t("value", "floor")
            fvg, fvo, tvg, flvg = (t("value_and_grad", "fastloss"), t("value_and_grad_out", "fastloss"),
                                   t("value_and_grad", "torch"), t("value_and_grad", "floor"))
            cells = [ms(x) if x is not None else "-" for x in (fv, tv, flv, fvg, fvo, tvg, flvg)]
            r_floor = fvg / flvg if fvg and flvg else None
            r_torch = tvg / fvg if fvg and tvg else None
            cells.append("-" if r_floor is None else f"{r_floor:.2f} {'✓' if r_floor <= TARGET_FLOOR else '✗'}")
            cells.append("-" if r_torch is None else f"{r_torch:.2f} {'✓' if r_torch >= TARGET_TORCH else '✗'}")
            shape = meta["shapes"][name]
            label = name if shape == (meta["n"],) else f"{name} {shape}"
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Times in ms. fastloss v+g allocates its gradient (as torch's backward does); `out=` writes a "
              "preallocated one. Reduction mean. torch:", ""]
    lines += [f"- {name}: {LOSSES[name]['text']}" for name in meta["losses"]]
    if "dice" in meta["losses"]:
        lines += ["", "dice's gradient needs the per-score sums first: it reads the inputs twice (5 arrays of "
                  "traffic against the floor's 3)."]
    if meta["checks"]:
        lines += ["", "Check failures (fastloss vs torch before timing):", ""] + [f"- {c}" for c in meta["checks"]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default=None, help="elements per array (default 1e8; --quick: 1e6)")
    ap.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated: float32, bfloat16, float16, float64")
    ap.add_argument("--losses", default=",".join(LOSSES), help=f"comma-separated, of {', '.join(LOSSES)}")
    ap.add_argument("--runs", type=int, default=MIN_RUNS, help=f"timed calls per case (>= {MIN_RUNS})")
    ap.add_argument("--warmup", type=int, default=5, help="untimed calls first")
    ap.add_argument("--quick", action="store_true", help="N = 1e6, results in DIR/quick/")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    args = ap.parse_args(argv)
    if args.runs < MIN_RUNS:
        ap.error(f"--runs must be at least {MIN_RUNS}")
    losses = [x for x in args.losses.split(",") if x]
    unknown = [x for x in losses if x not in LOSSES]
    if unknown:
        ap.error(f"unknown losses {unknown}; known: {', '.join(LOSSES)}")
    n = int(float(args.n)) if args.n else (10**6 if args.quick else 10**8)
    out_dir = os.path.join(args.out, "quick") if args.quick else args.out

    reason = no_gpu_reason()
    if reason:
        print(f"bench/gpu.py: no GPU to measure on: {reason}. Nothing measured, nothing written.",
              file=sys.stderr)
        return 0

    import torch
    import torch.nn.functional as F

    import fastloss as fl
    import fastloss.cuda as flc

    dtypes = [x for x in args.dtypes.split(",") if x]
    for d in dtypes:
        if not isinstance(getattr(torch, d, None), torch.dtype):
            ap.error(f"unknown dtype {d}")
    dev = torch.cuda.current_device()
    machine = f"{flc.device_name(dev)} (cuda:{dev})"
    versions = {"fastloss": fl.__version__, "torch": torch.__version__}
    rows = []

    def row(op, impl, loss, dtype, med, p20, p80, nn=n, shape=None):
        shape = (nn,) if shape is None else shape
        rows.append(dict(op=op, impl=impl, loss=loss, n=nn, dtype=dtype, threads="gpu",
                         median_s=f"{med:.6e}", p20_s=f"{p20:.6e}", p80_s=f"{p80:.6e}",
                         version=versions.get(impl, versions["fastloss"]), simd_target="cuda",
                         machine=machine, inner=1, samples=args.runs,
                         shape=str(nn) if len(shape) == 1 else "x".join(map(str, shape))))

    print(f"[gpu] {machine}; torch {torch.__version__} (CUDA {torch.version.cuda}); fastloss {fl.__version__}; "
          f"N = {n}; {args.runs} runs after {args.warmup} warm-up", flush=True)

    # HBM bandwidth: device-to-device copy, bytes read + written per call.
    bw_bytes = max(4 * n, 256 << 20)
    med, p20, p80 = copy_time(torch, bw_bytes, args.runs, args.warmup)
    bandwidth = 2 * bw_bytes / med
    row("copy_bandwidth", "floor", "copy_", "uint8", med, p20, p80, nn=2 * bw_bytes)
    print(f"[gpu] copy bandwidth {bandwidth / 1e9:.0f} GB/s", flush=True)

    checks = []
    shapes = {name: tuple(LOSSES[name]["shape"](n, args.quick)) for name in losses}
    for dname in dtypes:
        dtype = getattr(torch, dname)
        itemsize = torch.empty((), dtype=dtype).element_size()
        for name in losses:
            shape = shapes[name]
            numel = 1
            for k in shape:
                numel *= k
            y, p = make_inputs(torch, name, shape, dtype)
            msg = check(torch, F, fl, name, y, p, dtype)
            if msg:
                print(f"[gpu] warning: {msg}", file=sys.stderr, flush=True)
                checks.append(msg)
            for op, impl, f in cases(torch, F, fl, name, y, p):
                med, p20, p80 = time_events(torch, f, args.runs, args.warmup)
                row(op, impl, name, dname, med, p20, p80, nn=numel, shape=shape)
                print(f"[gpu] {dname:9s} {name:12s} {impl:8s} {op:18s} {med * 1e3:8.3f} ms", flush=True)
            for op, arrays in (("value", 2), ("value_and_grad", 3)):
                t = arrays * numel * itemsize / bandwidth
                row(op, "floor", name, dname, t, t, t, nn=numel, shape=shape)
            y = p = None
            gc.collect()
            torch.cuda.empty_cache()

    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, "gpu.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    meta = dict(n=n, runs=args.runs, machine=machine, cuda=torch.version.cuda, torch=torch.__version__,
                fastloss=fl.__version__, python=platform.python_version(),
                date=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"), bw_bytes=bw_bytes, bandwidth=bandwidth,
                dtypes=dtypes, losses=losses, checks=checks, shapes=shapes)
    md = render(rows, meta)
    md_path = os.path.join(out_dir, "gpu.md")
    with open(md_path, "w") as f:
        f.write(md)
    print(md)
    print(f"[gpu] wrote {csv_path} and {md_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
