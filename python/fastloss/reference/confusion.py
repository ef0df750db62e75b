"""Confusion counts and the scores made from them: the executable spec of
``fl.confusion_counts``, ``fl.precision``, ``fl.recall``, ``fl.f1_score``,
``fl.fbeta_score`` and ``fl.specificity``.

Plain NumPy, float64 for the scores, int64 for the counts; no import of the
compiled extension.

``confusion_counts(y_true, y_pred, task=..., ...)`` returns an int64 array
``(C, 4)`` whose columns are ``[tp, fp, tn, fn]`` of each class:

- ``task="binary"``: ``y_true`` in [0, 1] (``>= 0.5`` is positive) and
  ``y_pred`` scores of the same shape; one class (C = 1, the positive one).
  A prediction is positive where ``y_pred > threshold``, or, with
  ``from_logits``, where ``y_pred > log(threshold) - log1p(-threshold)``
  (``sigmoid(y_pred) > threshold``); the score is compared as the real number
  it is (a float32 score is widened to float64 first).
- ``task="multiclass"``: ``y_true`` integer labels; ``y_pred`` either class
  scores with C classes along ``axis`` (the prediction is the first maximum,
  ``np.argmax``) or integer predicted labels of ``y_true``'s shape (then
  ``num_classes`` gives C). A row counts once: tp for its class when the
  prediction is right, else fn for the true class and fp for the predicted
  one; tn of a class is every other counted row.
- ``task="multilabel"``: ``y_true`` in [0, 1] and ``y_pred`` scores of one
  shape, C classes along ``axis``; each class is its own binary problem.

``ignore_index`` drops the items whose target equals it (a label, or a
``y_true`` value for the binary and multilabel tasks; per element there).
Bad input raises: ``TypeError`` for non-integer labels, ``ValueError`` for
targets outside [0, 1], NaN scores, labels outside ``[0, C)``, mismatched
shapes, an unknown task or a ``num_classes`` that disagrees with the scores.

``score(counts, name, average="macro", beta=1.0, zero_division=0.0)``: the
score ``name`` (``precision``, ``recall``, ``f1_score``, ``fbeta_score``,
``specificity``) of counts ``(C, 4)`` (or ``(S, C, 4)``: one per segment),
following scikit-learn with ``labels=range(C)``:

- per class: precision ``tp / (tp + fp)``, recall ``tp / (tp + fn)``,
  F-beta ``(1 + b^2) tp / ((1 + b^2) tp + b^2 fn + fp)`` (F1: b = 1),
  specificity ``tn / (tn + fp)``; a zero denominator gives ``zero_division``;
- ``"none"``: the C per-class scores; ``"micro"``: the score of the counts
  summed over the classes; ``"macro"``: the mean of the per-class scores;
  ``"weighted"``: their mean weighted by the support ``tp + fn``. Macro and
  weighted leave NaN class scores out (``zero_division=nan``); a mean over
  nothing is NaN (macro) or ``zero_division`` (weighted: no support at all).
"""

import math

import numpy as np

TASKS = ("binary", "multiclass", "multilabel")
SCORES = ("precision", "recall", "f1_score", "fbeta_score", "specificity")
AVERAGES = ("macro", "micro", "weighted", "none")

#: Column of each count in the (C, 4) counts.
TP, FP, TN, FN = 0, 1, 2, 3


def _threshold(threshold, from_logits):
    t = float(threshold)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    if from_logits:
        with np.errstate(divide="ignore"):
            return float(np.log(t) - np.log1p(-t))
    return t


def _scores(x, name):
    """y_pred as float64 (a float array: integers are labels, not scores)."""
    x = np.asarray(x)
    if x.dtype.kind not in "f":
        raise TypeError(f"{name} must be a float array of scores, got {x.dtype}")
    return x.astype(np.float64)


def _no_nan(x, keep, name="y_pred"):
    """A NaN score of a counted item is an error (ignored items may hold any)."""
    bad = np.isnan(x) & keep
    if np.any(bad):
        raise ValueError(f"{name} is NaN at {tuple(np.argwhere(bad)[0])}")


def _targets01(y, ignore_index):
    """y_true in [0, 1] as float64 and the mask of the items it keeps."""
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise TypeError(f"y_true must be numeric, got {y.dtype}")
    y = y.astype(np.float64)
    keep = np.ones(y.shape, bool) if ignore_index is None else (y != float(ignore_index))
    bad = keep & ~((y >= 0.0) & (y <= 1.0))  # NaN is bad too
    if np.any(bad):
        raise ValueError(f"y_true must lie in [0, 1], found {y[bad][0]!r}")
    return y, keep


def _labels(y, name):
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer labels, got {y.dtype}")
    return y.astype(np.int64)


def _binary_counts(truth, pred):
    """[tp, fp, tn, fn] of boolean arrays."""
    return np.array([np.sum(truth & pred), np.sum(~truth & pred),
                     np.sum(~truth & ~pred), np.sum(truth & ~pred)], dtype=np.int64)


def confusion_counts(y_true, y_pred, task="binary", num_classes=None, threshold=0.5,
                     from_logits=False, ignore_index=None, axis=-1):
    """int64 counts ``(C, 4)``, columns ``[tp, fp, tn, fn]`` (see the module)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if num_classes is not None and num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    t = _threshold(threshold, from_logits)

    if task == "binary":
        x = _scores(y_pred, "y_pred")
        if np.shape(y_true) != x.shape:
            raise ValueError(f"y_true shape {np.shape(y_true)} != y_pred shape {x.shape}")
        y, keep = _targets01(y_true, ignore_index)
        _no_nan(x, keep)
        truth, pred = (y >= 0.5)[keep], (x > t)[keep]
        return _binary_counts(truth, pred)[None, :]

    if task == "multilabel":
        x = _scores(y_pred, "y_pred")
        if np.shape(y_true) != x.shape:
            raise ValueError(f"y_true shape {np.shape(y_true)} != y_pred shape {x.shape}")
        if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of range for y_pred of shape {x.shape}")
        C = x.shape[axis]
        if C == 0:
            raise ValueError("y_pred has no classes (C = 0)")
        if num_classes is not None and num_classes != C:
            raise ValueError(f"num_classes is {num_classes} but y_pred has {C} classes")
        y, keep = _targets01(y_true, ignore_index)
        _no_nan(x, keep)
        y, x, keep = (np.moveaxis(a, axis, -1).reshape(-1, C) for a in (y, x, keep))
        out = np.zeros((C, 4), np.int64)
        for c in range(C):
            k = keep[:, c]
            out[c] = _binary_counts((y[:, c] >= 0.5)[k], (x[:, c] > t)[k])
        return out

    # multiclass
    labels = _labels(y_true, "y_true")
    yp = np.asarray(y_pred)
    if yp.dtype.kind in "iu":  # predicted labels
        if yp.shape != labels.shape:
            raise ValueError(f"y_true shape {labels.shape} != y_pred shape {yp.shape}")
        if num_classes is None:
            raise ValueError("num_classes is required with predicted labels (y_pred)")
        C = int(num_classes)
        pred = yp.astype(np.int64).reshape(-1)
        scores = None
    else:
        x = _scores(yp, "y_pred")
        if x.ndim == 0 or not -x.ndim <= axis < x.ndim:
            raise ValueError(f"axis {axis} is out of range for y_pred of shape {x.shape}")
        x = np.moveaxis(x, axis, -1)
        if x.shape[:-1] != labels.shape:
            raise ValueError(f"y_true shape {labels.shape} != the rows of y_pred {x.shape[:-1]}")
        C = x.shape[-1]
        if C == 0:
            raise ValueError("y_pred has no classes (C = 0)")
        if num_classes is not None and num_classes != C:
            raise ValueError(f"num_classes is {num_classes} but y_pred has {C} classes")
        scores = x.reshape(-1, C)
        pred = None
    true = labels.reshape(-1)
    keep = np.ones(true.shape, bool) if ignore_index is None else true != ignore_index
    bad = keep & ((true < 0) | (true >= C))
    if np.any(bad):
        raise ValueError(f"y_true label {true[bad][0]} is outside [0, {C})")
    if pred is None:
        _no_nan(scores, keep[:, None])
        pred = np.argmax(scores, axis=-1) if scores.shape[0] else np.zeros(0, np.int64)
    else:
        badp = keep & ((pred < 0) | (pred >= C))
        if np.any(badp):
            raise ValueError(f"y_pred label {pred[badp][0]} is outside [0, {C})")
    true, pred = true[keep], pred[keep]
    out = np.zeros((C, 4), np.int64)
    for c in range(C):
        out[c] = _binary_counts(true == c, pred == c)
    return out


def _ratio(name, counts, beta, zero_division):
    """Per-class scores (float64, zero_division where the denominator is 0)."""
    tp, fp, tn, fn = (counts[..., k].astype(np.float64) for k in (TP, FP, TN, FN))
    if name == "precision":
        num, den = tp, tp + fp
    elif name == "recall":
        num, den = tp, tp + fn
    elif name in ("f1_score", "fbeta_score"):
        b2 = 1.0 if name == "f1_score" else float(beta) ** 2
        num = (1.0 + b2) * tp
        den = num + b2 * fn + fp
    elif name == "specificity":
        num, den = tn, tn + fp
    else:
        raise ValueError(f"unknown score {name!r}")
    with np.errstate(all="ignore"):
        return np.where(den == 0, float(zero_division), num / np.where(den == 0, 1.0, den))


def _score_one(counts, name, average, beta, zero_division):
    if average == "none":
        return _ratio(name, counts, beta, zero_division)
    if average == "micro" or len(counts) == 1:  # one class: every average is its score
        return float(_ratio(name, counts.sum(axis=0), beta, zero_division))
    r = _ratio(name, counts, beta, zero_division)
    w = np.ones(len(r)) if average == "macro" else (counts[:, TP] + counts[:, FN]).astype(float)
    # the (weighted) mean over the classes in class order, NaN scores left
    # out; supports that are all 0 give the plain mean (scikit-learn's
    # _nanaverage)
    total = weight = plain = 0.0
    kept = 0
    for wc, rv in zip(w, r):
        if not math.isnan(rv):
            total += wc * rv
            weight += wc
            plain += rv
            kept += 1
    if kept == 0:
        return math.nan
    return total / weight if weight > 0 else plain / kept


def score(counts, name, average="macro", beta=1.0, zero_division=0.0):
    """The score ``name`` of ``counts`` ((C, 4), or (S, C, 4): one per
    segment): a float, or an array of C with ``average="none"``."""
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    if name not in SCORES:
        raise ValueError(f"unknown score {name!r}")
    if name == "fbeta_score" and not (math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim == 3:
        return np.array([score(c, name, average, beta, zero_division) for c in counts])
    if counts.ndim != 2 or counts.shape[-1] != 4:
        raise ValueError("counts must have shape (C, 4) or (S, C, 4)")
    return _score_one(counts, name, average, beta, zero_division)


def metric(name, y_true, y_pred, average="macro", beta=1.0, zero_division=0.0, **options):
    """``fl.NAME(y_true, y_pred, ...)`` in the reference: the counts for
    ``confusion_counts``, else ``score(confusion_counts(...), NAME, ...)``."""
    counts = confusion_counts(y_true, y_pred, **options)
    if name == "confusion_counts":
        return counts
    return score(counts, name, average, beta, zero_division)
