"""The package's layering (README "Layout"): import-linter contracts in pyproject.toml, no import
cycles anywhere in the project's own packages, and every module assigned to a layer."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

import watershop_dagster

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("watershop_dagster", "assets", "resources")


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_import_linter_contracts_are_kept(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Groups of modules that import each other (directly or around a loop): Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:  # the graph is small (~60 modules): recursion is fine
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while (member := stack.pop()) != module:
                on_stack.discard(member)
                group.append(member)
            on_stack.discard(module)
            groups.append([module, *group])

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return [sorted(group) for group in groups if len(group) > 1]


def test_strongly_connected_finds_a_cycle():
    graph = grimp.ImportGraph()
    for a, b in (("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")):
        graph.add_import(importer=a, imported=b)
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    # Imports inside functions and under TYPE_CHECKING count too: a cycle is a cycle.
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert strongly_connected(graph) == []


def test_every_module_belongs_to_a_layer():
    """A new top-level module must be placed in the contracts (domain or app), or it goes unchecked."""
    layers, forbidden = _contracts()
    app = {name.strip() for name in layers["layers"][0].split(":")}
    domain = set(forbidden["source_modules"])
    assert app == set(forbidden["forbidden_modules"]) - {"assets", "resources"}
    top_level = {f"watershop_dagster.{info.name}" for info in pkgutil.iter_modules(watershop_dagster.__path__)}
    assert top_level == app | domain


def test_only_public_dagster_api():
    """`dagster._core` and other private modules change without notice between releases."""
    private = [f"{path.relative_to(ROOT)}:{number}" for package in PACKAGES
               for path in (ROOT / package).rglob("*.py")
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if ("import dagster._" in line or "from dagster._" in line or "from dagster_dbt._" in line)]
    assert private == []
