"""The documentation site builds with ``mkdocs build --strict`` (broken links, missing
references and docstring warnings fail it), and its API reference has a page for every
public module listing every public class and function of that module with its signature."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.docs,
    pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
                       reason="mkdocs and mkdocstrings are not installed (pip install -e '.[docs]')"),
]


def _hooks():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _public_defs(path: Path) -> list[str]:
    """Classes and functions a module defines at top level and makes public (its ``__all__``
    when it has one, else every name without a leading underscore)."""
    tree = ast.parse(path.read_text())
    defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    exported = None
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and node.value is not None:
                try:
                    exported = set(ast.literal_eval(node.value))
                except ValueError:  # e.g. [*names, ...]: fall back to the underscore rule
                    exported = None
    return [d for d in defs if (d in exported if exported is not None else not d.startswith("_"))]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    # as in a clean checkout: the hook's source tree does not exist before the build
    shutil.rmtree(ROOT / "build" / "api-src", ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**__import__("os").environ,
                                                                            "NO_MKDOCS_2_WARNING": "1"})
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if re.match(r"(WARNING|ERROR)", line)]
    assert proc.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(problems or [proc.stderr[-3000:]])
    return out


def test_site_has_the_guides_and_notebooks(site):
    for page in ["index.html", "alignment/index.html", "training/index.html", "api/index.html",
                 "notebooks/align_and_convert/index.html", "notebooks/synth_train_eval/index.html",
                 "notebooks/pseudo_labels/index.html"]:
        assert (site / page).is_file(), page
    assert (site / "img" / "align_parts.png").is_file()
    nb = (site / "notebooks" / "align_and_convert" / "index.html").read_text()
    assert "data:image/png;base64" in nb and "densemap-table" in nb  # stored pictures and tables rendered


def test_api_reference_lists_every_public_class_and_function(site):
    missing = []
    for name, path in _hooks().public_modules().items():
        page = site / "api" / name / "index.html"
        assert page.is_file(), f"no API page for {name}"
        html = page.read_text()
        for obj in _public_defs(path):
            if name != "densemap" and f'id="{name}.{obj}"' not in html:
                missing.append(f"{name}.{obj}")
    assert not missing, f"not in the API reference: {missing}"
    quality = (site / "api" / "densemap.mapping.quality" / "index.html").read_text()
    # the signature and the numpydoc shapes are rendered
    assert "map_quality" in quality and "geodesic_sample" in quality and "(V_a,) int" in quality
