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


def test_every_row_is_a_loss_object():
    assert NAMES and len(NAMES) == len(set(NAMES))
    assert list(fl.LOSSES) == NAMES
    for name in NAMES:
        loss = getattr(fl, name)
        assert loss is fl.LOSSES[name]
        assert isinstance(loss, fl.Loss)
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
    assert [o["name"] for o in options] == list(fl.LOSSES[name].options)
    for o in options:
        assert o["doc"], f"{name}.{o['name']} has no doc line"
        assert fl.LOSSES[name].options[o["name"]] == o["default"] or (
            o["default"] is not None and np.isnan(o["default"]))
    assert info["fusable"] == (info["driver"] == "elementwise") == _core.fusable(name)


@pytest.mark.parametrize("name", NAMES)
def test_docstring_lists_every_option_with_its_default(name):
    doc = fl.LOSSES[name].__doc__
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
    a = fl.LOSSES[name](y, p)
    b = fl.LOSSES[name](y, p, **explicit)
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
    assert set(_stubs.MULTI) | {"l2_penalty"} == set(fl.OTHER_LOSSES)
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
