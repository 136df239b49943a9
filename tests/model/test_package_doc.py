"""The package docstring names every module of ``model`` (and of ``model.corpora``), so it stays a map."""

import pkgutil

import pytest

import model
import model.corpora


@pytest.mark.parametrize("package", [model, model.corpora], ids=["model", "model.corpora"])
def test_docstring_lists_every_module(package):
    modules = [m.name for m in pkgutil.iter_modules(package.__path__)]
    assert modules and [m for m in modules if f"``{m}``" not in package.__doc__] == []
