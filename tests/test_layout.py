"""The layout guard: no import cycle, the layers import only downwards, no module over 500 lines.

Imports are read from the source tree with ``ast`` (module-level and function-level ones
alike, so a cycle cannot hide behind a lazy import), with pyproject's package-dir mapping
(``annotation/`` is ``densemap.annotation``, ``cli/`` is ``densemap.cli``). Importing
``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``, so those count as imported too
(unless the importer lives inside them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
# source folder -> the package it installs as
PACKAGES = {"densemap": "densemap", "annotation": "densemap.annotation", "cli": "densemap.cli", "configs": "densemap_models.configs",
            "densemap_models": "densemap_models"}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer if _is_package(importer) else importer.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        base = base.rsplit(".", 1)[0]
    return f"{base}.{node.module}" if node.module else base


def _known(name: str) -> str | None:
    """The longest prefix of ``name`` that is one of our modules."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str) -> set[str]:
    """Our modules that module ``name`` imports (anywhere in its body)."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, node)
            targets.add(mod)
            targets |= {f"{mod}.{a.name}" for a in node.names}  # `from pkg import submodule`
    out = set()
    for t in targets:
        k = _known(t)
        if k is None:
            continue
        out.add(k)
        parts = k.split(".")
        for i in range(1, len(parts)):  # parent packages run their __init__ first
            parent = ".".join(parts[:i])
            if parent in MODULES and not (name == parent or name.startswith(parent + ".")):
                out.add(parent)
    out.discard(name)
    return out


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_nodes_from(MODULES)
    for name in MODULES:
        g.add_edges_from((name, t) for t in _imports(name))
    return g


def _layer(name: str) -> str:
    for prefix in ("densemap.annotation", "densemap.cli", "densemap_models", "densemap.synth"):
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return "densemap"


def test_the_reader_sees_the_package_dir_mapping(graph):
    # guards the guard: these edges exist in the code, so the graph must have them
    assert graph.has_edge("densemap.annotation.convert", "densemap.annotation.coco")
    assert graph.has_edge("densemap.cli.align", "densemap.mapping")
    assert graph.has_edge("densemap.synth.dataset", "densemap.annotation.coco")
    assert graph.has_edge("densemap_models.datasets", "densemap.annotation.coco")
    assert graph.has_edge("densemap.mapping.outputs", "densemap.viz")  # a function-level import
    assert len(MODULES) > 60


def test_no_import_cycle(graph):
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}; e.g. {nx.find_cycle(graph.subgraph(cycles[0]))}"


@pytest.mark.parametrize("rule", ["core", "annotation", "synth-only"])
def test_layers_import_only_downwards(graph, rule):
    bad = []
    for a, b in graph.edges:
        la, lb = _layer(a), _layer(b)
        if rule == "core" and la in ("densemap", "densemap.synth") and lb in ("densemap_models", "densemap.cli"):
            bad.append((a, b))  # the geometry core never imports the models or the CLI
        if rule == "annotation" and la == "densemap.annotation" and lb in ("densemap.synth", "densemap_models",
                                                                           "densemap.cli"):
            bad.append((a, b))  # annotations stand on the core only
        if rule == "synth-only" and la == "densemap" and lb == "densemap.annotation":
            bad.append((a, b))  # only synth/ (datasets) may use the annotation package
    assert not bad, f"{rule}: {bad}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {n} lines (at most {MAX_LINES})"


def test_cli_uses_public_library_names_only():
    private = []
    for name, path in MODULES.items():
        if not name.startswith("densemap.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level:
                private += [f"{name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    assert not private, f"the CLI reaches into private library names: {private}"


def test_every_package_is_installed():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {n for n in MODULES if _is_package(n)}
    assert packages == listed, f"pyproject's packages miss {sorted(packages - listed)} / list extra {sorted(listed - packages)}"
