"""Writes fastloss's __init__.pyi from a built _core (run by CMake after the
extension is built): python stubgen.py CORE_PATH OUTPUT_PATH."""

import importlib.machinery
import importlib.util
import pathlib
import sys


def _load(name, path, loader=None):
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(core_path, out_path):
    core = _load("_core", core_path, importlib.machinery.ExtensionFileLoader("_core", core_path))
    stubs = _load("_fastloss_stubs", pathlib.Path(__file__).parent / "fastloss" / "_stubs.py")
    text = stubs.render(core)
    out = pathlib.Path(out_path)
    if not out.exists() or out.read_text() != text:
        out.write_text(text)


if __name__ == "__main__":
    main(*sys.argv[1:3])
