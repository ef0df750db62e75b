"""Confusion counts and the scores made from them, with exact streaming.

``fl.confusion_counts(y_true, y_pred, task=..., ...)`` gives the int64 counts
``[tp, fp, tn, fn]`` of every class; ``fl.precision``, ``fl.recall``,
``fl.f1_score``, ``fl.fbeta_score`` and ``fl.specificity`` give a score of
them, per class or averaged (``average="macro" | "micro" | "weighted" |
"none"``)::

    fl.f1_score(labels, logits, task="multiclass", average="macro")
    fl.precision(y01, probs, task="binary", threshold=0.5)
    fl.recall(labels, predicted_labels, task="multiclass", num_classes=10)
    fl.confusion_counts(y01, scores, task="multilabel")          # (C, 4)
    fl.f1_score(labels, logits, task="multiclass", offsets=off)  # one per segment

Dask arrays give lazy results (per-chunk counts added, per segment too;
``fastloss.dask``).
Every one has ``.accumulator(**options)``: a :class:`ConfusionAccumulator`
whose state is the counts themselves (int64; merging is integer addition, so
results are exact and the same for any batch split, merge order, thread or
process count).

The options (``task``, ``num_classes``, ``threshold``, ``from_logits``,
``ignore_index``, ``axis``; ``average``, ``beta``, ``zero_division``) and the
score list come from the C++ core (``fastloss/confusion.hpp``:
``ConfusionOptions``, ``ScoreOptions``, ``FASTLOSS_CONFUSION_SCORES``); the
arguments are parsed there.
"""

from __future__ import annotations

import inspect
import threading

import numpy as np

from . import _core
from ._docs import options_section, signature_suffix
from ._function import MODULE, FunctionLike

_INFO = _core.confusion_info()
_KW = inspect.Parameter.KEYWORD_ONLY
_POS = inspect.Parameter.POSITIONAL_OR_KEYWORD
_SEGMENT_NAMES = ("offsets", "segment_ids", "num_segments")

_COUNTS_DOC = """Confusion counts per class: ``[tp, fp, tn, fn]`` (torchmetrics' ``stat_scores``
order; scikit-learn's ``multilabel_confusion_matrix`` holds the same numbers).

Tasks: ``"binary"`` (``y_true`` in [0, 1], >= 0.5 positive; ``y_pred`` scores of
the same shape, positive above ``threshold``; one class), ``"multiclass"``
(``y_true`` integer labels; ``y_pred`` class scores with C along ``axis``, whose
first maximum is the prediction, or integer predicted labels with
``num_classes``) and ``"multilabel"`` (``y_true`` in [0, 1] and ``y_pred``
scores of one shape, C classes along ``axis``, each class its own binary
problem).
"""

_CALL_DOC = """
Call form::

    value = {name}(y_true, y_pred, *, task="binary"{opts}, offsets=None, segment_ids=None, num_segments=None)

Options
-------
{options}
offsets, segment_ids, num_segments : optional
    Per-segment results in one call: ``offsets`` (CSR pointers, S + 1
    non-decreasing integers from 0 to the number of items: elements for the
    binary task, rows otherwise) or sorted ``segment_ids`` with
    ``num_segments`` give one result per segment, stacked along a first axis
    of S.

Returns
-------
{returns}

Bad input is a ValueError or TypeError naming the argument: labels outside
``[0, C)`` (not ``ignore_index``), targets outside [0, 1], NaN scores (a count
has no NaN to give), mismatched shapes, unknown options.

Streaming: ``{name}.accumulator(**options)`` gives a
:class:`fastloss.ConfusionAccumulator` (``update``, ``merge``, ``result``,
``counts``, ``state``) whose counts are integers: exact for any batch split
and merge order.
"""

_COUNTS_RETURNS = ("The counts, int64, shape ``(C, 4)`` (``(S, C, 4)`` with segments); C is 1 "
                   "for the binary task.")
_SCORE_RETURNS = ("A float64 NumPy scalar; an array of C scores with ``average=\"none\"``; "
                  "with segments, one of either per segment. A class whose denominator is 0 "
                  "scores ``zero_division``.")


def _options(takes_beta):
    opts = list(_INFO["options"])
    if takes_beta is not None:
        opts += [o for o in _INFO["score_options"] if takes_beta or o["name"] != "beta"]
    return opts


class ConfusionMetric(FunctionLike):
    """A metric of confusion counts: ``confusion_counts`` itself, or a score
    (precision, recall, F1, F-beta, specificity) of them. See the instance's
    docstring."""

    __slots__ = ("name", "score", "_takes_beta", "__dict__")
    __module__ = MODULE

    #: A metric: no gradient.
    is_metric = True

    def __init__(self, name, score=None, takes_beta=None, summary=""):
        self.name = name
        self.score = score
        self._takes_beta = takes_beta
        self._set_function_attrs()
        options = _options(takes_beta if score else None)
        head = _COUNTS_DOC if score is None else (
            f"{summary}\n\nOf the confusion counts (see ``fastloss.confusion_counts``), per class "
            "or averaged.\n")
        self.__doc__ = head + _CALL_DOC.format(
            name=name, opts=signature_suffix([o for o in options if o["name"] != "task"]),
            options=options_section(options),
            returns=_COUNTS_RETURNS if score is None else _SCORE_RETURNS)

    @property
    def options(self):
        """Every option with its default."""
        return {o["name"]: o["default"] for o in _options(self._takes_beta if self.score else None)}

    def _parameters(self, method="__call__"):
        params = [inspect.Parameter("y_true", _POS), inspect.Parameter("y_pred", _POS)]
        params += [inspect.Parameter(o["name"], _KW, default=o["default"])
                   for o in _options(self._takes_beta if self.score else None)]
        params += [inspect.Parameter(n, _KW, default=None) for n in _SEGMENT_NAMES]
        return params

    def __call__(self, y_true, y_pred, **options):
        return _core.confusion(self.name, self.score, y_true, y_pred, options)

    def from_counts(self, counts, **options):
        """The score of given counts (``(C, 4)`` or ``(S, C, 4)`` int64, as
        ``confusion_counts`` returns them), with the score options
        (``average``, ``zero_division``, ``beta``)."""
        if self.score is None:
            raise TypeError("confusion_counts.from_counts: the counts are the result already")
        return _core.confusion_score(self.name, self.score, counts, options)

    @property
    def accumulator(self):
        """``NAME.accumulator(num_segments=None, **options)``: a
        :class:`ConfusionAccumulator` of this metric with fixed options;
        ``NAME.accumulator.from_state(counts, num_segments=None, **options)``
        rebuilds one from its counts."""
        return _AccumulatorFactory(self)

    def __repr__(self):
        return f"<fastloss.{self.name}>"

    def __reduce__(self):
        return self.name  # the module attribute: the very same object


class ConfusionAccumulator:
    """Running confusion counts of one metric with fixed options.

    ``update(y_true, y_pred)`` (with ``offsets=`` or ``segment_ids=`` when made
    with ``num_segments=S``) adds a batch's counts; ``merge(other_or_iterable)``
    adds another's; ``result()`` is the metric of the counts so far (the counts
    themselves for ``confusion_counts``); ``counts`` / ``state()`` the int64
    counts (``(C, 4)``, or ``(S, C, 4)``), which add as integers
    (``metric.accumulator.from_state(counts)`` rebuilds one). Thread-safe;
    pickles as its counts.
    """

    __slots__ = ("metric", "options", "num_segments", "_resolved", "_counts", "_lock",
                 "__weakref__")

    def __init__(self, metric, num_segments=None, options=None):
        options = dict(options or {})
        where = f"{metric.name}.accumulator"
        if num_segments is not None:
            if isinstance(num_segments, bool) or not isinstance(num_segments, (int, np.integer)):
                raise TypeError(f"{where}: num_segments must be an int or None")
            if num_segments < 0:
                raise ValueError(f"{where}: num_segments must be >= 0, got {num_segments}")
            num_segments = int(num_segments)
        # Checked now as a call checks them (unknown keys, values, choices);
        # every option's value, defaults filled in, decides what merges.
        self._resolved = _core.confusion_options(metric.name, metric.score, options)
        self.metric = metric
        self.options = options
        self.num_segments = num_segments
        self._counts = None
        self._lock = threading.Lock()

    def _score_options(self):
        names = {o["name"] for o in _INFO["score_options"]}
        return {k: v for k, v in self.options.items() if k in names}

    def _count_options(self):
        names = {o["name"] for o in _INFO["options"]}
        return {k: v for k, v in self.options.items() if k in names}

    def update(self, y_true, y_pred, *, offsets=None, segment_ids=None):
        """Adds a batch's counts (checked as the metric's call checks them;
        nothing is added on error)."""
        options = self._count_options()
        if self.num_segments is None:
            if offsets is not None or segment_ids is not None:
                raise TypeError(f"{self.metric.name}.accumulator: offsets / segment_ids need an "
                                "accumulator made with num_segments=")
        else:
            if (offsets is None) == (segment_ids is None):
                raise TypeError(f"{self.metric.name}.accumulator: pass offsets= or segment_ids= "
                                "to update a segmented accumulator")
            if offsets is not None:
                options["offsets"] = offsets
            else:
                options["segment_ids"] = segment_ids
                options["num_segments"] = self.num_segments
        counts = _core.confusion(self.metric.name, None, y_true, y_pred, options)
        if self.num_segments is not None and counts.shape[0] != self.num_segments:
            raise ValueError(f"{self.metric.name}.accumulator: offsets give {counts.shape[0]} "
                             f"segments, the accumulator has {self.num_segments}")
        self._add(counts)

    def _add(self, counts):
        with self._lock:
            if self._counts is None:
                self._counts = counts.copy()
            elif self._counts.shape != counts.shape:
                raise ValueError(f"{self.metric.name}.accumulator: counts of shape "
                                 f"{counts.shape} do not add to {self._counts.shape} (another "
                                 "number of classes or segments)")
            else:
                self._counts += counts

    def merge(self, other):
        """Adds the counts of another accumulator of the same metric and
        options (or of each of an iterable of them). Returns self."""
        others = [other] if isinstance(other, ConfusionAccumulator) else list(other)
        for o in others:
            if not isinstance(o, ConfusionAccumulator):
                raise TypeError(f"merge takes ConfusionAccumulators, got {type(o).__name__}")
            if o.metric is not self.metric and o.metric.name != self.metric.name:
                raise ValueError(f"cannot merge a {o.metric.name} accumulator into a "
                                 f"{self.metric.name} one")
            if o._resolved != self._resolved or o.num_segments != self.num_segments:
                raise ValueError(f"{self.metric.name}.accumulator: cannot merge accumulators of "
                                 f"other options ({o.options!r} vs {self.options!r})")
            c = o.state()
            if c is not None:
                self._add(c)
        return self

    @property
    def counts(self):
        """The int64 counts so far (a copy), or None before any update."""
        with self._lock:
            return None if self._counts is None else self._counts.copy()

    def state(self):
        """The counts (int64; states of accumulators of one metric add)."""
        return self.counts

    def result(self):
        """The metric of the counts so far (NaN-free: an empty accumulator is
        a ValueError)."""
        counts = self.counts
        if counts is None:
            raise ValueError(f"{self.metric.name}.accumulator: no update yet")
        if self.metric.score is None:
            return counts
        return _core.confusion_score(self.metric.name, self.metric.score, counts,
                                     self._score_options())

    def reset(self):
        with self._lock:
            self._counts = None

    def copy(self):
        new = ConfusionAccumulator(self.metric, self.num_segments, self.options)
        c = self.counts
        if c is not None:
            new._counts = c
        return new

    __copy__ = copy

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        return (_from_state, (self.metric, self.counts, self.num_segments, self.options))

    def __repr__(self):
        return (f"<fastloss.ConfusionAccumulator {self.metric.name} "
                f"options={self.options!r}>")



class _AccumulatorFactory:
    """``metric.accumulator``: call it for a new accumulator; ``from_state``
    rebuilds one from counts."""

    __slots__ = ("metric",)

    def __init__(self, metric):
        self.metric = metric

    def __call__(self, num_segments=None, **options):
        return ConfusionAccumulator(self.metric, num_segments, options)

    def from_state(self, counts, num_segments=None, **options):
        """An accumulator of this metric holding ``counts`` (``state()``)."""
        return _from_state(self.metric, counts, num_segments, options)

    def __repr__(self):
        return f"<fastloss.{self.metric.name}.accumulator>"


def _from_state(metric, counts, num_segments, options):
    acc = ConfusionAccumulator(metric, num_segments, options)
    if counts is not None:
        c = np.array(counts, copy=True)
        if c.dtype.kind not in "iu":
            raise TypeError(f"{metric.name}.accumulator.from_state: counts must be integers, "
                            f"got {c.dtype}")
        c = c.astype(np.int64)
        if c.ndim not in (2, 3) or c.shape[-1] != 4 or np.any(c < 0):
            raise ValueError(f"{metric.name}.accumulator.from_state: counts must be a "
                             "non-negative int64 array of shape (C, 4) or (S, C, 4)")
        if (num_segments is None) != (c.ndim == 2) or (num_segments is not None and
                                                        c.shape[0] != num_segments):
            raise ValueError(f"{metric.name}.accumulator.from_state: counts of shape {c.shape} "
                             f"do not fit num_segments={num_segments}")
        acc._counts = c
    return acc


def _make():
    metrics = {"confusion_counts": ConfusionMetric("confusion_counts")}
    for row in _INFO["scores"]:
        metrics[row["name"]] = ConfusionMetric(row["name"], row["name"], row["takes_beta"],
                                               row["summary"])
    return metrics


#: The confusion metrics by name.
CONFUSION = _make()
