"""``fastloss eval``: one loss over arrays on disk, streamed through an accumulator.

::

    fastloss eval huber --y-true y.npy --y-pred p.npy --opt delta=2
    fastloss eval sparse_cce --y-true data.npz:labels --y-pred data.npz:logits \\
        --opt from_logits=true --json
    fastloss eval mse --y-true t.parquet:target --y-pred t.parquet:prediction \\
        --weights t.parquet:w --reduction sum

The inputs are never loaded whole: ``.npy`` files (and uncompressed ``.npz``
members) are memory-mapped, compressed ``.npz`` members are decompressed and
Parquet columns decoded (with pyarrow) a chunk at a time, each input in a
reader thread that runs ahead of the kernels. Each chunk goes through
``fl.NAME.accumulator``, whose state is exact; chunks are whole multiples of
the kernels' 1024-item reduction blocks (elements; rows for row-wise losses;
regions or boxes), so the printed value is bit for bit the value of
``fl.NAME(y_true, y_pred, ...)`` on the arrays in memory.

:func:`evaluate` is the same thing as a function (sources may also be NumPy
arrays); :func:`main` is the command line (``fastloss eval --help``).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import math
import os
import queue
import shutil
import struct
import sys
import threading
import time
import zipfile

import numpy as np

PROG = "fastloss eval"
#: Items (elements, rows, regions, boxes) of the kernels' reduction blocks:
#: an accumulator fed whole multiples of it gives the one-shot call's bits.
BLOCK = 1024
DEFAULT_CHUNK = 1 << 20

_DESCRIPTION = """\
Evaluate one loss over arrays stored on disk, streaming them through the
loss's exact accumulator (fl.LOSS.accumulator) a chunk at a time, so files
larger than memory work and the value equals the in-memory call
fl.LOSS(y_true, y_pred, ...) bit for bit.

Inputs (SOURCE):
  FILE.npy               memory-mapped
  FILE.npz:MEMBER        a member of an .npz archive (FILE.npz alone: its only
                         member); uncompressed members are memory-mapped,
                         compressed ones decompressed a chunk at a time
  FILE.parquet:COLUMN    a Parquet column, read by batches (needs pyarrow);
                         a fixed-size list column is a 2-D array (rows, size)
The format is recognised from the file's first bytes, not its name.
"""

_EPILOG = """\
Options (--opt NAME=VALUE, repeatable) are the loss's own, checked by the
loss: VALUE is read as true/false, none, an integer, a float (1e-3, inf),
a Python tuple or list ("(1, 2)", "[0.2, 0.8]"), else as text.

Chunks are --chunk elements of y_pred, rounded to a whole number of the
kernels' 1024-item blocks (for row-wise losses: 1024 rows) and cut along the
first axis; weights with the loss's full per-item shape are cut with them,
smaller (broadcast) weights are passed whole to every chunk. An input whose
first axis cannot be cut goes in one update, read whole: a class axis of a
row-wise loss. A region loss (dice, jaccard, tversky, focal_tversky) whose
axis= covers the first axis or is None is cut too: its accumulator adds the
chunks' exact region sums, so the value is the whole array's.

Output: the value in y_pred's dtype, as the in-memory call returns it
(printed as the shortest text that reads back to it), the item count (what
the accumulator counted: elements, rows, regions or boxes) and the
throughput (elements of y_pred per second, MB of input read per second).
--json prints one object instead, with the keys loss, options, reduction,
value (a float32 value as its exact float64), dtype, count, elements, bytes,
seconds, elements_per_second, megabytes_per_second, chunk_rows, chunks and
inputs; a non-finite value is written as the string "NaN", "Infinity" or
"-Infinity" (Python's float() reads them).
A progress bar is drawn on stderr when stderr is a terminal.

Exit status: 0 on success; 2 for a bad command line, file, loss, option or
input (one line on stderr: "fastloss eval: error: ..."); 130 if interrupted.

Examples:
  fastloss eval huber --y-true y.npy --y-pred p.npy --opt delta=2
  fastloss eval sparse_cce --y-true d.npz:labels --y-pred d.npz:logits --opt from_logits=true
  fastloss eval mse --y-true t.parquet:y --y-pred t.parquet:p --weights t.parquet:w --json
  fastloss eval --list
"""


class EvalError(Exception):
    """A bad command line, file, loss, option or input: the one-line message
    of ``fastloss eval: error: ...`` (exit status 2)."""


class _UsageError(EvalError):
    pass


class _Parser(argparse.ArgumentParser):
    # argparse prints its usage before the message and exits; fastloss eval
    # reports every error as one line, so it raises instead.
    def error(self, message):
        raise _UsageError(f"{message} (see {PROG} --help)")


# --------------------------------------------------------------------------
# Loss and options
# --------------------------------------------------------------------------


def _fastloss():
    import fastloss

    return fastloss


def resolve_loss(name: str):
    """The loss object ``fl.NAME`` of the ``(y_true, y_pred)`` form (aliases
    and dashes accepted), or an :class:`EvalError` naming close matches."""
    fl = _fastloss()
    key = name.strip().replace("-", "_")
    key = fl.ALIASES.get(key, key)
    if key in fl.LOSSES:
        return fl.LOSSES[key]
    if isinstance(fl.METRICS.get(key), fl.Metric):  # binary_accuracy, ...: the losses' form
        return fl.METRICS[key]
    if key in fl.METRICS:
        raise EvalError(f"{name} is a confusion metric; {PROG} evaluates the losses and the "
                        f"accuracy metrics listed by '{PROG} --list'")
    if key in fl.OTHER_LOSSES:
        raise EvalError(
            f"{name} takes other arguments than (y_true, y_pred); "
            f"{PROG} evaluates the losses listed by '{PROG} --list'"
        )
    names = list(fl.LOSSES) + list(fl.METRICS) + list(fl.ALIASES)
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise EvalError(f"unknown loss {name!r}{hint}; '{PROG} --list' lists them")


def _info(loss) -> dict:
    fl = _fastloss()
    try:
        return fl._core.loss_info(loss.name)
    except Exception:  # pragma: no cover - every registered loss has its info
        return {"driver": None, "options": []}


def parse_value(text: str):
    """An option value from text: ``true``/``false`` (any case) -> bool,
    ``none``/``null`` -> None, an integer, a float (``1e-3``, ``inf``,
    ``nan``), a Python tuple or list literal, else the text itself."""
    s = text.strip()
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        pass
    if s[:1] in ("(", "["):
        try:
            return ast.literal_eval(s)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as e:
            raise EvalError(f"--opt: cannot read {text!r} as a tuple or list") from e
    return text


def parse_options(pairs, loss=None) -> dict:
    """``["delta=2", "from_logits=true"]`` -> ``{"delta": 2, "from_logits": True}``.
    Options whose registry type is text (``kind``) keep their text; the loss
    checks names and values when the accumulator is made and fed."""
    text_options = set()
    if loss is not None:
        text_options = {o["name"] for o in _info(loss).get("options", []) if o.get("type") == "str"}
    options = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise EvalError(f"--opt expects NAME=VALUE, got {pair!r}")
        if not name.isidentifier():
            raise EvalError(f"--opt: {name!r} is not an option name")
        if name in options:
            raise EvalError(f"--opt {name} given twice")
        if name in ("reduction", "weights"):
            raise EvalError(f"--opt {name}: use --{name} instead")
        options[name] = value if name in text_options else parse_value(value)
    return options


# --------------------------------------------------------------------------
# Sources: arrays read a block of leading-axis rows at a time
# --------------------------------------------------------------------------


class _Source:
    """A sequential reader of an array along its first axis: ``shape``,
    ``dtype`` and ``read(n)`` (the next ``n`` rows, fewer at the end)."""

    label: str
    shape: tuple
    dtype: np.dtype
    pos: int = 0

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize

    def read(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def read_all(self) -> np.ndarray:
        return self.read(self.rows)

    def close(self) -> None:
        pass

    def describe(self) -> dict:
        return {"source": self.label, "shape": list(self.shape), "dtype": self.dtype.name}


class _ArraySource(_Source):
    # An array in memory or memory-mapped: reads are views.
    def __init__(self, array, label):
        self.array = array
        self.label = label
        self.shape = tuple(array.shape)
        self.dtype = array.dtype

    def read(self, n):
        if not self.shape:
            self.pos = 1
            return self.array
        a = self.array[self.pos : self.pos + n]
        self.pos += len(a)
        return a

    def close(self):
        self.array = None


class _StreamSource(_Source):
    # The data of a .npy stream (a compressed .npz member), C order.
    def __init__(self, fp, shape, dtype, label):
        self.fp = fp
        self.shape = tuple(shape)
        self.dtype = dtype
        self.label = label

    def read(self, n):
        if not self.shape:
            self.pos = 1
            return self._take(1, ()).reshape(())
        n = max(0, min(n, self.rows - self.pos))
        self.pos += n
        return self._take(n * int(np.prod(self.shape[1:], dtype=np.int64)), (n,) + self.shape[1:])

    def _take(self, count, shape):
        nbytes = count * self.dtype.itemsize
        buf = bytearray(nbytes)
        view = memoryview(buf)
        got = 0
        while got < nbytes:
            k = self.fp.readinto(view[got:])
            if not k:
                raise EvalError(f"{self.label}: truncated (expected {nbytes - got} more bytes)")
            got += k
        return np.frombuffer(buf, self.dtype).reshape(shape)

    def close(self):
        if self.fp is not None:
            self.fp.close()
            self.fp = None


class _ParquetSource(_Source):
    # One column of a Parquet file, decoded by record batches and cut into
    # the reads asked for (numeric columns; fixed-size or equal-length lists
    # become a second axis).
    def __init__(self, path, column, label, batch_rows):
        try:
            import pyarrow.parquet as pq
        except ImportError as e:
            raise EvalError(f"{label}: reading Parquet needs pyarrow (pip install pyarrow)") from e
        self.label = label
        self._file = pq.ParquetFile(path)
        names = list(self._file.schema_arrow.names)
        if column is None:
            if len(names) != 1:
                raise EvalError(f"{label}: name a column (FILE:COLUMN); columns: {', '.join(names)}")
            column = names[0]
        if column not in names:
            raise EvalError(f"{label}: no column {column!r}; columns: {', '.join(names)}")
        self.column = column
        total = self._file.metadata.num_rows
        self._batches = self._file.iter_batches(batch_size=max(1, batch_rows), columns=[column])
        self._pending = []  # decoded arrays not yet read, in order
        self._pending_rows = 0
        first = self._next_batch()
        if first is None:
            field_type = self._file.schema_arrow.field(column).type
            try:
                dtype = np.dtype(field_type.to_pandas_dtype())
            except (NotImplementedError, TypeError):
                dtype = np.dtype(np.float64)
            self.shape, self.dtype = (0,), dtype
        else:
            self.shape, self.dtype = (total,) + first.shape[1:], first.dtype

    def _convert(self, arr):
        import pyarrow as pa

        if arr.null_count:
            raise EvalError(f"{self.label}: column {self.column!r} has null values")
        t = arr.type
        if pa.types.is_dictionary(t):
            return self._convert(arr.dictionary_decode())
        if pa.types.is_fixed_size_list(t):
            inner = self._convert(arr.flatten())
            return inner.reshape((len(arr), t.list_size) + inner.shape[1:])
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            lengths = arr.value_lengths().to_numpy(zero_copy_only=False)
            if len(lengths) and (lengths.min() != lengths.max()):
                raise EvalError(
                    f"{self.label}: the lists of column {self.column!r} differ in length "
                    f"({lengths.min()} to {lengths.max()})"
                )
            size = int(lengths[0]) if len(lengths) else 0
            inner = self._convert(arr.flatten())
            return inner.reshape((len(arr), size) + inner.shape[1:])
        return arr.to_numpy(zero_copy_only=False)

    def _next_batch(self):
        batch = next(self._batches, None)
        if batch is None:
            return None
        a = self._convert(batch.column(0))
        if self._pending and a.shape[1:] != self._pending[0].shape[1:]:
            raise EvalError(
                f"{self.label}: rows of column {self.column!r} change shape "
                f"({self._pending[0].shape[1:]} to {a.shape[1:]})"
            )
        self._pending.append(a)
        self._pending_rows += len(a)
        return a

    def read(self, n):
        while self._pending_rows < n and self._next_batch() is not None:
            pass
        n = min(n, self._pending_rows)
        if self._pending and len(self._pending[0]) >= n:
            head = self._pending[0]
            out, rest = head[:n], head[n:]
            self._pending[0:1] = [rest] if len(rest) else []
        else:
            parts, need = [], n
            while need:
                head = self._pending.pop(0)
                parts.append(head[:need])
                if len(head) > need:
                    self._pending.insert(0, head[need:])
                need -= len(parts[-1])
            out = np.concatenate(parts) if parts else np.empty((0,) + self.shape[1:], self.dtype)
        self._pending_rows -= n
        self.pos += n
        return out

    def close(self):
        self._pending = []
        self._batches = iter(())
        self._file = None


def _split_spec(spec: str, label: str):
    """``(path, member)``: an existing path is taken whole, else the part
    after its last colon names a member or column."""
    if os.path.exists(spec) or ":" not in spec:
        return spec, None
    path, _, member = spec.rpartition(":")
    if not os.path.exists(path):
        raise EvalError(f"{label}: no such file: {path!r}")
    return path, (member or None)


def _sniff(path, label):
    if not os.path.exists(path):
        raise EvalError(f"{label}: no such file: {path!r}")
    if os.path.isdir(path):
        raise EvalError(f"{label}: {path!r} is a directory")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "npz"
    if head[:4] == b"PAR1":
        return "parquet"
    kind = "an empty file" if not head else f"starts with {head[:6]!r}"
    raise EvalError(f"{label}: {path!r} is not a .npy, .npz or Parquet file ({kind})")


def _read_npy_header(fp, label):
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(fp)
        else:  # 2.0 and 3.0 (3.0 differs only in allowing utf-8 field names)
            shape, fortran, dtype = npformat.read_array_header_2_0(fp)
    except ValueError as e:
        raise EvalError(f"{label}: not a valid .npy header ({e})") from e
    if dtype.hasobject:
        raise EvalError(f"{label}: arrays of Python objects are not read (dtype {dtype})")
    return tuple(shape), fortran, dtype


def _open_npz(path, member, label):
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise EvalError(f"{label}: {path!r} is not a valid .npz archive ({e})") from e
    with zf:
        names = zf.namelist()
        shown = [n[:-4] if n.endswith(".npy") else n for n in names]
        if member is None:
            if len(names) != 1:
                listing = ", ".join(shown) if shown else "none"
                raise EvalError(f"{label}: name a member ({path}:MEMBER); members: {listing}")
            full = names[0]
        elif member in names:
            full = member
        elif member + ".npy" in names:
            full = member + ".npy"
        else:
            raise EvalError(f"{label}: {path!r} has no member {member!r}; members: {', '.join(shown)}")
        info = zf.getinfo(full)
        if info.flag_bits & 0x1:
            raise EvalError(f"{label}: member {full!r} is encrypted")
        name = f"{path}:{full[:-4] if full.endswith('.npy') else full}"
        if info.compress_type == zipfile.ZIP_STORED:
            mapped = _map_stored_member(path, info, name)
            if mapped is not None:
                return _ArraySource(mapped, name)
        fp = zf.open(full)  # ZipExtFile keeps its own handle of the file
    try:
        shape, fortran, dtype = _read_npy_header(fp, name)
        if fortran and len(shape) > 1:
            # Column-major data has no contiguous rows: read it whole.
            count = int(np.prod(shape, dtype=np.int64))
            data = _StreamSource(fp, (count,), dtype, name).read_all()
            return _ArraySource(data.reshape(shape, order="F"), name)
        return _StreamSource(fp, shape, dtype, name)
    except BaseException:
        fp.close()
        raise


def _map_stored_member(path, info, label):
    # An uncompressed member is a .npy file at an offset of the archive:
    # memory-map its data (None: not mappable, then it is streamed).
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        shape, fortran, dtype = _read_npy_header(f, label)
        offset = f.tell()
    count = int(np.prod(shape, dtype=np.int64))
    if offset + count * dtype.itemsize > os.path.getsize(path):
        raise EvalError(f"{label}: truncated member")
    if count == 0:
        return np.empty(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


def open_source(spec, label: str, batch_rows: int = 1 << 16) -> _Source:
    """A reader of ``spec``: a NumPy array (read as views), ``FILE.npy``,
    ``FILE.npz[:MEMBER]`` or ``FILE.parquet[:COLUMN]``. ``label`` names the
    argument in error messages."""
    if not isinstance(spec, (str, os.PathLike)):
        return _ArraySource(np.asarray(spec), label)
    spec = os.fspath(spec)
    path, member = _split_spec(spec, label)
    kind = _sniff(path, label)
    if kind == "npy":
        if member is not None:
            raise EvalError(f"{label}: {path!r} is a .npy file, it has no member {member!r}")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise EvalError(f"{label}: cannot read {path!r}: {e}") from e
        return _ArraySource(array, path)
    if kind == "npz":
        return _open_npz(path, member, label)
    return _ParquetSource(path, member, f"{label} ({path})", batch_rows)


# --------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------


def _prod(values) -> int:
    return int(np.prod(tuple(values), dtype=np.int64))


def _axes(axis, ndim):
    if axis is None:
        return None
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = set()
    for a in items:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            return "bad"  # the loss reports it
        out.add(int(a) % ndim)
    return out


def _layout(loss, options, pred_shape):
    """``(units, item_ndim)``: the reduction items (what the kernels block
    by 1024) in one slice of y_pred's first axis, and the number of axes of
    the per-item losses (for weights); units is None when the first axis
    cannot be cut (it is a class or region axis, or y_pred is a scalar)."""
    ndim = len(pred_shape)
    if ndim == 0:
        return None, 0
    driver = _info(loss).get("driver")
    rest = pred_shape[1:]
    if driver == "elementwise":
        return _prod(rest), ndim
    if driver in ("dense_rows", "label_rows"):
        axes = _axes(options.get("axis", -1), ndim)
        if axes in (None, "bad") or 0 in axes:
            return None, ndim - 1
        (a,) = axes
        return _prod(s for k, s in enumerate(pred_shape) if k not in (0, a)), ndim - 1
    if driver == "regions":
        axes = _axes(options.get("axis"), ndim)
        if axes == "bad":
            return None, 0
        if axes is None or 0 in axes:
            # Regions that span the first axis (axis=None: one region): the
            # accumulator adds every chunk's exact region sums; a row adds
            # the other reduced axes' elements to each region.
            axes = range(ndim) if axes is None else axes
            return _prod(pred_shape[k] for k in axes if k != 0), ndim - len(axes)
        return _prod(s for k, s in enumerate(pred_shape) if k != 0 and k not in axes), ndim - len(axes)
    if driver == "boxes":
        if ndim < 2:
            return None, 0
        return _prod(pred_shape[1:-1]), ndim - 1
    return None, ndim


def chunk_rows(chunk_elements: int, pred_shape, units) -> int:
    """Rows of y_pred's first axis per chunk: about ``chunk_elements``
    elements, and a whole number of 1024-item blocks."""
    row_elements = max(1, _prod(pred_shape[1:]))
    step = BLOCK // math.gcd(BLOCK, units) if units else 1
    target = max(1, chunk_elements // row_elements)
    return max(step, round(target / step) * step)


# --------------------------------------------------------------------------
# Progress bar (stderr, terminals only)
# --------------------------------------------------------------------------


class _Progress:
    def __init__(self, total_elements, stream):
        self.total = max(int(total_elements), 0)
        self.stream = stream
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.drawn = False

    def update(self, done, force=False):
        now = time.perf_counter()
        if not force and now - self.last < 0.1:
            return
        self.last = now
        elapsed = max(now - self.t0, 1e-9)
        rate = done / elapsed
        frac = done / self.total if self.total else 1.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        text = f" {frac * 100:5.1f}%  {_si(done)}/{_si(self.total)} elements  {_si(rate)}/s  ETA {eta:5.1f}s"
        width = shutil.get_terminal_size((80, 20)).columns
        bar = max(10, min(40, width - len(text) - 3))
        full = int(bar * frac)
        line = f"[{'#' * full}{'.' * (bar - full)}]{text}"[: max(width - 1, 10)]
        self.stream.write("\r" + line)
        self.stream.flush()
        self.drawn = True

    def close(self):
        if self.drawn:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write("\r" + " " * max(width - 1, 10) + "\r")
            self.stream.flush()


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------

class _Reader:
    """Reads ``source`` in a thread of its own, ``sizes`` rows at a time, up
    to ``depth`` reads ahead of the kernels (one thread per input: the
    decompression or decoding of y_true and y_pred overlap, zlib and pyarrow
    release the GIL). ``get()`` gives the next array or raises what the read
    raised."""

    def __init__(self, source, sizes, depth=2):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source, sizes), daemon=True,
                                        name=f"fastloss-eval-{source.label}")
        self._thread.start()

    def _run(self, source, sizes):
        try:
            for k in sizes:
                item = source.read(k)
                while not self._stop.is_set():
                    try:
                        self._queue.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._queue.put((None, e))

    def get(self):
        item, error = self._queue.get()
        if error is not None:
            raise error
        return item

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)


def evaluate(
    loss,
    y_true,
    y_pred,
    weights=None,
    options: dict | None = None,
    reduction: str = "mean",
    chunk: int = DEFAULT_CHUNK,
    progress=None,
) -> dict:
    """The value of ``loss`` (a name or ``fl.NAME``) over sources streamed
    through its accumulator, and what it took.

    ``y_true``, ``y_pred`` and ``weights`` are NumPy arrays or specs
    (``FILE.npy``, ``FILE.npz[:MEMBER]``, ``FILE.parquet[:COLUMN]``);
    ``chunk`` is the number of y_pred elements per accumulator update
    (rounded to whole 1024-item blocks along the first axis); ``progress``
    is a writable text stream for a progress bar, or None.

    Returns a dict with ``loss``, ``options``, ``reduction``, ``value``
    (a NumPy scalar of y_pred's dtype, float32 or float64, equal to the
    in-memory call's), ``dtype``, ``count`` (items counted by the
    accumulator), ``elements`` (of y_pred), ``bytes`` (read), ``seconds``,
    ``elements_per_second``, ``megabytes_per_second``, ``chunk_rows``,
    ``chunks`` and ``inputs``. Raises :class:`EvalError` (and the loss's
    ``ValueError``/``TypeError``) on bad input.
    """
    fl = _fastloss()
    if isinstance(loss, str):
        loss = resolve_loss(loss)
    options = dict(options or {})
    if reduction not in ("mean", "sum"):
        raise EvalError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if not isinstance(chunk, (int, np.integer)) or chunk <= 0:
        raise EvalError(f"chunk must be a positive number of elements, got {chunk!r}")
    factory = getattr(loss, "accumulator", None)
    if factory is None:
        raise EvalError(f"this fastloss ({fl.__version__}) has no accumulators (fl.{loss.name}.accumulator)")
    # The loss checks its options (names, types, ranges) here.
    acc = factory(reduction=reduction, **options)

    sources = []
    try:
        pred = open_source(y_pred, "y_pred")
        sources.append(pred)
        units, item_ndim = _layout(loss, options, pred.shape)
        rows = chunk_rows(int(chunk), pred.shape, units) if units else max(pred.rows, 1)
        true = open_source(y_true, "y_true")
        sources.append(true)
        w = open_source(weights, "weights") if weights is not None else None
        if w is not None:
            sources.append(w)

        n = pred.rows
        if units is not None:
            if true.shape and true.rows != n:
                raise EvalError(
                    f"length mismatch: y_true has {true.rows} rows (shape {true.shape}), "
                    f"y_pred has {n} (shape {pred.shape})"
                )
            if not true.shape:
                units = None  # a scalar y_true: let the loss say what it thinks
        # weights: cut along the first axis when they have the per-item
        # losses' full rank and length; otherwise (broadcast) pass them whole.
        cut_weights = False
        if w is not None and units is not None and item_ndim and len(w.shape) == item_ndim:
            if w.rows == n and n != 1:
                cut_weights = True
            elif w.rows != 1:
                raise EvalError(
                    f"length mismatch: weights has {w.rows} rows (shape {w.shape}), "
                    f"y_pred has {n} (shape {pred.shape})"
                )
        if units is None:
            rows = max(n, 1)
        whole_weights = None
        if w is not None and not cut_weights:
            whole_weights = w.read_all()

        # rows of each update: whole chunks, then the rest (one empty update
        # for an empty input, one of everything for a scalar)
        if pred.shape and n:
            sizes = [rows] * (n // rows) + ([n % rows] if n % rows else [])
        else:
            sizes = [n if pred.shape else 1]

        elements = _prod(pred.shape)
        row_elements = max(1, _prod(pred.shape[1:]))
        bar = _Progress(elements, progress) if progress is not None else None
        t0 = time.perf_counter()
        readers = [_Reader(true, sizes), _Reader(pred, sizes)]
        if cut_weights:
            readers.append(_Reader(w, sizes))
        nbytes = whole_weights.nbytes if whole_weights is not None else 0
        chunks = done = 0
        try:
            for k in sizes:
                parts = [r.get() for r in readers]
                ww = parts[2] if cut_weights else whole_weights
                if ww is None:
                    acc.update(parts[0], parts[1])
                else:
                    acc.update(parts[0], parts[1], weights=ww)
                chunks += 1
                done += k
                nbytes += sum(x.nbytes for x in parts)
                if bar is not None:
                    bar.update(done * row_elements if pred.shape else elements)
            value = acc.result()
        finally:
            for r in readers:
                r.close()
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - t0
        inputs = {"y_true": true.describe(), "y_pred": pred.describe()}
        if w is not None:
            inputs["weights"] = w.describe()
    finally:
        for s in sources:
            s.close()
    # The in-memory call returns a value of y_pred's dtype (float32 or
    # float64): the accumulator's float64 result rounded the same way.
    dtype = pred.dtype if pred.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    return {
        "loss": loss.name,
        "options": options,
        "reduction": reduction,
        "value": dtype.type(value),
        "dtype": dtype.name,
        "count": int(acc.count),
        "elements": elements,
        "bytes": int(nbytes),
        "seconds": seconds,
        "elements_per_second": elements / seconds if seconds > 0 else float("inf"),
        "megabytes_per_second": nbytes / 1e6 / seconds if seconds > 0 else float("inf"),
        "chunk_rows": int(min(rows, max(n, 1))),
        "chunks": chunks,
        "inputs": inputs,
    }


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------


def _chunk_arg(text: str) -> int:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of elements, got {text!r}")
    return int(value)


def _threads_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("loss", nargs="?", help="the loss: a name of fl.LOSSES or an alias (huber, mse, bce, ...)")
    p.add_argument("--y-true", metavar="SOURCE", help="the targets (labels for the label losses)")
    p.add_argument("--y-pred", metavar="SOURCE", help="the predictions")
    p.add_argument("--weights", metavar="SOURCE",
                   help="weights, broadcastable to the per-item losses (as the loss's weights=)")
    p.add_argument("--opt", action="append", default=[], metavar="NAME=VALUE",
                   help="a loss option, e.g. --opt delta=2 (repeatable)")
    p.add_argument("--reduction", choices=("mean", "sum"), default="mean",
                   help="mean (default; weighted: sum(w*l)/sum(w)) or sum")
    p.add_argument("--chunk", type=_chunk_arg, default=DEFAULT_CHUNK, metavar="N",
                   help=f"y_pred elements per update, e.g. 1e6 (default {DEFAULT_CHUNK}); "
                   "rounded to whole 1024-item blocks")
    p.add_argument("--threads", type=_threads_arg, default=None, metavar="T",
                   help="fastloss threads (default: fastloss's own)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.add_argument("--list", action="store_true", help="list the losses and their options, and exit")
    return p


def _list_losses(stream) -> None:
    fl = _fastloss()
    aliases = {}
    for alias, name in fl.ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    metrics = {n: m for n, m in fl.METRICS.items() if isinstance(m, fl.Metric)}
    for name, loss in {**fl.LOSSES, **metrics}.items():
        info = _info(loss)
        opts = ", ".join(f"{o['name']}={o['default']!r}" for o in info.get("options", []))
        alias = f" (alias {', '.join(aliases[name])})" if name in aliases else ""
        stream.write(f"{name}{alias}: {opts or 'no options'}\n")


def _json_number(x: float):
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


_UNITS = {"elementwise": "elements", "dense_rows": "rows", "label_rows": "rows", "regions": "regions",
          "boxes": "boxes"}


def _format_text(r: dict) -> str:
    opts = ", ".join(f"{k}={v!r}" for k, v in r["options"].items())
    unit = _UNITS.get(_info(resolve_loss(r["loss"])).get("driver"), "items")
    lines = [
        f"loss     {r['loss']}({opts}), reduction {r['reduction']}",
        f"value    {str(r['value'])}  ({r['dtype']})",
        f"count    {r['count']} {unit} ({r['elements']} elements of y_pred)",
        f"time     {r['seconds']:.3f} s: {r['elements_per_second'] / 1e6:.1f} M elements/s, "
        f"{r['megabytes_per_second']:.1f} MB/s ({r['bytes'] / 1e6:.1f} MB in {r['chunks']} chunk(s) "
        f"of {r['chunk_rows']} rows)",
    ]
    return "\n".join(lines) + "\n"


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if isinstance(e, KeyError) and len(e.args) == 1:
        text = str(e.args[0])
    return text or type(e).__name__


def main(argv=None) -> int:
    """``fastloss eval``: returns the exit status (0, 2 on bad input)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help
            return int(e.code or 0)
        if args.list:
            _list_losses(sys.stdout)
            return 0
        if not args.loss:
            raise _UsageError(f"name a loss, e.g. '{PROG} huber ...' ({PROG} --list lists them)")
        for flag in ("y_true", "y_pred"):
            if getattr(args, flag) is None:
                raise _UsageError(f"--{flag.replace('_', '-')} is required (see {PROG} --help)")
        loss = resolve_loss(args.loss)
        options = parse_options(args.opt, loss)
        if args.threads is not None:
            _fastloss().set_num_threads(args.threads)
        progress = None
        if not args.no_progress and _is_tty(sys.stderr):
            progress = sys.stderr
        result = evaluate(loss, args.y_true, args.y_pred, args.weights, options, args.reduction,
                          args.chunk, progress)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except (EvalError, ValueError, TypeError, OSError, EOFError, KeyError, IndexError,
            NotImplementedError, OverflowError, MemoryError, zipfile.BadZipFile) as e:
        sys.stderr.write(f"{PROG}: error: {_one_line(e)}\n")
        return 2
    if args.json:
        out = dict(result)
        for key in ("value", "elements_per_second", "megabytes_per_second"):
            out[key] = _json_number(float(out[key]))
        out["options"] = _json_safe(out["options"])
        sys.stdout.write(json.dumps(out, default=_json_default) + "\n")
    else:
        sys.stdout.write(_format_text(result))
    sys.stdout.flush()
    return 0


def _json_safe(obj):
    if isinstance(obj, float):
        return _json_number(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return _json_number(float(x))
    if isinstance(x, (tuple, set)):
        return list(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return repr(x)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
