"""The interactive viewer: one self-contained HTML page showing two meshes and the maps between them.

:func:`viewer_html` builds the page and :func:`write_viewer` writes it (atomically). The
page shows both meshes side by side with linked cameras (drag to turn, wheel to zoom), a
colour mode per radio button (parts, charts, the colour transfer, per-vertex fields such as
map quality), a legend naming each colour, and, for the vertex under the pointer, a marker
on it and on its match on the other mesh. It needs no network: three.js (0.170.0, MIT,
vendored in ``densemap/viz/static/three``) and the viewer's own script are inlined, the
meshes and per-vertex values travel as gzip-compressed, base64-encoded typed arrays
(positions quantised to 16 bits over the bounding box: 1/65535 of its size).

Tests and scripts drive the page through ``window.densemap`` (``ready``, ``pick(side,
vertex)`` returns the matched vertex, ``click(side, vertex)`` clicks where the vertex is on
the screen, ``setMode(mode)``) or its URL hash: ``view.html#pick=a:123,b:45&mode=charts``
clicks A's vertex 123, then B's vertex 45, when the scene is ready and writes one
``{"side", "vertex", "match", "x", "y"}`` per click as a JSON list into ``<pre
id="densemap-result">``; ``<body data-ready="1">`` says it is done
(:func:`densemap.viz.browser.load_page` reads both back from headless Chromium).
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from .._io import atomic_path
from ..mesh import Mesh
from ..parts import PartLabels, face_labels
from .palette import UNLABELLED_COLOR, part_colors, to_u8

__all__ = ["ViewerSide", "ViewerField", "viewer_html", "write_viewer", "THREE_VERSION"]

THREE_VERSION = "0.170.0"
_MISSING = 65535  # the quantised value of "no value here"


@dataclass(frozen=True)
class ViewerField:
    """A per-vertex scalar the viewer can colour by (one radio button, one colour bar).

    Attributes
    ----------
    key : str
        Its name in :attr:`ViewerSide.fields` and in the page's ``mode`` (``#mode=key``).
    label : str
        The button's text and the legend's title.
    caption : str
        What the colours show (the legend's text).
    short : str
        The value's name in the hover line.
    cmap : str
        A matplotlib colour map.
    lo, hi : float, optional
        The colour bar's range (default: 0 and the 95th percentile of both sides' values).
    ticks : (str, str, str), optional
        The labels of the bar's ends and middle (default: the numbers).
    missing : str, optional
        What grey means (vertices without a value).
    """

    key: str
    label: str
    caption: str
    short: str
    cmap: str = "viridis"
    lo: float | None = None
    hi: float | None = None
    ticks: tuple[str, str, str] | None = None
    missing: str | None = None


@dataclass(frozen=True)
class ViewerSide:
    """One mesh of the viewer and what it is coloured by.

    Attributes
    ----------
    mesh : Mesh
    label : str
        ``"A"`` or ``"B"`` (shown before the mesh's name).
    match : (V,) int
        The vertex of the other mesh each vertex maps to (``a_to_b.indices`` for A).
    parts, charts : PartLabels, optional
        Both sides' parts must have the same names (B's in A's order), and so must their charts.
    fields : dict of str -> (V,) float
        Per-vertex values by :attr:`ViewerField.key`; NaN where unknown.
    name : str, optional
        Shown in the caption (default: the mesh's file name).
    """

    mesh: Mesh
    label: str
    match: np.ndarray
    parts: PartLabels | None = None
    charts: PartLabels | None = None
    fields: dict = field(default_factory=dict)
    name: str | None = None

    @property
    def title(self) -> str:
        return self.name or Path(self.mesh.name).name


def _pack(a: np.ndarray) -> dict:
    """A typed array for the page: little-endian bytes, gzip (deterministic: mtime 0), base64."""
    a = np.ascontiguousarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    data = gzip.compress(a.tobytes(), compresslevel=6, mtime=0)
    return {"dtype": a.dtype.name, "length": int(a.size), "data": base64.b64encode(data).decode("ascii")}


def _index_dtype(n: int):
    return np.uint16 if n <= 65535 else np.uint32


def _positions(mesh: Mesh) -> tuple[dict, list]:
    v = mesh.vertices
    lo, hi = v.min(0), v.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.rint((v - lo) / span * 65535).clip(0, 65535).astype(np.uint16)
    return _pack(q.reshape(-1)), [lo.tolist(), hi.tolist()]


def _labels(mesh: Mesh, labels: PartLabels) -> tuple[dict, dict]:
    """(per-vertex, per-face) labels + 1 (0: unlabelled), the faces by the face-majority rule."""
    labels.check_mesh(mesh)
    dt = np.uint8 if labels.n_parts < 255 else np.uint16
    per_face = face_labels(mesh.faces, labels.labels)
    return _pack((labels.labels + 1).astype(dt)), _pack((per_face + 1).astype(dt))


def _field_range(spec: ViewerField, values: list[np.ndarray]) -> tuple[float, float]:
    allv = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
    lo = spec.lo if spec.lo is not None else 0.0
    hi = spec.hi if spec.hi is not None else (float(np.percentile(allv, 95)) if allv.size else 1.0)
    if not hi > lo:
        hi = lo + (abs(lo) if lo else 1.0)
    return float(lo), float(hi)


def _quantise(values: np.ndarray, lo: float, hi: float) -> dict:
    v = np.asarray(values, dtype=np.float64)
    q = np.rint((np.clip(v, lo, hi) - lo) / (hi - lo) * (_MISSING - 1))
    q = np.where(np.isfinite(v), q, _MISSING).astype(np.uint16)
    return _pack(q)


def _lut(cmap: str) -> list[int]:
    import matplotlib

    return to_u8(matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3]).reshape(-1).tolist()


def _legend(kind: str, singular: str, sides: Sequence[ViewerSide]) -> dict | None:
    present = [getattr(s, kind) for s in sides if getattr(s, kind) is not None]
    if not present:
        return None
    names = present[0].names
    for p in present[1:]:
        if tuple(p.names) != tuple(names):
            raise ValueError(f"the two meshes' {kind} must have the same names in the same order "
                             f"(renumber B's to A's first); got {list(names)[:3]}... and {list(p.names)[:3]}...")
    return {"names": list(names), "colors": to_u8(part_colors(names)).tolist(), "singular": singular}


def _check_side(side: ViewerSide, other: ViewerSide) -> None:
    m = np.asarray(side.match)
    if m.shape != (side.mesh.n_vertices,) or (m.size and m.dtype.kind not in "iu"):
        raise ValueError(f"{side.label}: match must be ({side.mesh.n_vertices},) vertex ids of {other.label}, "
                         f"got shape {m.shape} dtype {m.dtype}")
    if m.size and (m.min() < 0 or m.max() >= other.mesh.n_vertices):
        bad = int(np.flatnonzero((m < 0) | (m >= other.mesh.n_vertices))[0])
        raise ValueError(f"{side.label}: match[{bad}] = {int(m[bad])} but {other.label} has "
                         f"{other.mesh.n_vertices} vertices")
    for k, v in side.fields.items():
        if np.shape(v) != (side.mesh.n_vertices,):
            raise ValueError(f"{side.label}: field {k!r} must have shape ({side.mesh.n_vertices},), got {np.shape(v)}")


def _payload(a: ViewerSide, b: ViewerSide, fields: Sequence[ViewerField], title: str, subtitle: str) -> dict:
    _check_side(a, b)
    _check_side(b, a)
    legends = {k: lg for k, lg in (("parts", _legend("parts", "part", (a, b))),
                                   ("charts", _legend("charts", "chart", (a, b)))) if lg is not None}
    modes = []
    if "parts" in legends:
        modes.append({"key": "parts", "label": "Parts",
                      "caption": "The semantic parts of both meshes, each face coloured by its vertices' part."})
    if "charts" in legends:
        modes.append({"key": "charts", "label": "Charts",
                      "caption": "DensePose charts (I = 1..24), each face coloured by its chart; grey: no chart."})
    modes.append({"key": "transfer", "label": "Colour transfer",
                  "caption": "A coloured by position (x, y, z as red, green, blue); B with the colour of the A vertex "
                             "its map points to. A good map colours B like A, part for part."})
    field_meta = {}
    for spec in fields:
        vals = [np.asarray(s.fields[spec.key], dtype=np.float64) for s in (a, b) if spec.key in s.fields]
        if not vals:
            continue
        lo, hi = _field_range(spec, vals)
        ticks = spec.ticks or tuple(f"{t:.3g}" for t in (lo, (lo + hi) / 2, hi))
        finite = np.concatenate([v[np.isfinite(v)] for v in vals])
        below, above = bool((finite < lo).any()), bool((finite > hi).any())  # clipped to the bar's ends
        field_meta[spec.key] = {"lut": _lut(spec.cmap), "lo": lo, "hi": hi, "short": spec.short,
                                "tick_lo": ("\u2264 " if below else "") + ticks[0], "tick_mid": ticks[1],
                                "tick_hi": ("\u2265 " if above else "") + ticks[2], "missing": spec.missing,
                                "clipped": above}
        modes.append({"key": spec.key, "label": spec.label, "caption": spec.caption})
    sides = {}
    for key, s in (("a", a), ("b", b)):
        pos, bounds = _positions(s.mesh)
        d = {"label": s.label, "name": s.title, "n_vertices": s.mesh.n_vertices, "n_faces": s.mesh.n_faces,
             "positions": pos, "bounds": bounds, "faces": _pack(s.mesh.faces.astype(_index_dtype(s.mesh.n_vertices))
                                                                .reshape(-1)),
             "map": _pack(np.asarray(s.match).astype(_index_dtype((b if key == "a" else a).mesh.n_vertices))),
             "labels": {}, "face_labels": {}, "fields": {}}
        for kind in ("parts", "charts"):
            if getattr(s, kind) is not None:
                d["labels"][kind], d["face_labels"][kind] = _labels(s.mesh, getattr(s, kind))
        for k, meta in field_meta.items():
            if k in s.fields:
                d["fields"][k] = _quantise(s.fields[k], meta["lo"], meta["hi"])
        sides[key] = d
    from .._version import __version__

    return {"title": title, "subtitle": subtitle, "version": __version__, "modes": modes, "legends": legends,
            "fields": field_meta, "sides": sides, "unlabelled": to_u8(UNLABELLED_COLOR).tolist()}


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _module_url(source: str) -> str:
    """A ``data:`` URL holding a JavaScript module (what the URL parser would drop or cut, escaped)."""
    for ch, esc in (("%", "%25"), ("#", "%23"), ("\n", "%0A"), ("\r", "%0D"), ("\t", "%09")):
        source = source.replace(ch, esc)
    return "data:text/javascript;charset=utf-8," + source


def _script_text(text: str, what: str) -> str:
    if "</script" in text.lower() or "<!--" in text:
        raise ValueError(f"{what} cannot be inlined: it holds '</script' or '<!--'")
    return text


def _json_in_html(obj) -> str:
    # '<', '>' and '&' as JSON escapes: the text can never close the <script> element
    return json.dumps(obj, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="densemap {version}, three.js {three}">
<title>{title}</title>
<style>
{css}
</style>
<script type="importmap">{importmap}</script>
</head>
<body data-ready="0">
<header><h1>{title}</h1><p>{subtitle}</p></header>
<nav><span id="modes"></span><span class="sep">|</span>
<label><input id="link" type="checkbox" checked> link cameras</label>
<button id="reset" type="button">reset view</button></nav>
<main>
<figure><figcaption>{caption_a}</figcaption><canvas id="canvas-a"></canvas></figure>
<figure><figcaption>{caption_b}</figcaption><canvas id="canvas-b"></canvas></figure>
<aside id="legend"></aside>
</main>
<footer id="info">Loading the meshes...</footer>
<pre id="densemap-result" hidden></pre>
<script type="application/json" id="densemap-data">{data}</script>
<script type="module">
{viewer}
</script>
</body>
</html>
"""


def viewer_html(side_a: ViewerSide, side_b: ViewerSide, *, fields: Sequence[ViewerField] = (), title: str | None = None,
                subtitle: str | None = None) -> str:
    """The viewer page of two meshes and their maps, as one self-contained HTML document.

    Parameters
    ----------
    side_a, side_b : ViewerSide
        The meshes, their maps to each other, labels and per-vertex fields.
    fields : sequence of ViewerField
        The per-vertex fields to offer (those found on at least one side).
    title : str, optional
        Default: ``"A: <name> (V vertices) <-> B: <name> (V vertices)"``.
    subtitle : str, optional

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> from densemap.mesh import Mesh
    >>> tri = Mesh(np.eye(3), np.array([[0, 1, 2]]), name="tri.obj")
    >>> page = viewer_html(ViewerSide(tri, "A", np.array([0, 1, 2])), ViewerSide(tri, "B", np.array([2, 1, 0])))
    >>> "A: tri.obj (3 vertices)" in page, "http://" in page.split("<script")[0]
    (True, False)
    """
    if title is None:
        title = (f"A: {side_a.title} ({side_a.mesh.n_vertices:,} vertices) \u2194 "
                 f"B: {side_b.title} ({side_b.mesh.n_vertices:,} vertices)")
    subtitle = subtitle or ("Hover over a vertex to mark its match on the other mesh; click to pin it. Drag to turn "
                            "both meshes, scroll to zoom. Each mesh is centred and scaled to fit its panel.")
    data = _payload(side_a, side_b, fields, title, subtitle)
    three = _script_text(_static("three/three.module.min.js"), "three.js")
    controls = _script_text(_static("three/OrbitControls.js"), "OrbitControls")
    importmap = {"imports": {"three": _module_url(three),
                             "three/addons/controls/OrbitControls.js": _module_url(controls)}}
    esc = html.escape
    return _PAGE.format(
        version=esc(data["version"]), three=THREE_VERSION, title=esc(title), subtitle=esc(subtitle),
        css=_static("viewer.css"), importmap=json.dumps(importmap), data=_json_in_html(data),
        caption_a=esc(f"{side_a.label}: {side_a.title}"), caption_b=esc(f"{side_b.label}: {side_b.title}"),
        viewer=_script_text(_static("viewer.js"), "viewer.js"))


def write_viewer(path: str | os.PathLike, side_a: ViewerSide, side_b: ViewerSide, **options) -> Path:
    """Write :func:`viewer_html` to ``path`` (atomically); ``options`` as :func:`viewer_html`'s."""
    path = Path(path)
    page = viewer_html(side_a, side_b, **options)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
