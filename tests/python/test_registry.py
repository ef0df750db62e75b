"""The registry (one row per loss in the C++ core) and what is made from it:
the loss objects, their aliases, options, docstrings and the type stubs."""

import ast
import inspect
import pathlib
import re

import numpy as np
import pytest

import fastloss as fl
from fastloss import _core

PKG = pathlib.Path(fl.__file__).parent
NAMES = _core.loss_names()


def _stub_names(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return names


def _row(name):
    """The object of a registry row: fl.LOSSES[name], or fl.METRICS[name]
    for the rows marked FASTLOSS_METRIC."""
    return fl.METRICS[name] if _core.loss_info(name)["metric"] else fl.LOSSES[name]


def test_every_row_is_a_loss_object():
    assert NAMES and len(NAMES) == len(set(NAMES))
    metrics = [n for n in NAMES if _core.loss_info(n)["metric"]]
    assert metrics == ["binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"]
    assert list(fl.LOSSES) == [n for n in NAMES if n not in metrics]
    for name in NAMES:
        loss = getattr(fl, name)
        assert loss is _row(name)
        assert isinstance(loss, fl.Loss)
        assert isinstance(loss, fl.Metric) == (name in metrics) == loss.is_metric
        assert loss.name == name
        assert repr(loss) == f"<fastloss.{name}>"


def test_aliases_come_from_the_rows():
    expected = {}
    for name in NAMES:
        for alias in _core.loss_info(name)["aliases"]:
            expected[alias] = name
    assert fl.ALIASES == expected
    assert {"bce", "cce", "sparse_cce", "mean_squared_error", "mean_absolute_error"} <= set(expected)
    for alias, name in expected.items():
        assert getattr(fl, alias) is fl.LOSSES[name]
        assert alias in fl.__all__


@pytest.mark.parametrize("name", NAMES)
def test_info_describes_every_option(name):
    info = _core.loss_info(name)
    assert info["name"] == name
    assert info["driver"] in ("elementwise", "dense_rows", "label_rows", "regions", "boxes")
    assert info["summary"] and info["formula"]
    options = info["options"]
    assert [o["name"] for o in options] == list(_row(name).options)
    for o in options:
        assert o["doc"], f"{name}.{o['name']} has no doc line"
        assert _row(name).options[o["name"]] == o["default"] or (
            o["default"] is not None and np.isnan(o["default"]))
    # Elementwise rows fuse into combinations, except the metrics (no gradient).
    fusable = info["driver"] == "elementwise" and not info["metric"]
    assert info["fusable"] == fusable == _core.fusable(name)


@pytest.mark.parametrize("name", NAMES)
def test_docstring_lists_every_option_with_its_default(name):
    doc = _row(name).__doc__
    info = _core.loss_info(name)
    assert doc.startswith(info["summary"])
    for o in info["options"]:
        assert re.search(rf"^{o['name']} : .*, default ", doc, re.M), (name, o["name"])
        assert o["doc"].split()[0] in doc


@pytest.mark.parametrize("name", NAMES)
def test_defaults_are_the_cores(name):
    # A default written once: calling with every default spelled out gives
    # the same bits as calling with none.
    rng = np.random.default_rng(0)
    info = _core.loss_info(name)
    y, p = _inputs(info["driver"], rng)
    explicit = {o["name"]: o["default"] for o in info["options"]
                if not (o["name"] == "class_weights")}
    a = _row(name)(y, p)
    b = _row(name)(y, p, **explicit)
    assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def _inputs(driver, rng):
    if driver == "label_rows":
        return rng.integers(0, 5, 8), rng.standard_normal((8, 5))
    if driver == "boxes":
        xy = rng.uniform(0, 1, (6, 2))
        wh = rng.uniform(0.1, 1, (6, 2))
        b = np.concatenate([xy, xy + wh], 1)
        return b, b + rng.uniform(-0.05, 0.05, b.shape)
    return rng.uniform(0, 1, (8, 5)), rng.uniform(0.05, 0.95, (8, 5))


def test_stubs_list_every_public_name(tmp_path):
    # __init__.pyi is generated at build time from the registry
    # (python/fastloss/_stubs.py, run by CMake); an installed package carries
    # exactly what the generator makes of this _core.
    from fastloss import _stubs

    text = _stubs.render(_core)
    (tmp_path / "__init__.pyi").write_text(text)
    declared = _stub_names(tmp_path / "__init__.pyi")
    public = set(fl.__all__)
    missing = public - declared
    assert not missing, f"the stub lacks {sorted(missing)}"
    extra = {n for n in declared - public if not n.startswith("_")} - {
        "get_num_threads", "set_num_threads", "simd_target"}
    assert not extra, f"the stub declares {sorted(extra)} that fastloss does not export"
    assert set(_core.multi_loss_names()) == set(fl.OTHER_LOSSES)
    installed = PKG / "__init__.pyi"
    if installed.exists():  # an installed package (not the source tree)
        assert installed.read_text() == text


def test_core_stub_lists_the_module_functions():
    declared = _stub_names(PKG / "_core.pyi")
    for name, obj in vars(_core).items():
        if name.startswith("_") or not callable(obj):
            continue
        assert name in declared, f"_core.pyi lacks {name}"


def test_unknown_loss_is_a_value_error():
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        _core.loss_info("nope")
    with pytest.raises(ValueError, match="unknown loss"):
        _core.Loss("nope")


# --------------------------------------------------------------------------
# The losses of several inputs: the rows of FASTLOSS_MULTI_LOSSES.
# --------------------------------------------------------------------------

MULTI_NAMES = _core.multi_loss_names()

#: What the C++ options structs hold (regression.hpp, metric.hpp, ranking.hpp, adversarial.hpp).
CPP_OPTIONS = {
    "gaussian_nll": {"full": False, "eps": 1e-6},
    "cosine_embedding": {"margin": 0.0},
    "triplet_margin": {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "squared": False},
    "contrastive_pairs": {"margin": 1.0, "eps": 1e-6},
    "margin_ranking": {"margin": 0.0},
    "pairwise_ranking": {"margin": 1.0, "groups": None, "normalization": "all_pairs"},
    "gan_discriminator": {},
    "gan_generator": {"saturating": False},
    "wasserstein_critic": {},
    "wasserstein_generator": {},
    "gradient_penalty": {"target": 1.0},
    "l2_penalty": {"lam": 0.0},
}


def test_every_multi_row_is_a_loss_object():
    assert MULTI_NAMES == list(CPP_OPTIONS)
    assert not set(MULTI_NAMES) & set(NAMES)
    assert list(fl.OTHER_LOSSES) == MULTI_NAMES
    for name in MULTI_NAMES:
        loss = getattr(fl, name)
        assert loss is fl.OTHER_LOSSES[name] and loss.name == name and name in fl.__all__
        assert repr(loss) == f"<fastloss.{name}>"
        assert _core.loss_kind(name) == _core.loss_info(name)["driver"]


@pytest.mark.parametrize("name", MULTI_NAMES)
def test_multi_options_are_the_cpp_fields(name):
    info = _core.loss_info(name)
    assert info["name"] == name and info["summary"] and info["formula"]
    assert info["driver"] in ("rows", "elements", "pairs", "score_pair", "scores", "samples", "penalty")
    assert not info["fusable"] and not _core.fusable(name)
    options = info["options"]
    assert {o["name"]: o["default"] for o in options} == fl.OTHER_LOSSES[name].options == CPP_OPTIONS[name]
    for o in options:
        assert o["doc"], f"{name}.{o['name']} has no doc line"
    assert set(info["inputs"]) <= set(info["args"])
    assert info["target"] is None or (info["target"] in info["args"] and info["target"] not in info["inputs"])


@pytest.mark.parametrize("name", MULTI_NAMES)
def test_multi_signature_and_docstring_come_from_the_row(name):
    from fastloss import _docs

    loss = fl.OTHER_LOSSES[name]
    info = _core.loss_info(name)
    doc = loss.__doc__
    assert doc.startswith(info["summary"]) and info["formula"] in doc
    for o in info["options"]:
        required = o["name"] in info["args"]  # given positionally (l2_penalty's lam)
        assert re.search(rf"^{o['name']} : .*{'' if required else ', default '}", doc, re.M), (name, o["name"])
        assert o["doc"] in doc
    params = inspect.signature(loss).parameters
    assert tuple(params)[:len(info["args"])] == info["args"]
    if info["driver"] != "penalty":
        assert _docs.multi_signature(info) in doc
        for o in info["options"]:
            assert params[o["name"]].default == o["default"] or o["name"] in info["args"]
        assert ("weights" in params) == info["weights"]
        assert ("out" in inspect.signature(loss.grad).parameters) == info["out"]


def _multi_inputs(name, rng):
    info = _core.loss_info(name)
    kind = info["driver"]
    if kind == "penalty":
        return (rng.standard_normal((3, 4)),), {"lam": 0.5}
    if kind == "pairs":
        return (rng.integers(0, 3, 12).astype(float), rng.standard_normal(12)), {}
    shape = (6,) if kind == "elements" else (5, 4)
    arrays = {a: rng.standard_normal(shape) for a in info["inputs"]}
    if info["target"]:
        rows = shape if kind == "elements" else shape[:-1]
        y = rng.choice([-1.0, 1.0], rows) if name != "contrastive_pairs" else rng.integers(0, 2, rows) * 1.0
        arrays[info["target"]] = y
    if name == "gaussian_nll":
        arrays["var"] = np.abs(arrays["var"])  # a variance: >= 0
    return tuple(arrays[a] for a in info["args"]), {}


@pytest.mark.parametrize("name", MULTI_NAMES)
def test_multi_defaults_are_the_cores(name):
    # A default written once: calling with every default spelled out gives
    # the same bits as calling with none.
    loss = fl.OTHER_LOSSES[name]
    args, fixed = _multi_inputs(name, np.random.default_rng(1))
    explicit = {k: v for k, v in loss.options.items() if k not in fixed}
    def parts(r):
        return list(r) if isinstance(r, (tuple, list)) else [r]

    for method in (loss, loss.grad):
        a = parts(method(*args, **fixed))
        b = parts(method(*args, **fixed, **explicit))
        assert len(a) == len(b) >= 1, name
        for x, y in zip(a, b):
            assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True), name


@pytest.mark.parametrize("name", MULTI_NAMES)
def test_multi_unknown_option_is_a_type_error_naming_it(name):
    loss = fl.OTHER_LOSSES[name]
    args, fixed = _multi_inputs(name, np.random.default_rng(2))
    for method in (loss, loss.grad, loss.value_and_grad):
        with pytest.raises(TypeError, match=rf"^{name}\(\) got an unexpected keyword argument 'bogus_option'$"):
            method(*args, **fixed, bogus_option=1.0)


@pytest.mark.parametrize("name", MULTI_NAMES)
def test_multi_reduction_is_checked_by_the_core(name):
    loss = fl.OTHER_LOSSES[name]
    args, fixed = _multi_inputs(name, np.random.default_rng(3))
    if _core.loss_info(name)["reduction"]:
        with pytest.raises(ValueError, match=rf"^{name}: reduction must be 'mean', 'sum' or 'none', got 'avg'$"):
            loss(*args, reduction="avg")
        with pytest.raises(ValueError, match=rf"^{name}: reduction must be 'mean', 'sum' or 'none', got None$"):
            loss(*args, reduction=None)
    else:
        with pytest.raises(TypeError, match="unexpected keyword argument 'reduction'"):
            loss(*args, **fixed, reduction="mean")


def test_python_restates_no_multi_loss_or_default():
    # The multi-input losses' names, options and defaults live in the C++
    # rows only: the package's Python modules make the objects, signatures,
    # docstrings and stubs from _core.loss_info.
    from fastloss import _cuda_arrays, _cuda_losses, _docs, _structured, _stubs, cuda

    source = ""
    for module in (fl, _structured, _docs, _stubs, cuda, _cuda_losses, _cuda_arrays):
        source += pathlib.Path(module.__file__).read_text(encoding="utf-8")
    for name in MULTI_NAMES:
        assert re.search(rf"\b{name}\b", source) is None, name
    options = {o for opts in CPP_OPTIONS.values() for o in opts}
    for option in options:
        assert re.search(rf"""["']{option}["']\s*:|\b{option}=""", source) is None, option


def test_cli_version_and_list(capsys):
    """``fastloss --version`` and ``fastloss --list``: the version and every
    loss of both registry lists, with its options' defaults."""
    from fastloss.__main__ import main

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fastloss {fl.__version__} ") and fl.simd_target() in out
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == list(fl._core.loss_names()) + list(fl._core.multi_loss_names())
    huber = next(line for line in lines if line.startswith("huber "))
    assert "delta=1.0" in huber and "elementwise" in huber
    assert "(also mean_squared_error)" in next(line for line in lines if line.startswith("mse "))
