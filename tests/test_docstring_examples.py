"""Every ``>>>`` example in the package's docstrings runs and prints what it shows (as
torchmetrics runs its docstring examples); examples that need files or weights are marked
``# doctest: +SKIP`` where they stand."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import pytest_i2i


def _modules_with_examples() -> list[str]:
    names = [pytest_i2i.__name__] + [m.name for m in pkgutil.walk_packages(pytest_i2i.__path__, "pytest_i2i.")]
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            with open(spec.origin, encoding="utf-8") as f:
                if ">>>" in f.read():
                    found.append(name)
    return found


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    tests = finder.find(module, module_name)  # globals: a copy of the module's, as pytest --doctest-modules
    assert tests, f"{module_name} has '>>>' in its source but no example was found"
    for test in tests:
        runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
