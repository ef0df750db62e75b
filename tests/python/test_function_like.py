"""Loss objects behave like functions (DESIGN.md, the Python API contract):
``__name__``, ``__qualname__``, ``__module__``, a real ``inspect.signature``
(of the object and of its methods), pickling and copying (by reference for the
losses of the ``fastloss`` namespace, by value for configured and combined
ones), joblib's process pool, scikit-learn's ``make_scorer``; and no loss
object without a registered name can be made (its C++ methods would crash):
the repros run in subprocesses, as a fuzzer would."""

import copy
import inspect
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss as fl

P = inspect.Parameter
KW = P.KEYWORD_ONLY
POS = P.POSITIONAL_OR_KEYWORD

ALIASES = {"mean_squared_error": "mse", "mean_absolute_error": "mae", "bce": "binary_cross_entropy",
           "cce": "categorical_cross_entropy", "sparse_cce": "sparse_categorical_cross_entropy"}
INPUTS = {"box_iou": ("boxes_true", "boxes_pred"), "contrastive": ("y_true", "distance")}
MULTI_ARGS = {
    "gaussian_nll": ("input", "target", "var"),
    "cosine_embedding": ("x1", "x2", "y"),
    "triplet_margin": ("anchor", "positive", "negative"),
    "contrastive_pairs": ("y_true", "x1", "x2"),
    "margin_ranking": ("x1", "x2", "y"),
    "pairwise_ranking": ("relevance", "scores"),
    "gan_discriminator": ("real_logits", "fake_logits"),
    "gan_generator": ("fake_logits",),
    "wasserstein_critic": ("real_scores", "fake_scores"),
    "wasserstein_generator": ("fake_scores",),
    "gradient_penalty": ("gradients",),
    "l2_penalty": ("arrays", "lam"),
}
GLOBALS = sorted(set(fl.LOSSES) | set(ALIASES) | set(fl.OTHER_LOSSES) | set(fl.METRICS))


def derived():
    """Configured and combined losses, with the names they report."""
    return [
        (fl.huber.with_options(delta=2.0), "huber"),
        (fl.dice.with_options(axis=1, smooth=0.5), "dice"),
        (fl.huber.with_options(delta=2.0).with_options(delta=3.0), "huber"),
        (0.5 * fl.mse + fl.mae, "0.5 * mse + 1 * mae"),
        (fl.mse - 0.25 * fl.huber.with_options(delta=2.0), "1 * mse - 0.25 * huber(delta=2.0)"),
        (fl.bce + fl.dice, "1 * binary_cross_entropy + 1 * dice"),
    ]


def regression(n=12, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return y.astype(dtype), (y + rng.normal(size=n)).astype(dtype)


# --------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", GLOBALS)
def test_function_attributes_of_the_namespace(name):
    loss = getattr(fl, name)
    canonical = ALIASES.get(name, name)
    assert loss.__name__ == canonical
    assert loss.__qualname__ == canonical
    assert loss.__module__ == "fastloss"
    assert getattr(sys.modules[loss.__module__], loss.__qualname__) is loss
    assert loss.name == canonical


def test_function_attributes_of_derived_losses():
    for loss, name in derived():
        assert loss.__name__ == name, loss
        assert loss.__qualname__ == name, loss
        assert loss.__module__ == "fastloss", loss


def test_class_attributes_are_the_classes():
    """The instance attributes do not hide the classes' own."""
    assert type(fl.mse).__name__ == "mse"
    assert type(fl.mse).__module__ == "fastloss"
    assert fl.Loss.__name__ == "Loss" and fl.Loss.__qualname__ == "Loss"
    for cls in (fl.Configured, fl.Combined, fl.MultiLoss):
        assert isinstance(cls.__name__, str) and isinstance(cls.__qualname__, str)
    assert fl.Configured.__module__ == "fastloss" and fl.Combined.__module__ == "fastloss"
    assert fl.Combined is getattr(fl, fl.Combined.__qualname__)
    # a descriptor on the class would make inspect.signature(cls) a TypeError
    for cls in (type(fl.mse), fl.Loss, fl.Configured, fl.Combined, fl.MultiLoss, type(fl.l2_penalty)):
        assert isinstance(inspect.signature(cls), inspect.Signature)


# --------------------------------------------------------------------------
# Signatures
# --------------------------------------------------------------------------


def expected_single(name, method):
    loss = fl.LOSSES[name]
    t, p = INPUTS.get(name, ("y_true", "y_pred"))
    params = [P(t, POS), P(p, POS), P("reduction", KW, default="mean"), P("weights", KW, default=None)]
    if method != "__call__":
        params.append(P("out", KW, default=None))
    if fl._core.loss_info(name)["driver"] == "label_rows":  # the rows' top-1 hits out
        params.append(P("hits", KW, default=None))
    params += [P(k, KW, default=v) for k, v in loss.options.items()]
    params += [P(k, KW, default=None) for k in ("offsets", "segment_ids", "num_segments")]
    return inspect.Signature(params)


@pytest.mark.parametrize("name", sorted(fl.LOSSES))
def test_signature_of_single_losses(name):
    loss = fl.LOSSES[name]
    assert inspect.signature(loss) == expected_single(name, "__call__")
    assert loss.__signature__ == expected_single(name, "__call__")
    assert str(inspect.signature(loss)).startswith("(" + ", ".join(INPUTS.get(name, ("y_true", "y_pred"))))
    first = 5 if "hits" in inspect.signature(loss).parameters else 4
    assert list(inspect.signature(loss).parameters)[first:-3] == list(loss.options)


def test_signature_of_an_alias():
    assert inspect.signature(fl.bce) == expected_single("binary_cross_entropy", "__call__")
    seg = ", offsets=None, segment_ids=None, num_segments=None"
    assert str(inspect.signature(fl.mse)) == "(y_true, y_pred, *, reduction='mean', weights=None" + seg + ")"
    assert str(inspect.signature(fl.huber)) == ("(y_true, y_pred, *, reduction='mean', weights=None, "
                                                "delta=1.0" + seg + ")")


@pytest.mark.parametrize("name", ["mse", "huber", "quantile", "binary_cross_entropy", "box_iou", "contrastive"])
def test_signature_binds_real_calls(name):
    """Every parameter of the signature is accepted by name, with its default."""
    loss = fl.LOSSES[name]
    rng = np.random.default_rng(1)
    if name == "box_iou":
        lo = rng.uniform(0, 1, (6, 2))
        t = np.concatenate([lo, lo + rng.uniform(0.5, 1, (6, 2))], axis=1)
        p = t + rng.uniform(-0.1, 0.1, t.shape)
    elif name in ("binary_cross_entropy", "contrastive"):
        t = (rng.random(10) < 0.5).astype(np.float64)
        p = rng.uniform(0.05, 0.95, 10)
    else:
        t, p = regression()
    for method in ("__call__", "grad", "value_and_grad"):
        f = loss if method == "__call__" else getattr(loss, method)
        sig = loss._signature(method)
        names = list(sig.parameters)
        kwargs = {names[0]: t, names[1]: p}
        kwargs.update({k: v.default for k, v in list(sig.parameters.items())[2:]})
        sig.bind(**kwargs)
        got = f(**kwargs)
        want = f(t, p)
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_array_equal(a, b)


def test_signature_of_multi_losses():
    tm = inspect.signature(fl.triplet_margin)
    assert str(tm) == ("(anchor, positive, negative, *, margin=1.0, p=2.0, eps=1e-06, swap=False, "
                       "squared=False, reduction='mean', weights=None, offsets=None, "
                       "segment_ids=None, num_segments=None)")
    assert inspect.signature(fl.triplet_margin.grad) == tm  # three gradients: no out=
    assert str(inspect.signature(fl.gan_generator)) == "(fake_logits, *, saturating=False, reduction='mean', weights=None)"
    assert str(inspect.signature(fl.gan_generator.grad)) == (
        "(fake_logits, *, saturating=False, reduction='mean', weights=None, out=None)")
    assert str(inspect.signature(fl.gan_generator.value_and_grad)) == str(inspect.signature(fl.gan_generator.grad))
    assert str(inspect.signature(fl.pairwise_ranking)) == (
        "(relevance, scores, *, margin=1.0, groups=None, normalization='all_pairs', reduction='mean')")
    assert str(inspect.signature(fl.l2_penalty)) == "(arrays, lam)"
    assert str(inspect.signature(fl.l2_penalty.grad)) == "(arrays, lam)"
    for name, args in MULTI_ARGS.items():
        loss = fl.OTHER_LOSSES[name]
        sig = inspect.signature(loss)
        assert tuple(sig.parameters)[:len(args)] == args, name
        assert all(sig.parameters[a].kind is POS for a in args), name
        if name != "l2_penalty":
            opts = {k: v.default for k, v in sig.parameters.items() if v.kind is KW}
            assert {k: opts[k] for k in loss.options} == loss.options, name


def test_signature_of_derived_losses():
    h = fl.huber.with_options(delta=2.0)
    seg = ", offsets=None, segment_ids=None, num_segments=None"
    assert str(inspect.signature(h)) == "(y_true, y_pred, *, reduction='mean', weights=None, delta=2.0" + seg + ")"
    assert str(inspect.signature(h.grad)) == ("(y_true, y_pred, *, reduction='mean', weights=None, out=None, "
                                              "delta=2.0" + seg + ")")
    assert str(inspect.signature(h.value_and_grad)) == str(inspect.signature(h.grad))
    d = fl.dice.with_options(axis=1)
    assert inspect.signature(d).parameters["axis"].default == 1
    assert inspect.signature(d).parameters["smooth"].default == fl.dice.options["smooth"]
    b = fl.box_iou.with_options(kind="giou")
    assert list(inspect.signature(b).parameters)[:2] == ["boxes_true", "boxes_pred"]
    c = 0.5 * fl.mse + fl.huber.with_options(delta=2.0)
    seg = ", offsets=None, segment_ids=None, num_segments=None"
    assert str(inspect.signature(c)) == "(y_true, y_pred, *, reduction='mean', weights=None" + seg + ")"
    assert str(inspect.signature(c.grad)) == ("(y_true, y_pred, *, reduction='mean', weights=None, "
                                              "out=None" + seg + ")")
    assert str(inspect.signature(c.value_and_grad)) == str(inspect.signature(c.grad))


def test_bound_methods_of_python_losses_stay_methods():
    for loss in (fl.triplet_margin, fl.huber.with_options(delta=2.0), fl.mse + fl.mae):
        g = loss.grad
        assert g.__self__ is loss and g.__name__ == "grad"
        assert g is loss.grad  # made once, kept
        assert g.__func__ is type(loss).grad
        assert "grad" in repr(g)
    y, p = regression()
    h = fl.huber.with_options(delta=2.0)
    np.testing.assert_array_equal(h.grad(y, p), fl.huber.grad(y, p, delta=2.0))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(h.grad))(y, p), h.grad(y, p))
    x = np.linspace(-2.0, 2.0, 7)
    for method in (fl.gan_generator.grad, fl.triplet_margin.value_and_grad, (fl.mse + fl.mae).grad):
        twin = pickle.loads(pickle.dumps(method))
        args = (x,) if method.__self__ is fl.gan_generator else (x, x[::-1]) if isinstance(method.__self__, fl.Combined) else (x, x + 1, x - 1)
        np.testing.assert_equal(twin(*args), method(*args))
    assert pickle.loads(pickle.dumps(fl.mse.grad)) == fl.mse.grad


# --------------------------------------------------------------------------
# Pickling and copying
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", GLOBALS)
def test_namespace_losses_pickle_and_copy_by_reference(name):
    loss = getattr(fl, name)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(loss, protocol)) is loss
    assert copy.copy(loss) is loss
    assert copy.deepcopy(loss) is loss
    assert copy.deepcopy([loss, {"k": loss}])[1]["k"] is loss


def same_results(a, b, y, p):
    np.testing.assert_array_equal(a(y, p), b(y, p))
    np.testing.assert_array_equal(a.grad(y, p), b.grad(y, p))
    np.testing.assert_array_equal(a(y, p, reduction="none"), b(y, p, reduction="none"))


def test_derived_losses_pickle_and_copy_by_value():
    rng = np.random.default_rng(3)
    y = (rng.random((4, 6)) < 0.5).astype(np.float64)
    p = rng.uniform(0.05, 0.95, (4, 6))
    for loss, name in derived():
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            for twin in (pickle.loads(pickle.dumps(loss, protocol)), copy.copy(loss), copy.deepcopy(loss)):
                assert type(twin) is type(loss) and twin is not loss
                assert repr(twin) == repr(loss) and twin.__name__ == name
                if isinstance(loss, fl.Configured):
                    assert twin.loss is loss.loss and twin.fixed == loss.fixed
                    assert twin.fixed is not loss.fixed
                else:
                    for (c1, t1), (c2, t2) in zip(twin.terms, loss.terms):
                        assert c1 == c2
                        # terms by reference, configured ones by value
                        if isinstance(t1, fl.Configured):
                            assert t1.loss is t2.loss and t1.fixed == t2.fixed
                        else:
                            assert t1 is t2
                np.testing.assert_array_equal(twin(y, p), loss(y, p))
                np.testing.assert_array_equal(twin.grad(y, p), loss.grad(y, p))


def test_other_core_loss_objects_pickle_by_value():
    y, p = regression()
    for loss in (fl.Loss("mse"), type(fl.huber)("huber")):
        assert loss is not getattr(fl, loss.name)
        for twin in (pickle.loads(pickle.dumps(loss)), copy.copy(loss), copy.deepcopy(loss)):
            assert type(twin) is type(loss) and twin is not loss and twin.name == loss.name
            same_results(twin, loss, y, p)


def test_pickles_name_the_public_module():
    """A pickle refers to fastloss.NAME, the place users know, not to a private module."""
    data = pickle.dumps(fl.triplet_margin, 0)
    assert b"fastloss" in data and b"triplet_margin" in data and b"_structured" not in data
    data = pickle.dumps(fl.huber.with_options(delta=2.0) + fl.mse, 0)
    assert b"_structured" not in data


# --------------------------------------------------------------------------
# joblib (processes) and scikit-learn
# --------------------------------------------------------------------------


def test_joblib_process_pool():
    joblib = pytest.importorskip("joblib")
    data = [regression(20, seed) for seed in range(4)]
    for loss in (fl.mse, fl.mean_absolute_error, fl.huber.with_options(delta=0.5), 0.5 * fl.mse + fl.mae):
        got = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(loss)(y, p) for y, p in data)
        assert got == [loss(y, p) for y, p in data]
        grads = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(loss.grad)(y, p) for y, p in data)
        for g, (y, p) in zip(grads, data):
            np.testing.assert_array_equal(g, loss.grad(y, p))
    rng = np.random.default_rng(5)
    trip = [tuple(rng.normal(size=(3, 4)) for _ in range(3)) for _ in range(3)]
    got = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(fl.triplet_margin)(*t) for t in trip)
    assert got == [fl.triplet_margin(*t) for t in trip]
    # the loss itself as a pickled argument
    got = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(_apply)(loss, *data[0]) for loss in (fl.mse, fl.mae))
    assert got == [fl.mse(*data[0]), fl.mae(*data[0])]


def _apply(loss, y, p):
    return loss(y, p)


def test_joblib_process_pool_bce():
    joblib = pytest.importorskip("joblib")
    rng = np.random.default_rng(6)
    data = [((rng.random(9) < 0.5).astype(np.float64), rng.uniform(0.05, 0.95, 9)) for _ in range(3)]
    got = joblib.Parallel(n_jobs=2)(joblib.delayed(fl.bce)(y, p) for y, p in data)
    assert got == [fl.bce(y, p) for y, p in data]


def test_sklearn_make_scorer():
    pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import make_scorer, mean_absolute_error, mean_squared_error
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.3, 60)
    for loss, reference in ((fl.mse, mean_squared_error), (fl.mae, mean_absolute_error)):
        scorer = make_scorer(loss, greater_is_better=False)
        assert loss.__name__ in repr(scorer)
        got = cross_val_score(LinearRegression(), X, y, cv=3, scoring=scorer)
        want = cross_val_score(LinearRegression(), X, y, cv=3,
                               scoring=make_scorer(reference, greater_is_better=False))
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert np.all(got < 0)
    combined = make_scorer(0.5 * fl.mse + 0.5 * fl.mae, greater_is_better=False)
    got = cross_val_score(LinearRegression(), X, y, cv=3, scoring=combined)
    want = cross_val_score(LinearRegression(), X, y, cv=3, scoring=make_scorer(
        lambda t, p: 0.5 * mean_squared_error(t, p) + 0.5 * mean_absolute_error(t, p), greater_is_better=False))
    np.testing.assert_allclose(got, want, rtol=1e-12)


# --------------------------------------------------------------------------
# No uninitialised loss object: the repros, each in its own process
# --------------------------------------------------------------------------

PRELUDE = """
import sys
import numpy as np
import fastloss as fl
y = np.ones(4); p = np.full(4, 0.5)
"""

# statements that must raise TypeError (before: a segmentation fault)
REFUSED = [
    "fl.Loss.__new__(fl.Loss)(y, p)",
    "repr(fl.Loss.__new__(fl.Loss))",
    "x = type(fl.mse).__new__(type(fl.mse)); repr(x)",
    "x = type(fl.mse).__new__(type(fl.mse)); x.name",
    "x = type(fl.mse).__new__(type(fl.mse)); x.grad(y, p)",
    "x = type(fl.mse).__new__(type(fl.mse)); x.value_and_grad(y, p)",
    "x = type(fl.mse).__new__(type(fl.mse)); x.options",
    "type(fl.huber).__new__(type(fl.huber))(y, p)",
    "fl.Loss()",
    "type(fl.mse)()",
    "fl.Loss.__new__(fl.Loss, 3)",
    "fl.Loss.__new__(fl.Loss, name=None)",
    "fl.Loss.__new__(fl.Loss, 'mse', 'mae')",
    "class L(fl.Loss): pass\nL.__new__(L)(y, p)",
    "class L(type(fl.mse)): pass\nL.__new__(L).grad(y, p)",
    "class L(fl.Loss):\n    def __init__(self): pass\nL()(y, p)",
    "x = fl.Loss.__new__(fl.Loss); x.__init__('mse'); x(y, p)",
    "import copy; copy.copy(fl.Loss.__new__(fl.Loss))",
    # a subclass's own __new__ that goes around fastloss.Loss.__new__
    "class L(fl.Loss):\n    def __new__(cls, *a):\n        return super(fl.Loss, cls).__new__(cls)\nL.__new__(L, 'mse')(y, p)",
    "class L(type(fl.mse)):\n    @staticmethod\n    def __new__(cls):\n        return fl._core.Loss.__new__(cls)\nrepr(L.__new__(L))",
    "class L(fl.Loss):\n    def __new__(cls):\n        return super(fl.Loss, cls).__new__(cls)\nclass M(L):\n    pass\nM.__new__(M).grad(y, p)",
]


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("stmt", REFUSED)
def test_uninitialised_loss_cannot_be_made(stmt):
    code = (PRELUDE + "try:\n" + textwrap.indent(stmt, "    ") + "\nexcept TypeError as e:\n"
            "    print('TypeError:', e)\n    sys.exit(0)\nsys.exit(3)  # no error\n")
    r = run_python(code)
    assert r.returncode == 0, (stmt, r.returncode, r.stdout, r.stderr)
    assert "TypeError:" in r.stdout


def test_made_losses_are_whole():
    """Every way that succeeds gives a loss that works; an unknown name is a
    ValueError; __init__ cannot change what a loss computes."""
    code = PRELUDE + textwrap.dedent("""
    a = fl.Loss.__new__(fl.Loss, "mse")   # made whole by __new__ alone
    assert a(y, p) == fl.mse(y, p) and repr(a) == "<fastloss.mse>"
    b = type(fl.huber).__new__(type(fl.huber), name="huber")
    assert b(y, p) == fl.huber(y, p)
    class L(fl.Loss):
        pass
    c = L("mae")
    assert c(y, p) == fl.mae(y, p) and c.__name__ == "mae"
    c.__init__("mse")                     # no re-initialisation
    assert c.name == "mae"
    fl.mse.__init__("mae")
    assert fl.mse.name == "mse"
    class N(fl.Loss):                     # a subclass's own __new__, done right
        def __new__(cls, name="huber"):
            return super().__new__(cls, name)
    assert N()(y, p) == fl.huber(y, p) and N("mse")(y, p) == fl.mse(y, p)
    assert N.__new__.__name__ == "__new__"
    try:
        fl.Loss("no_such_loss")
    except ValueError as e:
        assert "no_such_loss" in str(e)
    else:
        sys.exit(4)
    try:
        fl.Loss.__new__(fl.Loss, "no_such_loss")
    except ValueError:
        pass
    else:
        sys.exit(5)
    print("ok")
    """)
    r = run_python(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout, r.stderr)


def test_help_and_inspect_still_work():
    import pydoc

    for loss, text in ((fl.mse, "Mean squared error"), (fl.triplet_margin, "triplet_margin_loss"),
                       (fl.l2_penalty, "L2 penalty"), (fl.huber.with_options(delta=2.0), "Huber"),
                       (fl.mse + fl.mae, "weighted sum of losses")):
        assert text in pydoc.render_doc(loss, renderer=pydoc.plaintext), loss
        assert inspect.getmembers(loss)
    assert str(inspect.signature(fl.Loss)) == "(name)"
