"""The import graph of the three packages is a DAG, read from the source (nothing imported).

Every ``import`` statement counts, those inside functions too (a lazy import that closes a
cycle is still a cycle in the design). Checked at two grains: modules, and the layers of
``perceiver`` (its sub-packages and top-level modules), which must stack as
config <- modules <- adapters, decoders <- builders <- portable <- convert. ``perceiver``
never imports Ray, DeepSpeed or MLflow.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("perceiver", "preprocessing", "pipelines")
PERCEIVER_LAYERS = (
    "perceiver.config",
    "perceiver.modules",
    "perceiver.adapters",
    "perceiver.decoders",
    "perceiver.builders",
    "perceiver.portable",
    "perceiver.convert",
)


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the three packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(path: Path, module: str) -> Iterable[str]:
    """Every module name ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield name
            yield from (f"{name}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    files = module_files()
    return {
        module: {name for name in imported_names(path, module) if name in files} - {module}
        for module, path in files.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> str | None:
    return next(
        (lay for lay in PERCEIVER_LAYERS if module == lay or module.startswith(lay + ".")), None
    )


def test_the_graph_finds_a_planted_cycle():
    """The checker itself: a cycle through three modules is found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_every_package_was_read():
    edges = graph()
    for package in PACKAGES:
        assert sum(m.startswith(package + ".") for m in edges) >= 5, package
    assert "perceiver.builders" in edges["perceiver.portable"]


def test_modules_import_without_cycles():
    assert cycles(graph()) == []


def test_perceiver_layers_stack_without_cycles():
    layer_edges: dict[str, set[str]] = {layer: set() for layer in PERCEIVER_LAYERS}
    for module, targets in graph().items():
        source = layer_of(module)
        if source is None:
            continue
        layer_edges[source] |= {t for t in map(layer_of, targets) if t not in (None, source)}
    assert cycles(layer_edges) == []
    order = {layer: i for i, layer in enumerate(PERCEIVER_LAYERS)}
    upward = sorted(
        (source, target)
        for source, targets in layer_edges.items()
        for target in targets
        if order[target] > order[source]
    )
    assert upward == [], "a lower layer imports a higher one"


@pytest.mark.parametrize("engine", ["ray", "deepspeed", "mlflow"])
def test_perceiver_never_imports_the_engines(engine):
    files = module_files()
    offenders = [
        module
        for module, path in files.items()
        if module.startswith("perceiver")
        and any(n == engine or n.startswith(engine + ".") for n in imported_names(path, module))
    ]
    assert offenders == []
