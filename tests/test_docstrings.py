"""Every docstring example in the layers runs, as a doctest, and prints what it says."""

import doctest
import importlib

import pytest

from emokeras.models.layers import __all__ as LAYERS

MODULES = sorted({importlib.import_module("emokeras.models.layers").__dict__[name].__module__ for name in LAYERS})


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module_name} has no runnable example"
    assert result.failed == 0
