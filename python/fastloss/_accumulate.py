"""Streaming evaluation: accumulators with exact, order-free merge.

``fl.NAME.accumulator(reduction="mean", **options)`` makes an
:class:`Accumulator`: feed it batches with ``update`` (the loss's own call,
same arguments and kernels, the GIL released), merge accumulators of other
threads or processes, and read the reduced value with ``result``::

    acc = fl.huber.accumulator(delta=1.0)
    for y, p, w in batches:
        acc.update(y, p, weights=w)
    acc.merge(other_acc)                 # or acc.merge([a, b, c])
    acc.result()                         # mean: sum(w * l) / sum(w)
    words = acc.state()                  # int64 array; states add
    fl.huber.accumulator.from_state(words, delta=1.0)

The state is the reduction's numerator ``sum(w * l)`` and denominator
(``sum(w)``, the count, or the loss's own: the weighted count of kept rows
with ``ignore_index`` / ``class_weights``), each an exact fixed-point sum of
the float64 block partials the kernels produce (blocks of 1024 elements,
rows, regions or boxes). Merging adds integers, so ``result()`` is the same
bits for any merge order or tree and any number of threads or processes, and
equals the one-shot call on the concatenated batches bit for bit whenever
each batch is a whole number of blocks (1024 elements; for row-wise losses
1024 rows). ``state()`` words of several accumulators merge by integer
addition (``np.sum(states, axis=0)``, ``MPI_SUM``, a Dask reduction).

Region losses whose reduced axes include the batch axis (``dice`` with
``axis=None``, or ``axis=(0, 2, 3)`` for per-class scores) keep each
region's exact sums instead (Dice's ``I``, ``sum(y)``, ``sum(p)``), so
``result()`` is the dataset's score -- the Dice of the summed intersections
and totals, the one-shot call on the concatenated batches -- not a mean of
batch scores. Their updates take no ``weights``.

Combined losses of fused terms (elementwise losses without array options)
accumulate as one reduction too: ``(0.5 * fl.mse + 0.5 * fl.huber).accumulator()``.

Not accumulable: losses whose value is not one reduction (the sum of two
means of ``gan_discriminator``; ``l2_penalty``; combined losses with row-wise
or region terms), and CUDA arrays.
"""

from __future__ import annotations

import numpy as np

from . import _core

#: int64 words of ``Accumulator.state()``.
STATE_WORDS: int = _core.STATE_WORDS


class Accumulator:
    """The running value of one loss, with fixed options and reduction.

    Made by ``fl.NAME.accumulator(reduction="mean", num_segments=None,
    **options)``. Methods:
    ``update(y_true, y_pred, weights=None, ...)`` (the loss's arguments),
    ``merge(other_or_iterable)``, ``result()``, ``state()``, ``reset()``;
    attributes ``count`` (items added: elements, rows, regions, boxes;
    ``counts`` per segment),
    ``numerator`` and ``denominator`` (the exact sums, rounded; per
    segment ``numerators`` and ``denominators``), ``name``,
    ``reduction``, ``options``. Thread-safe: concurrent updates run in
    parallel and meet only to add their sums. Pickles as its state.
    """

    __slots__ = ("_acc", "__weakref__")

    def __init__(self, name: str, reduction: str = "mean", num_segments=None, *, _terms=None,
                 **options):
        if num_segments is None:
            segments = -1
        elif isinstance(num_segments, bool) or not isinstance(num_segments, (int, np.integer)):
            raise TypeError(f"{name}.accumulator: num_segments must be an int or None, "
                            f"got {type(num_segments).__name__}")
        elif num_segments < 0:
            raise ValueError(f"{name}.accumulator: num_segments must be >= 0, got {num_segments}")
        else:
            segments = int(num_segments)
        self._acc = _core.Accumulator(name, reduction, options, segments, _terms)

    def update(self, *args, **kwargs) -> None:
        """Adds a batch: the loss's positional and keyword arguments
        (``weights=``, ``class_weights=``, ...; not ``reduction``, ``out`` or
        options, which are the accumulator's own). Checked as the loss call
        checks them; on error nothing is added."""
        self._acc.update(*args, **kwargs)

    def merge(self, others) -> "Accumulator":
        """Adds the state of another accumulator of the same loss, options
        and reduction, or of each of an iterable of them (exact: any order
        gives the same bits). Returns self."""
        if isinstance(others, Accumulator):
            others = (others,)
        for other in others:
            if not isinstance(other, Accumulator):
                raise TypeError(f"{self.name}.accumulator.merge: expected an Accumulator, "
                                f"got {type(other).__name__}")
            self._acc._merge_one(other._acc)
        return self

    def result(self):
        """The reduced value over everything added: ``"mean"``: numerator /
        denominator (NaN over nothing), ``"sum"``: the numerator. A NumPy
        float32 when every update was float32 (as the one-shot call returns),
        else float64."""
        return self._acc.result()

    def state(self) -> np.ndarray:
        """The state as ``STATE_WORDS`` int64 words: the item count, then
        the numerator's and the denominator's exact sums; for region losses
        whose regions span the batches, then 71 words per region sum (3 per
        region for Dice). The words of several states add element-wise into
        the words of their merge (per segment: one row each)."""
        return self._acc.state()

    def reset(self) -> None:
        """Forgets everything added."""
        self._acc.reset()

    @property
    def count(self) -> int:
        return self._acc.count

    @property
    def counts(self):
        """Items per segment (an int64 array), or None without segments."""
        return self._acc.counts

    @property
    def num_segments(self):
        return self._acc.num_segments

    @property
    def numerator(self) -> float:
        return self._acc.numerator

    @property
    def denominator(self) -> float:
        return self._acc.denominator

    @property
    def numerators(self):
        """Each segment's numerator (exact, rounded once to float64), or
        None without segments."""
        return self._acc.numerators

    @property
    def denominators(self):
        """Each segment's denominator (``sum(w)``, the count, or the loss's
        own; exact, rounded once to float64), or None without segments."""
        return self._acc.denominators

    @property
    def dtype(self):
        """``"float32"`` or ``"float64"``: the type ``result()`` returns
        (float64 once any update was), None before any update."""
        return self._acc.dtype

    @property
    def name(self) -> str:
        return self._acc.name

    @property
    def reduction(self) -> str:
        return self._acc.reduction

    @property
    def options(self) -> dict:
        return self._acc.options

    def copy(self) -> "Accumulator":
        return _from_state(*self._parts())

    def _parts(self):
        return (self.name, self.state(), self.reduction, self.options, self.dtype,
                self.num_segments, self._acc.terms)

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return _from_state, self._parts()

    def __repr__(self):
        return f"<fastloss accumulator {self._acc._describe()}: count={self.count}>"


def _from_state(name, state, reduction="mean", options=None, dtype=None, num_segments=None,
                terms=None):
    if num_segments is None and np.ndim(state) == 2:
        num_segments = np.shape(state)[0]
    acc = Accumulator(name, reduction, num_segments, _terms=terms, **(options or {}))
    acc._acc._load_state(state)
    acc._acc.dtype = dtype
    return acc


class AccumulatorFactory:
    """``fl.NAME.accumulator``: call it for a new :class:`Accumulator`
    (``reduction="mean"`` or ``"sum"``, and the loss's options), or rebuild
    one from its words with ``from_state(state, reduction=..., **options)``."""

    __slots__ = ("_name", "_fixed")

    def __init__(self, name: str, fixed: dict | None = None):
        self._name = name
        self._fixed = dict(fixed or {})

    def _options(self, options):
        # as for a Configured loss's call: given options override fixed ones
        return {**self._fixed, **options}

    def __call__(self, reduction: str = "mean", *, num_segments=None, **options) -> Accumulator:
        """A new accumulator; with ``num_segments=S``, one state per segment
        (updates take ``segment_ids=`` or ``offsets=``; ``result()`` is an
        array of S values)."""
        return Accumulator(self._name, reduction, num_segments, **self._options(options))

    def from_state(self, state, reduction: str = "mean", *, dtype=None, **options) -> Accumulator:
        """An accumulator holding ``state`` (``Accumulator.state()`` words, or
        the element-wise sum of several; 2-D words are per segment);
        ``dtype`` (``"float32"``) makes ``result()`` a float32 as the
        batches' own calls give it."""
        return _from_state(self._name, state, reduction, self._options(options), dtype)

    def __repr__(self):
        return f"<fastloss.{self._name}.accumulator>"


def accumulator_property(loss) -> AccumulatorFactory:
    """``loss.accumulator`` of ``fastloss.Loss``, ``MultiLoss`` and
    ``Configured`` (the fixed options become the accumulator's)."""
    fixed = getattr(loss, "fixed", None)
    return AccumulatorFactory(loss.name, fixed)


class CombinedAccumulatorFactory:
    """``combined.accumulator``: an :class:`Accumulator` of a combination whose
    terms all fuse (elementwise losses without array options): the fused
    call's exact sums, one reduction."""

    __slots__ = ("_terms",)

    def __init__(self, terms):
        self._terms = terms

    def __call__(self, reduction: str = "mean") -> Accumulator:
        return Accumulator("combined", reduction, _terms=self._terms)

    def from_state(self, state, reduction: str = "mean", *, dtype=None) -> Accumulator:
        return _from_state("combined", state, reduction, None, dtype, None, self._terms)
