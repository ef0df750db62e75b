"""A small evaluation server: running losses per model and data slice.

Clients POST batches of (y_true, y_pred[, weights]); the server keeps one
fastloss accumulator per (model, slice, loss, options) and answers with the
running values. Accumulator states are exact, so the value over a slice is
the value of one call on all of its batches concatenated (bit for bit when
every batch is a multiple of 1024 elements; rows for row-wise losses), and
merging slices, or servers, loses nothing. Standard library and NumPy only
(pyarrow, when installed, adds Arrow IPC bodies)::

    python examples/python/eval_server.py --port 8000

    # a batch: an .npz body with members y_true, y_pred[, weights]
    python -c "import numpy as np, io, sys; b = io.BytesIO(); \\
        np.savez(b, y_true=np.zeros(4096, 'f4'), y_pred=np.ones(4096, 'f4')); \\
        sys.stdout.buffer.write(b.getvalue())" > batch.npz
    curl --data-binary @batch.npz 'http://127.0.0.1:8000/update?model=m1&slice=eu&loss=huber&opt.delta=2'
    curl 'http://127.0.0.1:8000/result?model=m1'

Endpoints (every answer is JSON; errors are ``{"error": "..."}`` with a 4xx
status and never a traceback):

``POST /update?model=M&slice=S&loss=L[&opt.NAME=VALUE ...]``
    Adds a batch. The body is one of
    - an ``.npz`` archive with members ``y_true``, ``y_pred`` and optionally
      ``weights`` (``np.savez``; compressed archives too),
    - an ``.npy`` array of shape ``(2, ...)`` (y_true, y_pred) or ``(3, ...)``
      (y_true, y_pred, weights), or a structured array with those fields,
    - an Arrow IPC stream (``Content-Type: application/vnd.apache.arrow.stream``)
      with columns ``y_true``, ``y_pred`` and optionally ``weights``, when
      pyarrow is installed (a fixed-size list column is a 2-D array).
    Options are the loss's own (``opt.delta=2``; values read as bool, none,
    int, float, tuple/list or text) and are checked by the loss; the defaults
    of the options not given are filled in, so ``opt.delta=1`` and no option
    share an accumulator. Answers ``{"count": items in the slice, "added": items}``.
``GET /result?model=M[&slice=S][&loss=L][&reduction=mean|sum]``
    The value and item count of each (slice, loss, options) of the model, and
    under ``"all"`` the same merged over the slices.
``GET /state[?model=M]``
    The accumulators' exact states (int64 words) with their keys.
``POST /merge``
    A ``GET /state`` answer of another server (JSON): its states are added
    to this server's (exactly: the sum of the two servers' batches).
``GET /health``
    Liveness and the number of accumulators.

Updates run in parallel (ThreadingHTTPServer; the core releases the GIL):
each batch first goes into an accumulator of its own, which is then merged
into the shared one (an addition of integers). One lock guards the dict of
accumulators, so a malformed batch never leaves an empty entry behind.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import math
import struct
import sys
import threading
import time
import traceback
import zipfile
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import numpy as np

import fastloss as fl

ARROW_STREAM = "application/vnd.apache.arrow.stream"
DEFAULT_MAX_BODY = 64 << 20  # bytes of a request body
DEFAULT_MAX_ACCUMULATORS = 100_000
MAX_NAME = 256  # characters of a model or slice name


class BadRequest(Exception):
    """A client error: its message is the JSON error of the answer."""

    def __init__(self, message, status=HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------
# Losses and options
# --------------------------------------------------------------------------


def resolve_loss(name):
    """``fl.NAME`` of the (y_true, y_pred) form, by name or alias."""
    key = fl.ALIASES.get(name, name)
    loss = fl.LOSSES.get(key)
    if loss is None:
        raise BadRequest(f"unknown loss {name!r}")
    if getattr(loss, "accumulator", None) is None:
        raise BadRequest(f"{name} has no accumulator in this fastloss build")
    return loss


def parse_value(text):
    """An option value from query text: true/false, none/null, int, float,
    a tuple or list literal, else the text."""
    s = text.strip()
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(s)
        except ValueError:
            pass
    if s[:1] in ("(", "["):
        try:
            return ast.literal_eval(s)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise BadRequest(f"cannot read {text!r} as a tuple or list") from None
    return text


def _freeze(value):
    # An option value as part of a dict key (lists -> tuples).
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def options_key(loss, given):
    """The options of an accumulator, defaults filled in, as a sorted tuple
    (the same for ``opt.delta=1`` and no option)."""
    full = dict(getattr(loss, "options", {}) or {})
    full.update(given)
    try:
        return tuple(sorted((k, _freeze(v)) for k, v in full.items()))
    except TypeError:  # an unhashable value: the loss will reject it
        raise BadRequest(f"{loss.name}: option values must be numbers, text, none or tuples") from None


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------


def _check_arrays(fields, max_bytes):
    unknown = set(fields) - {"y_true", "y_pred", "weights"}
    if unknown:
        raise BadRequest(f"unexpected member(s) {sorted(unknown)}; expected y_true, y_pred[, weights]")
    for need in ("y_true", "y_pred"):
        if need not in fields:
            raise BadRequest(f"the body has no {need}")
    total = sum(a.nbytes for a in fields.values())
    if total > max_bytes:
        raise BadRequest(f"arrays of {total} bytes exceed the limit of {max_bytes}",
                         HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    return fields["y_true"], fields["y_pred"], fields.get("weights")


def _from_npz(body, max_bytes):
    try:
        zf = zipfile.ZipFile(io.BytesIO(body))
    except zipfile.BadZipFile as e:
        raise BadRequest(f"not an .npz archive: {e}") from None
    with zf:
        # The sizes of the members, before anything is decompressed.
        if sum(i.file_size for i in zf.infolist()) > max_bytes + 4096 * len(zf.infolist()):
            raise BadRequest(f"the archive's members exceed the limit of {max_bytes} bytes",
                             HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        if all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist()):
            # np.savez: the arrays are views of the body (np.load takes ~3x longer)
            fields = {}
            for info in zf.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                fields[name] = _stored_member(body, info)
            return _check_arrays(fields, max_bytes)
    with np.load(io.BytesIO(body), allow_pickle=False) as npz:
        fields = {name: npz[name] for name in npz.files}
    return _check_arrays(fields, max_bytes)


def _stored_member(body, info):
    # An uncompressed .npy member of an archive in memory, without a copy.
    from numpy.lib import format as npformat

    (sig,) = struct.unpack_from("<I", body, info.header_offset)
    if sig != 0x04034B50:
        raise BadRequest(f"member {info.filename}: bad local header")
    name_len, extra_len = struct.unpack_from("<HH", body, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    end = start + info.file_size
    if end > len(body):
        raise BadRequest(f"member {info.filename}: truncated")
    data = memoryview(body)[start:end]
    if zlib.crc32(data) != info.CRC:
        raise BadRequest(f"member {info.filename}: CRC mismatch")
    f = io.BytesIO(data[: min(len(data), 65536)])
    version = npformat.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = npformat.read_array_header_1_0(f)
    else:
        shape, fortran, dtype = npformat.read_array_header_2_0(f)
    if dtype.hasobject:
        raise BadRequest(f"member {info.filename}: arrays of Python objects are not read")
    count = math.prod(shape)
    if f.tell() + count * dtype.itemsize != len(data):
        raise BadRequest(f"member {info.filename}: its size does not match its header")
    return np.frombuffer(body, dtype, count, start + f.tell()).reshape(shape, order="F" if fortran else "C")


def _from_npy(body, max_bytes):
    a = np.load(io.BytesIO(body), allow_pickle=False)
    if a.dtype.names:
        return _check_arrays({name: np.ascontiguousarray(a[name]) for name in a.dtype.names}, max_bytes)
    if a.ndim < 1 or a.shape[0] not in (2, 3):
        raise BadRequest(f"an .npy body must have shape (2, ...) or (3, ...), or fields; got {a.shape}")
    names = ("y_true", "y_pred", "weights")[: a.shape[0]]
    return _check_arrays(dict(zip(names, a)), max_bytes)


def _arrow_column(col, name):
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        raise BadRequest(f"column {name} has null values")
    t = col.type
    if pa.types.is_dictionary(t):
        return _arrow_column(col.dictionary_decode(), name)
    if pa.types.is_fixed_size_list(t):
        inner = _arrow_column(col.flatten(), name)
        return inner.reshape((len(col), t.list_size) + inner.shape[1:])
    return col.to_numpy(zero_copy_only=False)


def _from_arrow(body, max_bytes):
    try:
        import pyarrow as pa
    except ImportError:
        raise BadRequest("Arrow bodies need pyarrow on the server",
                         HTTPStatus.UNSUPPORTED_MEDIA_TYPE) from None
    table = pa.ipc.open_stream(pa.py_buffer(body)).read_all()
    fields = {name: _arrow_column(table.column(name), name) for name in table.column_names}
    return _check_arrays(fields, max_bytes)


def decode_body(body, content_type, max_bytes):
    """``(y_true, y_pred, weights or None)`` from a request body: an Arrow IPC
    stream (by its Content-Type), an ``.npz`` archive or an ``.npy`` array
    (by their first bytes). ``max_bytes`` bounds the decoded arrays."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    try:
        if ctype == ARROW_STREAM:
            return _from_arrow(body, max_bytes)
        if body[:4] == b"PK\x03\x04":
            return _from_npz(body, max_bytes)
        if body[:6] == b"\x93NUMPY":
            return _from_npy(body, max_bytes)
    except BadRequest:
        raise
    except Exception as e:  # whatever a malformed body makes the readers raise
        raise BadRequest(f"cannot read the body: {type(e).__name__}: {e}") from None
    raise BadRequest(
        f"the body must be an .npz archive, an .npy array or an Arrow IPC stream "
        f"(Content-Type {ARROW_STREAM}); got {len(body)} bytes starting {body[:8]!r}",
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    )


# --------------------------------------------------------------------------
# The accumulators
# --------------------------------------------------------------------------


class Store:
    """The accumulators, by ``(model, slice, loss name, options key)``.

    The lock guards the dict only; adding to an accumulator (``merge``) and
    reading it (``state``) are thread-safe in the core."""

    def __init__(self, max_accumulators=DEFAULT_MAX_ACCUMULATORS):
        self.max_accumulators = max_accumulators
        self._lock = threading.Lock()
        self._accs = {}

    def __len__(self):
        with self._lock:
            return len(self._accs)

    def add(self, key, batch_acc):
        """Merges ``batch_acc`` into the accumulator of ``key`` (made from
        its state when the key is new). Returns the key's item count."""
        with self._lock:
            acc = self._accs.get(key)
            if acc is None:
                if len(self._accs) >= self.max_accumulators:
                    raise BadRequest(f"too many accumulators (the limit is {self.max_accumulators})",
                                     HTTPStatus.INSUFFICIENT_STORAGE)
                self._accs[key] = batch_acc  # nobody else holds it
                return batch_acc.count
        acc.merge(batch_acc)
        return acc.count

    def items(self, model=None, slice_=None, loss=None):
        """``[(key, accumulator)]`` matching the filters, sorted by key."""
        with self._lock:
            items = list(self._accs.items())
        out = [
            (k, a) for k, a in items
            if (model is None or k[0] == model) and (slice_ is None or k[1] == slice_)
            and (loss is None or k[2] == loss)
        ]
        return sorted(out, key=lambda ka: (ka[0][0], ka[0][1], ka[0][2], repr(ka[0][3])))


def _json_safe(obj):
    # JSON without NaN/Infinity tokens (which strict parsers refuse).
    if isinstance(obj, float) and not math.isfinite(obj):
        return _number(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _number(x):
    x = float(x)
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    """The endpoints of the module's docstring; ``self.server`` is an
    :class:`EvalServer`."""

    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    # The headers and the body of an answer are two writes: without
    # TCP_NODELAY, Nagle's algorithm holds the body until the client's
    # delayed ACK of the headers (40 ms on Linux) on every request.
    disable_nagle_algorithm = True
    server_version = "fastloss-eval-server/1"
    timeout = 60  # seconds a client may take to send a request

    # -- plumbing ----------------------------------------------------------

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's name
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status, payload):
        data = (json.dumps(payload, allow_nan=False) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _query(self, allowed, prefix_allowed=()):
        parts = urlsplit(self.path)
        query = {}
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            if k in query:
                raise BadRequest(f"query parameter {k!r} given twice")
            if k not in allowed and not any(k.startswith(p) for p in prefix_allowed):
                raise BadRequest(f"unknown query parameter {k!r} (expected {', '.join(allowed)}"
                                 f"{', ' + ', '.join(p + 'NAME' for p in prefix_allowed) if prefix_allowed else ''})")
            query[k] = v
        return parts.path, query

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise BadRequest("send a Content-Length (chunked bodies are not read)", HTTPStatus.LENGTH_REQUIRED)
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            raise BadRequest("a Content-Length is required", HTTPStatus.LENGTH_REQUIRED)
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise BadRequest(f"bad Content-Length {length!r}") from None
        if n > self.server.max_body:
            if n <= 4 * self.server.max_body:
                self._discard(n)  # so that the client reads the answer and the connection goes on
            else:
                self.close_connection = True  # not read
            raise BadRequest(f"a body of {n} bytes exceeds the limit of {self.server.max_body}",
                             HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        body = self.rfile.read(n)
        if len(body) != n:
            self.close_connection = True
            raise BadRequest(f"the body ended after {len(body)} of {n} bytes")
        return body

    def _discard(self, n):
        while n > 0:
            got = self.rfile.read(min(n, 1 << 16))
            if not got:
                self.close_connection = True
                return
            n -= len(got)

    def _dispatch(self, routes):
        path = urlsplit(self.path).path
        try:
            try:
                route = routes.get(path)
                if route is None:
                    if self.command == "POST":
                        self.close_connection = True  # its body is not read
                    others = [p for p in self.server.routes_of_other_methods(self.command) if p == path]
                    if others:
                        raise BadRequest(f"{self.command} is not allowed on {path}", HTTPStatus.METHOD_NOT_ALLOWED)
                    raise BadRequest(f"no such endpoint {path!r}", HTTPStatus.NOT_FOUND)
                status, payload = route(self)
            except BadRequest as e:
                status, payload = e.status, {"error": str(e)}
            self._send(status, _json_safe(payload))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a bug of the server: logged here, never sent
            self.close_connection = True
            traceback.print_exc(file=sys.stderr)
            try:
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error (see the server's log)"})
            except OSError:
                pass

    def do_GET(self):  # noqa: N802 - BaseHTTPRequestHandler's name
        if self.headers.get("Content-Length", "0") != "0" or self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # a GET's body is not read
        self._dispatch({"/result": Handler.get_result, "/state": Handler.get_state, "/health": Handler.get_health})

    def do_POST(self):  # noqa: N802
        self._dispatch({"/update": Handler.post_update, "/merge": Handler.post_merge})

    # -- endpoints ---------------------------------------------------------

    def post_update(self):
        body = self._body()  # first: a refused request's body is read all the same
        _, q = self._query(("model", "slice", "loss"), ("opt.",))
        model, slice_ = _name(q, "model"), _name(q, "slice")
        loss = resolve_loss(q.get("loss") or _missing("loss"))
        given = {k[4:]: parse_value(v) for k, v in q.items() if k.startswith("opt.")}
        for k in given:
            if not k.isidentifier():
                raise BadRequest(f"bad option name {k!r}")
        key = (model, slice_, loss.name, options_key(loss, given))
        y_true, y_pred, weights = decode_body(body, self.headers.get("Content-Type"), self.server.max_arrays)
        try:
            # every option spelled out, defaults too: accumulators merge only
            # with accumulators of the same options
            batch = loss.accumulator(**dict(key[3]))  # checks the options
            if weights is None:
                batch.update(y_true, y_pred)
            else:
                batch.update(y_true, y_pred, weights=weights)
        except (ValueError, TypeError) as e:
            raise BadRequest(str(e)) from None
        count = self.server.store.add(key, batch)
        return HTTPStatus.OK, {"count": count, "added": batch.count}

    def get_result(self):
        _, q = self._query(("model", "slice", "loss", "reduction"))
        model = _name(q, "model")
        reduction = q.get("reduction", "mean")
        if reduction not in ("mean", "sum"):
            raise BadRequest(f"reduction must be mean or sum, got {reduction!r}")
        loss_filter = None
        if "loss" in q:
            loss_filter = resolve_loss(q["loss"]).name
        items = self.server.store.items(model, q.get("slice"), loss_filter)
        if not items:
            raise BadRequest(f"no data for model {model!r}" + (f" slice {q['slice']!r}" if "slice" in q else ""),
                             HTTPStatus.NOT_FOUND)
        slices, groups = [], {}
        for (m, s, name, okey), acc in items:
            options = dict(okey)
            state = acc.state()  # a copy: the accumulator keeps running
            view = fl.LOSSES[name].accumulator.from_state(state, reduction=reduction, **options)
            slices.append({"slice": s, "loss": name, "options": options,
                           "result": _number(view.result()), "count": view.count})
            groups.setdefault((name, okey), []).append(view)
        merged = []
        for (name, okey), views in groups.items():
            total = fl.LOSSES[name].accumulator(reduction=reduction, **dict(okey))
            total.merge(views)
            merged.append({"loss": name, "options": dict(okey), "result": _number(total.result()),
                           "count": total.count, "slices": len(views)})
        return HTTPStatus.OK, {"model": model, "reduction": reduction, "slices": slices, "all": merged}

    def get_state(self):
        _, q = self._query(("model",))
        model = _name(q, "model") if "model" in q else None
        states = [
            {"model": m, "slice": s, "loss": name, "options": dict(okey), "state": acc.state().tolist()}
            for (m, s, name, okey), acc in self.server.store.items(model)
        ]
        return HTTPStatus.OK, {"fastloss": fl.__version__, "states": states}

    def post_merge(self):
        body = self._body()
        self._query(())
        try:
            doc = json.loads(body)
            entries = doc["states"]
            if not isinstance(entries, list):
                raise TypeError("states must be a list")
        except (ValueError, KeyError, TypeError) as e:
            raise BadRequest(f"expected the JSON of GET /state: {e}") from None
        staged = []
        for i, entry in enumerate(entries):  # all checked before any is added
            try:
                model, slice_ = str(entry["model"]), str(entry["slice"])
                loss = resolve_loss(entry["loss"])
                options = dict(entry["options"])
                words = np.asarray(entry["state"], dtype=np.int64)
                okey = options_key(loss, options)
                acc = loss.accumulator.from_state(words, **dict(okey))
            except BadRequest as e:
                raise BadRequest(f"states[{i}]: {e}") from None
            except (KeyError, TypeError, ValueError, OverflowError) as e:
                raise BadRequest(f"states[{i}]: {type(e).__name__}: {e}") from None
            staged.append(((model, slice_, loss.name, okey), acc))
        for key, acc in staged:
            self.server.store.add(key, acc)
        return HTTPStatus.OK, {"merged": len(staged)}

    def get_health(self):
        self._query(())
        return HTTPStatus.OK, {"status": "ok", "fastloss": fl.__version__, "accumulators": len(self.server.store),
                               "uptime_s": round(time.monotonic() - self.server.started, 3)}


def _name(q, key):
    value = q.get(key)
    if not value:
        _missing(key)
    if len(value) > MAX_NAME:
        raise BadRequest(f"{key} is longer than {MAX_NAME} characters")
    return value


def _missing(key):
    raise BadRequest(f"the query parameter {key!r} is required")


class EvalServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with the :class:`Store` and limits."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address, max_body=DEFAULT_MAX_BODY, max_accumulators=DEFAULT_MAX_ACCUMULATORS,
                 verbose=False):
        self.store = Store(max_accumulators)
        self.max_body = max_body
        self.max_arrays = 4 * max_body  # decoded (decompressed) bytes of a batch
        self.verbose = verbose
        self.started = time.monotonic()
        super().__init__(address, Handler)

    @staticmethod
    def routes_of_other_methods(method):
        routes = {"GET": ("/result", "/state", "/health"), "POST": ("/update", "/merge")}
        return [p for m, paths in routes.items() if m != method for p in paths]

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(host="127.0.0.1", port=0, **kwargs) -> EvalServer:
    """A server bound to ``host:port`` (port 0: a free one; see ``.url``),
    not yet serving: call ``serve_forever()`` (or :func:`start`)."""
    return EvalServer((host, port), **kwargs)


def start(host="127.0.0.1", port=0, **kwargs):
    """A server serving in a daemon thread: ``(server, thread)``. Stop it with
    ``server.shutdown(); server.server_close()``."""
    server = make_server(host, port, **kwargs)
    thread = threading.Thread(target=server.serve_forever, name="eval-server", daemon=True)
    thread.start()
    return server, thread


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="An HTTP evaluation server over fastloss accumulators "
        "(POST /update, GET /result, /state, /health, POST /merge; see the module's docstring).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: a free one)")
    parser.add_argument("--max-body", type=float, default=DEFAULT_MAX_BODY / 2**20,
                        help=f"largest request body in MiB (default {DEFAULT_MAX_BODY >> 20})")
    parser.add_argument("--max-accumulators", type=int, default=DEFAULT_MAX_ACCUMULATORS,
                        help=f"most (model, slice, loss, options) kept (default {DEFAULT_MAX_ACCUMULATORS})")
    parser.add_argument("--threads", type=int, default=None, help="fastloss threads per call")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)
    if args.threads:
        fl.set_num_threads(args.threads)
    server = make_server(args.host, args.port, max_body=int(args.max_body * 2**20),
                         max_accumulators=args.max_accumulators, verbose=args.verbose)
    print(f"fastloss {fl.__version__} evaluation server on {server.url} (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
