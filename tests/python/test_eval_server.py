"""The evaluation-server example (examples/python/eval_server.py): results
per slice and merged equal the one-shot call on the concatenated batches,
bad input is a 4xx JSON error, concurrent updates lose nothing, states merge
across servers, and load_test.py runs against it."""

from __future__ import annotations

import importlib.util
import io
import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import fastloss as fl

pytestmark = pytest.mark.skipif(
    not hasattr(fl.huber, "accumulator"), reason="this fastloss build has no accumulators"
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "python"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"fastloss_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def eval_server():
    return _load("eval_server")


@pytest.fixture
def server(eval_server):
    srv = eval_server.make_server("127.0.0.1", 0, max_body=1 << 20)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def _request(url, data=None, content_type="application/octet-stream", method=None):
    """(status, parsed JSON) of a request; 4xx/5xx answers too."""
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        with e:
            return e.code, json.loads(e.read())


def _npz(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _batches(seed, sizes, dtype=np.float32):
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        y = rng.standard_normal(n).astype(dtype)
        p = (y + rng.standard_normal(n)).astype(dtype)
        w = rng.random(n).astype(dtype)
        out.append((y, p, w))
    return out


def _cat(batches, k):
    return np.concatenate([b[k] for b in batches])


def _same(result, expected):
    """The server's float64 result, in the call's dtype, is the call's value."""
    return np.asarray(expected).dtype.type(float(result)) == expected


def test_results_equal_the_one_shot_call(server):
    a = _batches(1, [2048, 1024, 4096])
    b = _batches(2, [3072, 1024])
    for y, p, _ in a:
        status, r = _request(f"{server.url}/update?model=m&slice=a&loss=huber&opt.delta=2", _npz(y_true=y, y_pred=p))
        assert status == 200, r
    for y, p, _ in b:
        status, r = _request(f"{server.url}/update?model=m&slice=b&loss=huber&opt.delta=2", _npz(y_true=y, y_pred=p))
        assert status == 200, r
    assert r == {"count": 4096, "added": 1024}
    status, res = _request(f"{server.url}/result?model=m")
    assert status == 200, res
    by_slice = {s["slice"]: s for s in res["slices"]}
    assert set(by_slice) == {"a", "b"}
    assert by_slice["a"]["options"] == {"delta": 2}
    assert _same(by_slice["a"]["result"], fl.huber(_cat(a, 0), _cat(a, 1), delta=2.0))
    assert _same(by_slice["b"]["result"], fl.huber(_cat(b, 0), _cat(b, 1), delta=2.0))
    assert by_slice["a"]["count"] == 7168 and by_slice["b"]["count"] == 4096
    (merged,) = res["all"]
    assert merged["count"] == 7168 + 4096 and merged["slices"] == 2
    assert _same(merged["result"], fl.huber(_cat(a + b, 0), _cat(a + b, 1), delta=2.0))
    # reduction=sum, one slice
    status, res = _request(f"{server.url}/result?model=m&slice=b&reduction=sum")
    assert status == 200 and len(res["slices"]) == 1
    assert _same(res["slices"][0]["result"], fl.huber(_cat(b, 0), _cat(b, 1), delta=2.0, reduction="sum"))


def test_batches_off_block_boundaries_are_close(server):
    a = _batches(3, [1000, 777, 1500], dtype=np.float64)
    for y, p, w in a:
        status, _ = _request(f"{server.url}/update?model=m2&slice=s&loss=mse", _npz(y_true=y, y_pred=p, weights=w))
        assert status == 200
    status, res = _request(f"{server.url}/result?model=m2&loss=mse")
    assert status == 200
    expected = fl.mse(_cat(a, 0), _cat(a, 1), weights=_cat(a, 2))
    np.testing.assert_allclose(res["slices"][0]["result"], expected, rtol=1e-13)
    assert res["slices"][0]["count"] == 3277


def test_body_formats(server):
    (y, p, w), (y2, p2, _), (y3, p3, w3) = _batches(4, [1024, 2048, 1024], dtype=np.float64)
    url = f"{server.url}/update?model=fmt&slice=s&loss=mae"
    buf = io.BytesIO()
    np.savez_compressed(buf, y_true=y, y_pred=p, weights=w)
    assert _request(url, buf.getvalue())[0] == 200
    assert _request(url, _npy(np.stack([y2, p2, np.ones_like(y2)])))[0] == 200
    rec = np.zeros(1024, dtype=[("y_true", "f8"), ("y_pred", "f8"), ("weights", "f8")])
    rec["y_true"], rec["y_pred"], rec["weights"] = y3, p3, w3
    assert _request(url, _npy(rec))[0] == 200
    parts = [(y, p, w), (y2, p2, np.ones_like(y2)), (y3, p3, w3)]
    try:
        import pyarrow as pa
    except ImportError:
        pa = None
    if pa is not None:
        (y4, p4, _), = _batches(5, [1024], dtype=np.float64)
        sink = pa.BufferOutputStream()
        table = pa.table({"y_true": y4, "y_pred": p4})
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        status, r = _request(url, sink.getvalue().to_pybytes(), "application/vnd.apache.arrow.stream")
        assert status == 200, r
        parts.append((y4, p4, np.ones_like(y4)))
    status, res = _request(f"{server.url}/result?model=fmt")
    assert status == 200
    expected = fl.mae(_cat(parts, 0), _cat(parts, 1), weights=_cat(parts, 2))
    assert _same(res["slices"][0]["result"], expected)


def test_defaults_share_an_accumulator(server):
    (y, p, _), = _batches(6, [1024])
    assert _request(f"{server.url}/update?model=d&slice=s&loss=huber", _npz(y_true=y, y_pred=p))[0] == 200
    assert _request(f"{server.url}/update?model=d&slice=s&loss=huber&opt.delta=1.0",
                    _npz(y_true=y, y_pred=p))[0] == 200
    status, res = _request(f"{server.url}/result?model=d")
    assert status == 200 and len(res["slices"]) == 1 and res["slices"][0]["count"] == 2048


def test_concurrent_updates_lose_nothing(server):
    batches = _batches(7, [1024, 2048, 3072, 1024] * 4)
    url = f"{server.url}/update?model=c&slice=s&loss=log_cosh"
    errors = []

    def send(chunk):
        for y, p, _ in chunk:
            status, r = _request(url, _npz(y_true=y, y_pred=p))
            if status != 200:
                errors.append(r)

    threads = [threading.Thread(target=send, args=(batches[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    status, res = _request(f"{server.url}/result?model=c")
    assert status == 200
    # any arrival order: the same bits as the one-shot call
    assert _same(res["slices"][0]["result"], fl.log_cosh(_cat(batches, 0), _cat(batches, 1)))
    assert res["slices"][0]["count"] == sum(len(b[0]) for b in batches)


def test_state_merges_across_servers(server, eval_server):
    a, b = _batches(8, [2048, 1024]), _batches(9, [1024])
    for y, p, _ in a:
        assert _request(f"{server.url}/update?model=x&slice=s&loss=mse", _npz(y_true=y, y_pred=p))[0] == 200
    other = eval_server.make_server("127.0.0.1", 0)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        for y, p, _ in b:
            assert _request(f"{other.url}/update?model=x&slice=s&loss=mse", _npz(y_true=y, y_pred=p))[0] == 200
        status, state = _request(f"{other.url}/state?model=x")
        assert status == 200 and len(state["states"]) == 1
        words = state["states"][0]["state"]
        assert all(isinstance(v, int) for v in words)
        status, r = _request(f"{server.url}/merge", json.dumps(state).encode(), "application/json")
        assert status == 200 and r == {"merged": 1}
    finally:
        other.shutdown()
        other.server_close()
        thread.join(timeout=10)
    status, res = _request(f"{server.url}/result?model=x")
    assert _same(res["slices"][0]["result"], fl.mse(_cat(a + b, 0), _cat(a + b, 1)))
    # the words of states add: the integer sum is the merged state
    status, mine = _request(f"{server.url}/state?model=x")
    total = np.asarray(mine["states"][0]["state"], np.int64)
    acc = fl.mse.accumulator.from_state(total)
    assert acc.count == 4096 and _same(acc.result(), fl.mse(_cat(a + b, 0), _cat(a + b, 1)))


def _corrupt(body):
    b = bytearray(body)
    b[200] ^= 0xFF  # in y_true's data
    return bytes(b)


def _npy_objects():
    buf = io.BytesIO()
    np.save(buf, np.array([[1, "a"], [2, "b"]], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize(
    "query, body, status, needle",
    [
        ("model=m&slice=s&loss=huber", b"garbage", 415, "body must be"),
        ("model=m&slice=s&loss=huber", b"PK\x03\x04 not really a zip", 400, "npz"),
        ("model=m&slice=s&loss=huber", b"\x93NUMPY broken header", 400, "cannot read"),
        ("model=m&slice=s&loss=nope", "npz", 400, "unknown loss"),
        ("model=m&slice=s&loss=huber&opt.delta=-1", "npz", 400, "delta"),
        ("model=m&slice=s&loss=huber&opt.dleta=1", "npz", 400, "dleta"),
        ("slice=s&loss=huber", "npz", 400, "model"),
        ("model=m&slice=s&loss=huber&bogus=1", "npz", 400, "bogus"),
        ("model=m&slice=s&loss=huber", "mismatch", 400, "shape"),
        ("model=m&slice=s&loss=huber", "missing", 400, "y_pred"),
        ("model=m&slice=s&loss=huber", "extra", 400, "unexpected member"),
        ("model=m&slice=s&loss=huber", "npy3d", 400, "shape"),
        ("model=m&slice=s&loss=huber", "big", 413, "limit"),
        ("model=m&slice=s&loss=huber", "corrupt", 400, "CRC"),
        ("model=m&slice=s&loss=huber", "objects", 400, "cannot read"),
    ],
)
def test_bad_input_is_a_json_4xx(server, query, body, status, needle):
    y = np.zeros(16, np.float32)
    bodies = {
        "npz": _npz(y_true=y, y_pred=y),
        "mismatch": _npz(y_true=y, y_pred=y[:8]),
        "missing": _npz(y_true=y),
        "extra": _npz(y_true=y, y_pred=y, other=y),
        "npy3d": _npy(np.zeros((4, 16))),
        "big": b"\x93NUMPY" + bytes(2 << 20),
        "corrupt": _corrupt(_npz(y_true=y, y_pred=y)),
        "objects": _npy_objects(),
    }
    got, r = _request(f"{server.url}/update?{query}", bodies.get(body, body))
    assert got == status, r
    assert set(r) == {"error"} and needle in r["error"], r
    # nothing was added, the server still answers
    assert _request(f"{server.url}/health")[0] == 200
    status, res = _request(f"{server.url}/result?model=m")
    assert status == 404 and "no data" in res["error"]


def test_other_errors(server):
    assert _request(f"{server.url}/nope")[0] == 404
    assert _request(f"{server.url}/update")[0] == 405  # GET of a POST endpoint
    assert _request(f"{server.url}/result")[0] == 400  # no model
    assert _request(f"{server.url}/result?model=m&reduction=none")[0] == 400
    status, r = _request(f"{server.url}/merge", b"{not json", "application/json")
    assert status == 400 and "GET /state" in r["error"]
    bad_state = {"states": [{"model": "m", "slice": "s", "loss": "mse", "options": {}, "state": [-1, 2, 3]}]}
    status, r = _request(f"{server.url}/merge", json.dumps(bad_state).encode(), "application/json")
    assert status == 400, r
    status, r = _request(f"{server.url}/health")
    assert status == 200 and r["status"] == "ok" and r["accumulators"] == 0


def test_load_test_runs(server, capsys):
    load_test = _load("load_test")
    rc = load_test.main(["--url", server.url, "--seconds", "1", "--threads", "2", "--batch", "1024"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "requests/s" in out and "p50" in out and "p99" in out
    assert "check       ok" in out
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("requests/s")))
    assert rps > 0
