"""``fastloss eval``: a loss over .npy / .npz / Parquet files, streamed through
its accumulator, equals the in-memory call (==), and bad input is one line on
stderr with exit status 2.

The command runs both as a program (``python -m fastloss eval ...``, in a
subprocess, as a user runs it) and in-process (``fastloss.__main__.main``)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl

pytestmark = pytest.mark.skipif(
    not hasattr(fl.huber, "accumulator"), reason="this fastloss build has no accumulators"
)

N = 10_000 + 123  # a multiple of no chunk size used here


def _cli(*args, env=None):
    """Runs ``python -m fastloss eval ARGS`` -> (exit status, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "fastloss", "eval", *map(str, args)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    return proc.returncode, proc.stdout, proc.stderr


def _main(capsys, *args):
    """``fastloss.__main__.main(["eval", ...])`` in this process."""
    from fastloss.__main__ import main

    capsys.readouterr()
    rc = main(["eval", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def _json(capsys, *args):
    rc, out, err = _main(capsys, *args, "--json")
    assert rc == 0, err
    assert err == ""
    return json.loads(out)


def _value(r):
    """The JSON value back in its dtype."""
    return np.dtype(r["dtype"]).type(float(r["value"]))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval_cli")
    rng = np.random.default_rng(7)
    y = rng.standard_normal(N).astype(np.float32)
    p = (y + rng.standard_normal(N) * 0.7).astype(np.float32)
    w = rng.random(N).astype(np.float32)
    np.save(d / "y.npy", y)
    np.save(d / "p.npy", p)
    np.save(d / "w.npy", w)
    np.savez(d / "yp.npz", y_true=y, y_pred=p)
    np.savez_compressed(d / "yp_c.npz", y_true=y, y_pred=p, weights=w)
    np.savez(d / "only.npz", p)
    return {"dir": d, "y": y, "p": p, "w": w}


# --------------------------------------------------------------------------
# Values: equal to the in-memory call
# --------------------------------------------------------------------------


def test_npy_subprocess_json_equals_call(data):
    d = data["dir"]
    rc, out, err = _cli("huber", "--y-true", d / "y.npy", "--y-pred", d / "p.npy", "--opt", "delta=2",
                        "--chunk", 3000, "--json")
    assert rc == 0, err
    assert err == ""  # stderr is a pipe: no progress bar
    r = json.loads(out)
    expected = fl.huber(data["y"], data["p"], delta=2.0)
    assert r["dtype"] == "float32"
    assert _value(r) == expected
    assert r["count"] == N and r["elements"] == N
    assert r["loss"] == "huber" and r["options"] == {"delta": 2} and r["reduction"] == "mean"
    assert r["chunk_rows"] == 3072 and r["chunks"] == math.ceil(N / 3072)
    assert r["bytes"] == 2 * 4 * N
    for key in ("seconds", "elements_per_second", "megabytes_per_second"):
        assert isinstance(r[key], (int, float)) and r[key] > 0


def test_text_output_has_value_count_throughput(data):
    d = data["dir"]
    rc, out, err = _cli("mse", "--y-true", d / "y.npy", "--y-pred", d / "p.npy")
    assert rc == 0, err
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert np.float32(lines["value"].split()[0]) == fl.mse(data["y"], data["p"])
    assert lines["count"].startswith(f"{N} elements")
    assert "elements/s" in lines["time"] and "MB/s" in lines["time"]


@pytest.mark.parametrize("chunk", [1, 1024, 3000, 5000, 10_240, "1e6"])
def test_any_chunk_equals_call(capsys, data, chunk):
    d = data["dir"]
    r = _json(capsys, "huber", "--y-true", d / "y.npy", "--y-pred", d / "p.npy", "--chunk", chunk)
    assert _value(r) == fl.huber(data["y"], data["p"])
    assert r["chunk_rows"] % 1024 == 0 or r["chunks"] == 1
    assert r["count"] == N


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_weights_and_reduction(capsys, data, reduction):
    d = data["dir"]
    r = _json(capsys, "smooth_l1", "--y-true", d / "y.npy", "--y-pred", d / "p.npy", "--weights", d / "w.npy",
              "--opt", "beta=0.5", "--reduction", reduction, "--chunk", 4096)
    expected = fl.smooth_l1(data["y"], data["p"], beta=0.5, weights=data["w"], reduction=reduction)
    assert _value(r) == expected
    assert r["chunks"] == math.ceil(N / 4096)
    assert r["bytes"] == 3 * 4 * N


def test_npz_members_stored_and_compressed(capsys, data):
    d = data["dir"]
    expected = fl.log_cosh(data["y"], data["p"])
    for name in ("yp.npz", "yp_c.npz"):
        r = _json(capsys, "log_cosh", "--y-true", f"{d / name}:y_true", "--y-pred", f"{d / name}:y_pred.npy",
                  "--chunk", 2048)
        assert _value(r) == expected, name
    # the weights of the compressed archive, against .npy inputs
    r = _json(capsys, "mae", "--y-true", d / "y.npy", "--y-pred", d / "p.npy", "--weights",
              f"{d / 'yp_c.npz'}:weights", "--chunk", 2500)
    assert _value(r) == fl.mae(data["y"], data["p"], weights=data["w"])


def test_npz_only_member(capsys, data):
    d = data["dir"]
    r = _json(capsys, "mse", "--y-true", d / "y.npy", "--y-pred", d / "only.npz")
    assert _value(r) == fl.mse(data["y"], data["p"])


def test_options_from_text(capsys, tmp_path):
    rng = np.random.default_rng(3)
    t = (rng.random(5000) < 0.4).astype(np.float64)
    x = rng.standard_normal(5000) * 3
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "x.npy", x)
    args = ("--y-true", tmp_path / "t.npy", "--y-pred", tmp_path / "x.npy", "--chunk", 2048)
    r = _json(capsys, "binary_focal", *args, "--opt", "from_logits=true", "--opt", "alpha=none",
              "--opt", "gamma=1.5")
    assert r["dtype"] == "float64"
    assert _value(r) == fl.binary_focal(t, x, from_logits=True, alpha=None, gamma=1.5)
    r = _json(capsys, "bce", *args, "--opt", "from_logits=True", "--opt", "label_smoothing=1e-1")
    assert _value(r) == fl.binary_cross_entropy(t, x, from_logits=True, label_smoothing=0.1)


def test_rows_of_a_2d_elementwise_loss_and_broadcast_weights(capsys, tmp_path):
    rng = np.random.default_rng(5)
    y = rng.standard_normal((3001, 3)).astype(np.float32)
    p = rng.standard_normal((3001, 3)).astype(np.float32)
    per_column = np.array([0.5, 1.0, 2.0], np.float32)
    per_row = rng.random((3001, 1)).astype(np.float32)
    for name, arr in (("y", y), ("p", p), ("wc", per_column), ("wr", per_row)):
        np.save(tmp_path / f"{name}.npy", arr)
    base = ("mse", "--y-true", tmp_path / "y.npy", "--y-pred", tmp_path / "p.npy", "--chunk", 5000)
    r = _json(capsys, *base)
    assert r["chunk_rows"] == 2048  # rows of 3 elements: a multiple of 1024 rows
    assert _value(r) == fl.mse(y, p)
    r = _json(capsys, *base, "--weights", tmp_path / "wc.npy")
    assert _value(r) == fl.mse(y, p, weights=per_column)
    r = _json(capsys, *base, "--weights", tmp_path / "wr.npy")
    assert _value(r) == fl.mse(y, p, weights=per_row)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_wise_loss_chunks_rows(capsys, tmp_path, dtype):
    rng = np.random.default_rng(11)
    rows, classes = 5000, 7
    labels = rng.integers(0, classes, rows)
    logits = (rng.standard_normal((rows, classes)) * 2).astype(dtype)
    w = rng.random(rows).astype(dtype)
    np.save(tmp_path / "l.npy", labels)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "w.npy", w)
    r = _json(capsys, "sparse_cce", "--y-true", tmp_path / "l.npy", "--y-pred", tmp_path / "x.npy",
              "--weights", tmp_path / "w.npy", "--opt", "from_logits=true", "--chunk", 20_000)
    expected = fl.sparse_categorical_cross_entropy(labels, logits, from_logits=True, weights=w)
    assert r["loss"] == "sparse_categorical_cross_entropy"
    assert r["chunk_rows"] == 3072 and r["count"] == rows
    assert _value(r) == expected


def test_region_losses(capsys, tmp_path):
    # axis=1: one region per row, cut by 1024 rows; axis=None: one region
    # spanning the chunks, whose exact sums the accumulator adds.
    rng = np.random.default_rng(13)
    t = (rng.random((3000, 16)) < 0.3).astype(np.float32)
    q = rng.random((3000, 16)).astype(np.float32)
    np.save(tmp_path / "t.npy", t)
    np.save(tmp_path / "q.npy", q)
    args = ("--y-true", tmp_path / "t.npy", "--y-pred", tmp_path / "q.npy", "--chunk", 16_384)
    r = _json(capsys, "dice", *args, "--opt", "axis=1")
    assert r["chunk_rows"] == 1024 and r["chunks"] == 3 and r["count"] == 3000
    assert _value(r) == fl.dice(t, q, axis=1)
    r = _json(capsys, "jaccard", *args, "--opt", "axis=(1,)", "--opt", "squared=true")
    assert _value(r) == fl.jaccard(t, q, axis=(1,), squared=True)
    r = _json(capsys, "dice", *args)
    assert r["chunks"] == 3 and r["count"] == 3000 * 16  # elements
    assert _value(r) == fl.dice(t, q)
    r = _json(capsys, "tversky", *args, "--opt", "axis=(0,)", "--opt", "alpha=0.3")
    assert r["chunks"] == 3 and _value(r) == fl.tversky(t, q, axis=0, alpha=0.3)


def test_parquet_columns(capsys, tmp_path, data):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"y": data["y"], "p": data["p"], "w": data["w"]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=3333)  # row groups cut across chunks
    r = _json(capsys, "huber", "--y-true", f"{path}:y", "--y-pred", f"{path}:p", "--weights", f"{path}:w",
              "--chunk", 4096)
    assert _value(r) == fl.huber(data["y"], data["p"], weights=data["w"])
    assert r["count"] == N and r["inputs"]["y_pred"]["shape"] == [N]

    # a fixed-size list column is (rows, size): the logits of a row-wise loss
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 5, 3000)
    logits = rng.standard_normal((3000, 5)).astype(np.float32)
    col = pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1)), 5)
    pq.write_table(pa.table({"label": labels, "logits": col}), tmp_path / "c.parquet", row_group_size=1000)
    r = _json(capsys, "sparse_cce", "--y-true", f"{tmp_path / 'c.parquet'}:label",
              "--y-pred", f"{tmp_path / 'c.parquet'}:logits", "--opt", "from_logits=true", "--chunk", 5000)
    assert _value(r) == fl.sparse_categorical_cross_entropy(labels, logits, from_logits=True)


def test_non_finite_value_is_json_text(capsys, tmp_path):
    p = np.ones(100)
    p[3] = np.nan
    np.save(tmp_path / "p.npy", p)
    np.save(tmp_path / "y.npy", np.zeros(100))
    r = _json(capsys, "mse", "--y-true", tmp_path / "y.npy", "--y-pred", tmp_path / "p.npy")
    assert r["value"] == "NaN" and math.isnan(float(r["value"]))


def test_evaluate_function_takes_arrays(data):
    from fastloss._eval_cli import evaluate

    r = evaluate("huber", data["y"], data["p"], weights=data["w"], chunk=2000)
    assert r["value"] == fl.huber(data["y"], data["p"], weights=data["w"])
    assert r["chunk_rows"] == 2048


def test_list_and_help(capsys):
    rc, out, _ = _main(capsys, "--list")
    assert rc == 0 and "huber" in out and "delta=1.0" in out
    rc, out, _ = _main(capsys, "--help")
    assert rc == 0 and "--y-true" in out and "Exit status" in out


def test_check_is_still_the_default():
    proc = subprocess.run([sys.executable, "-m", "fastloss", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--size" in proc.stdout and "eval" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "fastloss", "check", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "--size" in proc.stdout


# --------------------------------------------------------------------------
# Errors: one line on stderr, exit status 2
# --------------------------------------------------------------------------


def _assert_one_line_error(rc, out, err, *needles):
    assert rc == 2, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastloss eval: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


def test_errors_through_the_program(data, tmp_path):
    d = data["dir"]
    _assert_one_line_error(*_cli("huber", "--y-true", d / "y.npy", "--y-pred", tmp_path / "missing.npy"),
                           "no such file", "missing.npy")
    _assert_one_line_error(*_cli("hubber", "--y-true", d / "y.npy", "--y-pred", d / "p.npy"),
                           "unknown loss", "huber")
    _assert_one_line_error(*_cli("huber", "--y-true", d / "y.npy", "--y-pred", d / "p.npy", "--opt", "delta=-1"),
                           "delta")


@pytest.fixture(scope="module")
def bad_files(data):
    d = data["dir"]
    np.save(d / "short.npy", data["y"][:-1])
    (d / "text.npy").write_text("not an array\n")
    np.save(d / "objects.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with open(d / "truncated.npy", "wb") as f:
        f.write((d / "p.npy").read_bytes()[:1000])
    return d


@pytest.mark.parametrize(
    "args, needles",
    [
        (("huber", "--y-true", "{d}/short.npy", "--y-pred", "{d}/p.npy"), ("length mismatch", "y_true")),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--weights", "{d}/short.npy"),
         ("length mismatch", "weights")),
        (("huber", "--y-true", "{d}/nope.npy", "--y-pred", "{d}/p.npy"), ("y_true", "no such file")),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/text.npy"), ("y_pred", "not a .npy")),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/truncated.npy"), ("y_pred",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/objects.npy"), ("y_pred",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}"), ("directory",)),
        (("huber", "--y-true", "{d}/yp.npz", "--y-pred", "{d}/p.npy"), ("member", "y_true, y_pred")),
        (("huber", "--y-true", "{d}/yp.npz:nope", "--y-pred", "{d}/p.npy"), ("no member 'nope'",)),
        (("huber", "--y-true", "{d}/y.npy:x", "--y-pred", "{d}/p.npy"), ("no member",)),
        (("no_such_loss", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy"), ("unknown loss",)),
        (("gaussian_nll", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy"), ("other arguments",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--opt", "delta=-1"), ("delta",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--opt", "delta=abc"), ("delta",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--opt", "dleta=1"), ("dleta",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--opt", "delta"), ("NAME=VALUE",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--opt", "reduction=sum"), ("--reduction",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--chunk", "0"), ("--chunk",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--reduction", "none"), ("--reduction",)),
        (("huber", "--y-true", "{d}/y.npy"), ("--y-pred",)),
        (("--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy"), ("name a loss",)),
        (("huber", "--y-true", "{d}/y.npy", "--y-pred", "{d}/p.npy", "--bogus"), ("--bogus",)),
    ],
)
def test_errors_are_one_line(capsys, bad_files, args, needles):
    args = [a.format(d=bad_files) for a in args]
    _assert_one_line_error(*_main(capsys, *args), *needles)


def test_parquet_errors(capsys, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"y": np.zeros(10), "p": pa.array([1.0] * 9 + [None])}), path)
    y = f"{path}:y"
    _assert_one_line_error(*_main(capsys, "mse", "--y-true", y, "--y-pred", f"{path}:nope"), "no column 'nope'")
    _assert_one_line_error(*_main(capsys, "mse", "--y-true", y, "--y-pred", str(path)), "name a column")
    _assert_one_line_error(*_main(capsys, "mse", "--y-true", y, "--y-pred", f"{path}:p"), "null")


def test_shape_error_of_the_loss_is_one_line(capsys, tmp_path):
    np.save(tmp_path / "y.npy", np.zeros((100, 2)))
    np.save(tmp_path / "p.npy", np.zeros((100, 3)))
    _assert_one_line_error(*_main(capsys, "mse", "--y-true", tmp_path / "y.npy", "--y-pred", tmp_path / "p.npy"),
                           "shape")


def test_progress_bar_only_on_a_terminal(data):
    # Piped stderr (above) stays empty; a pseudo-terminal gets the bar.
    pty = pytest.importorskip("pty")
    d = data["dir"]
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "fastloss", "eval", "mse", "--y-true", str(d / "y.npy"),
             "--y-pred", str(d / "p.npy"), "--chunk", "1024"],
            stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120,
        )
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    assert "value" in proc.stdout
    assert b"%" in b"".join(chunks)
