"""mkdocs hook: one API reference page per public module, generated at build time.

Every module of the installed packages whose dotted name has no part starting with ``_``
gets ``api/<dotted.name>.md`` (rendered by mkdocstrings from its numpydoc docstrings), and
``api/index.md`` lists them by package; the nav's "API reference" section is filled in the
same order. A module added to the source tree appears in the reference without editing
anything here. The command-line package is documented by ``densemap --help`` and the
README's command table, not here.
"""

from __future__ import annotations

import ast
import html
import re
import shutil
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent
# source folder -> the package it installs as (pyproject's package-dir)
SOURCES = {"densemap": "densemap", "annotation": "densemap.annotation", "densemap_models": "densemap_models"}
NAV_TITLE = "API reference"


def public_modules() -> dict[str, Path]:
    """Dotted name -> source file of every public module, sorted by name."""
    out = {}
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if any(p.startswith("_") for p in parts) or any(p.startswith("_") or p.startswith(".") for p in rel.parent.parts):
                continue
            out[".".join([package, *parts])] = path
    return dict(sorted(out.items()))


def group_of(name: str) -> str:
    """The nav section of a module: its package (``densemap`` for the flat core)."""
    parts = name.split(".")
    if parts[0] == "densemap_models":
        return "densemap_models"
    return "densemap" if len(parts) <= 2 and not _is_package(name) else ".".join(parts[:2])


def _is_package(name: str) -> bool:
    return public_modules()[name].name == "__init__.py"


def _summary(path: Path) -> str:
    """The first paragraph of a module's docstring, as Markdown (rST roles and literals made code)."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
    first = re.sub(r":\w+:`~?([^`]+)`", lambda m: f"`{m[1].rsplit('.', 1)[-1] if '~' in m[0] else m[1]}`", first)
    return re.sub(r"``([^`]+)``", r"`\1`", first)


def _groups() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name in public_modules():
        groups.setdefault(group_of(name), []).append(name)
    return groups


def page_path(name: str) -> str:
    return f"api/{name}.md"


def module_page(name: str) -> str:
    # densemap's own names are imported lazily from the modules that define them: documented there
    options = "\n    options:\n      members: false" if name == "densemap" else ""
    return f"# `{name}`\n\n::: {name}{options}\n"


STAGE = ROOT / "build" / "api-src"  # mkdocs.yml's mkdocstrings ``paths`` (build/ is git-ignored)


def source_tree() -> Path:
    """:data:`STAGE` laid out as the packages install (``densemap/annotation`` inside
    ``densemap/``), made of links to the sources, for mkdocstrings' static analysis.

    pyproject's package-dir installs ``annotation/`` as ``densemap.annotation``; griffe reads
    packages from folders, so it needs to see that folder inside ``densemap/``.
    """
    shutil.rmtree(STAGE, ignore_errors=True)
    (STAGE / "densemap").mkdir(parents=True)
    for child in (ROOT / "densemap").iterdir():
        if child.name != "__pycache__":
            (STAGE / "densemap" / child.name).symlink_to(child)
    for folder, package in SOURCES.items():
        if package != "densemap":
            (STAGE / Path(*package.split("."))).symlink_to(ROOT / folder)
    return STAGE


def index_page() -> str:
    mods = public_modules()
    lines = ["# API reference", "",
             "Generated from the numpydoc docstrings. Shapes come first in each parameter's type "
             "(`points : (n, 3) float`); options are keyword-only.", ""]
    for group, names in _groups().items():
        lines += [f"## {group}", "", "| module | what it holds |", "|---|---|"]
        lines += [f"| [`{n}`]({n}.md) | {_summary(mods[n])} |" for n in names]
        lines.append("")
    return "\n".join(lines)


# made when mkdocs loads this hook, before the plugins' configuration is checked: mkdocstrings
# drops a `paths` entry that does not exist yet, and a clean checkout would then document
# the installed packages, where densemap.annotation cannot be found by static analysis
source_tree()


def on_config(config, **kwargs):
    source_tree()
    section = ["api/index.md"] + [{g: [page_path(n) for n in names]} for g, names in _groups().items()]
    nav = [entry for entry in (config.nav or []) if not (isinstance(entry, dict) and NAV_TITLE in entry)]
    config.nav = nav + [{NAV_TITLE: section}]
    return config


def on_files(files, config, **kwargs):
    files.append(File.generated(config, "api/index.md", content=index_page()))
    for name in public_modules():
        files.append(File.generated(config, page_path(name), content=module_page(name)))
    return files


_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):<code>(~?)([A-Za-z_][\w.]*)(\(\))?</code>")


def _role_to_ref(match: re.Match, module: str) -> str:
    tilde, name, call = match.groups()
    shown = (name.rsplit(".", 1)[-1] if tilde else name) + (call or "")
    target = name if name.split(".")[0] in {"densemap", "densemap_models"} else f"{module}.{name}"
    return f'<autoref identifier="{html.escape(target)}" optional><code>{html.escape(shown)}</code></autoref>'


def on_page_content(html_text, page, **kwargs):
    src = page.file.src_uri
    if not (src.startswith("api/") and src != "api/index.md"):
        return html_text
    module = src[len("api/"):-len(".md")]
    return _ROLE.sub(lambda m: _role_to_ref(m, module), html_text)
