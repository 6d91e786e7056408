"""The layers of the package import downwards only: a static scan of every import statement,
lazy ones inside functions included (the package is read as text, nothing is imported)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_i2i"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False,
                     typing_only: bool = True) -> set[str]:
    """Every module named by an import statement anywhere in ``source`` (relative imports resolved;
    ``from m import x`` names both ``m`` and ``m.x``). Without ``typing_only``, imports under
    ``if TYPE_CHECKING:`` are left out (they never run)."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    base = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            prefix = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join(prefix + ([node.module] if node.module else []))
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return found


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph(*, typing_only: bool = False) -> dict[str, set[str]]:
    """``{module: package modules it imports}`` (imports of a module's attributes count for the module)."""
    modules = package_modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for m in imported_modules(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py",
                                  typing_only=typing_only):
            while m and m not in modules:
                m = m.rpartition(".")[0]
            if m and m not in (name, "pytest_i2i"):
                targets.add(m)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_scanner_sees_lazy_relative_and_typing_only_imports():
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from . import store\n"
        "if TYPE_CHECKING:\n"
        "    from pytest_i2i.metrics.registry import MetricSpec\n"
        "def f():\n"
        "    import pytest_i2i.generators.runner as runner\n"
        "    from ..backbones.factory import backbone\n"
    )
    everything = imported_modules(source, "pytest_i2i.cache.results")
    assert {"pytest_i2i.cache.store", "pytest_i2i.metrics.registry", "pytest_i2i.generators.runner",
            "pytest_i2i.backbones.factory"} <= everything
    assert "pytest_i2i.metrics.registry" not in imported_modules(source, "pytest_i2i.cache.results",
                                                                  typing_only=False)
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_cache_is_a_leaf_importing_no_backbone_generator_or_metric():
    files = sorted((PACKAGE / "cache").glob("*.py"))
    assert len(files) >= 5
    offending = {}
    for path in files:
        name = module_name(path)
        bad = sorted(m for m in imported_modules(path.read_text(encoding="utf-8"), name,
                                                 is_package=path.name == "__init__.py")
                     if m.startswith(("pytest_i2i.backbones", "pytest_i2i.generators", "pytest_i2i.metrics")))
        if bad:
            offending[name] = bad
    assert offending == {}


def test_backbone_registry_imports_none_of_its_registrants():
    path = PACKAGE / "backbones" / "registry.py"
    imported = {m for m in imported_modules(path.read_text(encoding="utf-8"), "pytest_i2i.backbones.registry")
                if m.startswith("pytest_i2i")}
    assert imported <= {"pytest_i2i.backbones.spec", "pytest_i2i.backbones.spec.BackboneSpec", "pytest_i2i.errors",
                        "pytest_i2i.errors.UnknownNameError"}


def test_no_import_cycles_in_the_layers_this_issue_untangled():
    """backbones (registry ⇄ builtin / clip / vit) and data (dataset ⇄ samples) had cycles; images,
    files and the checkpoint reader are the lowest layers and must never be part of one."""
    untangled = ("pytest_i2i.backbones", "pytest_i2i.data", "pytest_i2i.images", "pytest_i2i.files",
                 "pytest_i2i.checkpoint", "pytest_i2i.jsonsafe", "pytest_i2i.texts")
    found = [c for c in cycles(import_graph()) if any(m.startswith(untangled) for m in c)]
    assert found == []


@pytest.mark.parametrize("lower, higher", [
    ("pytest_i2i.images", ("pytest_i2i.cache", "pytest_i2i.backbones", "pytest_i2i.metrics",
                           "pytest_i2i.generators", "pytest_i2i.data")),
    ("pytest_i2i.files", ("pytest_i2i.",)),
    ("pytest_i2i.jsonsafe", ("pytest_i2i.",)),
    ("pytest_i2i.checkpoint", ("pytest_i2i.backbones", "pytest_i2i.generators", "pytest_i2i.metrics",
                               "pytest_i2i.cache")),
])
def test_low_layers_import_nothing_from_higher_ones(lower, higher):
    graph = import_graph(typing_only=True)
    bad = {m: sorted(t for t in targets if t.startswith(higher) and not t.startswith(lower + ".")
                     and t not in ("pytest_i2i.errors",))
           for m, targets in graph.items() if m == lower or m.startswith(lower + ".")}
    assert {m: t for m, t in bad.items() if t} == {}


def test_listing_backbones_imports_no_heavy_module():
    code = ("import sys\nfrom pytest_i2i.backbones.registry import list_backbones\n"
            "names = list_backbones()\nassert 'inception-fid' in names and 'clip-vit-b-32' in names, names\n"
            "print(','.join(m for m in ('torch', 'timm', 'open_clip', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
