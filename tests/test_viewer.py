"""The interactive viewer: the page's content, the per-vertex quality fields, the commands, and the page in a
real browser (headless Chromium: the scene loads, a click through the page's own handlers marks the match,
and the screenshot shows both meshes with their markers)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.spatial import cKDTree

from densemap.cli.main import main
from densemap.data import chimp_to_human_ground_truth, reference
from densemap.mapping.alignment import Alignment, load_alignment
from densemap.mapping.outputs import write_alignment_outputs
from densemap.mapping.prepare import AlignInputs
from densemap.mapping.vertex_map import VertexMap
from densemap.mapping.view import view_alignment, vertex_gt_error, vertex_round_trip, vertex_stretch
from densemap.mesh import Mesh, _write_obj
from densemap.surface import surface_positions
from densemap.viz.browser import find_chromium, load_page

from conftest import grid_mesh, icosphere, octant_parts

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "densemap" / "viz" / "static"


def _record(m: Mesh) -> dict:
    return {"name": m.name, "sha1": m.sha1, "n_vertices": m.n_vertices}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """The embedded human (A) and chimp (B) with maps from the ground truth (no aligner run: fast), saved."""
    h, c = reference("human"), reference("chimp")
    gf, gb = chimp_to_human_ground_truth()
    b_to_a = h.mesh.faces[gf, np.argmax(gb, 1)]
    a_to_b = cKDTree(surface_positions(h.mesh.vertices, h.mesh.faces, gf, gb)).query(h.mesh.vertices)[1]
    al = Alignment(a_to_b=VertexMap(a_to_b, np.zeros(len(a_to_b)), n_target=c.mesh.n_vertices),
                   b_to_a=VertexMap(b_to_a, np.zeros(len(b_to_a)), n_target=h.mesh.n_vertices),
                   part_names=h.parts.names, parts_a=h.parts, parts_b=c.parts,
                   metadata={"mesh_a": _record(h.mesh), "mesh_b": _record(c.mesh)})
    folder = tmp_path_factory.mktemp("align")
    al.save(folder / "alignment.npz")
    page = view_alignment(folder)
    return folder, page, load_alignment(folder / "alignment.npz")


def _payload(page: Path) -> dict:
    m = re.search(r'<script type="application/json" id="densemap-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(m.group(1))


def _unpack(p: dict) -> np.ndarray:
    a = np.frombuffer(gzip.decompress(base64.b64decode(p["data"])), dtype=np.dtype(p["dtype"]).newbyteorder("<"))
    assert a.size == p["length"]
    return a


# ----------------------------------------------------------------------------- the page


def test_page_is_one_self_contained_file(embedded):
    _, page, _ = embedded
    text = page.read_text()
    head_and_body = re.sub(r'<script type="importmap">.*?</script>', "", text, flags=re.S)
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)  # every script is inline
    assert not re.search(r"<link\b", text, re.I)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", head_and_body, re.I)
    assert not re.search(r"""\bfrom\s*["']https?://|import\s*\(\s*["']https?://|@import|url\(\s*["']?https?:""", text)
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', text, re.S).group(1))["imports"]
    assert set(imports) == {"three", "three/addons/controls/OrbitControls.js"}
    assert all(u.startswith("data:text/javascript") for u in imports.values())
    assert len(text) < 2_500_000  # 13k + 7k vertices and three.js: about 1.3 MB


def test_page_holds_both_meshes_and_maps(embedded):
    folder, page, al = embedded
    d = _payload(page)
    h, c = reference("human"), reference("chimp")
    for key, ref, vmap in (("a", h, al.a_to_b), ("b", c, al.b_to_a)):
        side = d["sides"][key]
        assert (side["n_vertices"], side["n_faces"]) == (ref.mesh.n_vertices, ref.mesh.n_faces)
        assert np.array_equal(_unpack(side["faces"]).reshape(-1, 3), ref.mesh.faces)
        assert np.array_equal(_unpack(side["map"]), vmap.indices)
        lo, hi = map(np.asarray, side["bounds"])
        pos = lo + _unpack(side["positions"]).reshape(-1, 3) / 65535 * (hi - lo)
        assert np.abs(pos - ref.mesh.vertices).max() <= (hi - lo).max() / 65535  # 16-bit quantisation
        assert np.array_equal(_unpack(side["labels"]["parts"]).astype(int) - 1, ref.parts.labels)
        assert np.array_equal(_unpack(side["labels"]["charts"]).astype(int) - 1, ref.charts.labels)
    assert [m["key"] for m in d["modes"]] == ["parts", "charts", "transfer", "stretch", "consistency", "gt_error"]
    assert "gt_error" in d["sides"]["b"]["fields"] and "gt_error" not in d["sides"]["a"]["fields"]
    assert d["legends"]["parts"]["names"] == list(h.parts.names) and len(d["legends"]["charts"]["names"]) == 24
    assert "reference human (13,380 vertices)" in d["title"] and "reference chimp (7,049 vertices)" in d["title"]


def test_vendored_three_js_is_the_recorded_release():
    readme = (STATIC / "three" / "README.md").read_text()
    for name in ("three.module.min.js", "OrbitControls.js", "LICENSE"):
        digest = hashlib.sha256((STATIC / "three" / name).read_bytes()).hexdigest()
        assert f"| `{name}` |" in readme and digest in readme, name
    assert "MIT License" in (STATIC / "three" / "LICENSE").read_text()


# ----------------------------------------------------------------------------- per-vertex quality


def test_stretch_is_zero_for_an_isometry_or_a_uniform_scaling_and_collapse_is_the_floor():
    g = grid_mesh(6)
    n = g.n_vertices
    same = VertexMap(np.arange(n), np.zeros(n))
    big = Mesh(g.vertices * 3.0, g.faces)
    assert np.abs(vertex_stretch(g, big, same)).max() < 1e-12  # scale-free
    one_point = VertexMap(np.zeros(n, int), np.zeros(n))
    assert np.allclose(vertex_stretch(g, g, one_point), -6.0)  # every edge collapsed: log2(1/64)


def test_stretch_of_an_anisotropic_map_has_the_analytic_mean():
    g = grid_mesh(3)  # 2 x 2 squares, each cut by the diagonal from (x, y) to (x + h, y + h)
    wide = Mesh(g.vertices * np.array([4.0, 1.0, 1.0]), g.faces)  # area x 4: lengths are divided by 2
    s = vertex_stretch(g, wide, VertexMap(np.arange(g.n_vertices), np.zeros(g.n_vertices)))
    # x edges: 4 / 2 (log2 1); y edges: 1 / 2 (log2 -1); diagonals: sqrt(17 / 2) / 2
    diag = np.log2(np.sqrt(17 / 2) / 2)
    assert s[0] == pytest.approx((1 - 1 + diag) / 3, abs=1e-12)  # corner (0, 0): x, y and a diagonal
    assert s[2] == pytest.approx(0.0, abs=1e-12)  # corner (1, 0): one x and one y edge
    assert s[4] == pytest.approx((2 - 2 + 2 * diag) / 6, abs=1e-12)  # the centre: 2 of each


def test_round_trip_and_ground_truth_error():
    s = icosphere(2)
    n = s.n_vertices
    perm = np.random.default_rng(0).permutation(n)
    there, back = VertexMap(perm, np.zeros(n)), VertexMap(np.argsort(perm), np.zeros(n))
    assert np.abs(vertex_round_trip(s, there, back)).max() == 0.0  # a bijection and its inverse
    to_zero = VertexMap(np.zeros(n, int), np.zeros(n))
    expect = np.linalg.norm(s.vertices - s.vertices[0], axis=1) / np.sqrt(s.area)
    assert np.allclose(vertex_round_trip(s, to_zero, VertexMap(np.zeros(n, int), np.zeros(n))), expect)
    assert vertex_gt_error(s, there, perm).max() == 0.0
    assert np.allclose(vertex_gt_error(s, to_zero, np.arange(n)), expect)


# ----------------------------------------------------------------------------- commands and the output set


def _obj(path, mesh, parts):
    face_lab = np.array([np.bincount(parts.labels[f], minlength=parts.n_parts).argmax() for f in mesh.faces])
    with open(path, "w") as fh:
        _write_obj(mesh, fh, groups=face_lab, group_names=parts.names)
    return path


def test_view_command_writes_the_page(embedded, tmp_path):
    folder, page, _ = embedded
    r = CliRunner().invoke(main, ["-q", "view", str(folder), "-o", str(tmp_path / "v.html")])
    assert r.exit_code == 0 and f"wrote {tmp_path / 'v.html'}" in r.output
    assert _payload(tmp_path / "v.html")["sides"] == _payload(page)["sides"]
    r = CliRunner().invoke(main, ["view", str(folder / "alignment.npz"), "-o", str(folder / "alignment.npz")])
    assert r.exit_code == 1 and "refusing to overwrite the input" in r.output


@pytest.mark.slow  # ~15 s on a busy 2-core machine: three align runs and four pages
def test_align_view_then_view_finds_the_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = icosphere(2)
    e = Mesh(s.vertices * np.array([1.0, 1.3, 0.8]), s.faces)
    _obj("a.obj", s, octant_parts(s))
    _obj("b.obj", e, octant_parts(e))
    r = CliRunner().invoke(main, ["align", "a.obj", "b.obj", "-o", "out", "--sources", "4", "--no-refine", "--no-render", "--view"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "view.html").is_file() and "view.html" in r.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["viewer"].endswith("view.html")
    d = _payload(tmp_path / "out" / "view.html")
    assert d["sides"]["a"]["name"] == "a.obj" and "charts" not in d["legends"]  # file meshes: no charts
    assert "gt_error" not in [m["key"] for m in d["modes"]]
    r = CliRunner().invoke(main, ["view", "out", "-o", "again.html"])
    assert r.exit_code == 0, r.output
    assert _payload(tmp_path / "again.html")["sides"] == d["sides"]
    # a later run without --view leaves no stale page behind (view.html belongs to the output set)
    r = CliRunner().invoke(main, ["align", "a.obj", "b.obj", "-o", "out", "--sources", "4", "--no-refine", "--no-render"])
    assert r.exit_code == 0 and not (tmp_path / "out" / "view.html").exists()
    # a mesh that moved: the error names the option that gives it
    (tmp_path / "a.obj").rename(tmp_path / "moved.obj")
    r = CliRunner().invoke(main, ["view", "out"])
    assert r.exit_code == 1 and "give it with --mesh-a" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["view", "out", "--mesh-a", "moved.obj"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["view", "out", "--mesh-a", "b.obj"])
    assert r.exit_code == 1 and "--mesh-a b.obj has sha1" in r.output


def test_embedded_meshes_are_known_by_their_hash_even_from_a_file():
    from densemap.data import data_path
    from densemap.mapping.view import _species
    from densemap.mesh import load_mesh

    assert _species(load_mesh(data_path("human.obj"))) == "human"  # a file copy: charts and ground truth apply
    assert _species(reference("chimp").mesh) == "chimp"
    moved = reference("chimp").mesh
    assert _species(Mesh(moved.vertices + 1e-3, moved.faces)) is None


def test_view_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(main, ["view", str(tmp_path)])
    assert r.exit_code == 1 and "no alignment.npz in this folder" in r.output and len(r.output.splitlines()) == 1
    (tmp_path / "alignment.npz").write_bytes(b"junk")
    r = CliRunner().invoke(main, ["view", str(tmp_path)])
    assert r.exit_code == 1 and "cannot read alignment" in r.output


def test_align_output_set_holds_the_page(tmp_path, embedded):
    _, _, al = embedded
    h, c = reference("human"), reference("chimp")
    inputs = AlignInputs(h.mesh, h.parts, c.mesh, c.parts, chimp_to_human_ground_truth())
    run = write_alignment_outputs(tmp_path / "out", inputs, al, {}, timings={}, render=False, view=True)
    assert (tmp_path / "out" / "view.html") in run.files and run.report["viewer"].endswith("view.html")
    assert "gt_error" in _payload(tmp_path / "out" / "view.html")["sides"]["b"]["fields"]


# ----------------------------------------------------------------------------- in a browser

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (apt-get install chromium)")


def _front_vertex(mesh: Mesh) -> int:
    # the vertex nearest the camera (on +z): nothing can hide it
    return int(np.argmax(mesh.vertices[:, 2]))


@needs_chromium
def test_browser_click_marks_the_match(embedded, tmp_path):
    folder, page, al = embedded
    va, vb = _front_vertex(reference("human").mesh), _front_vertex(reference("chimp").mesh)
    shot = tmp_path / "view.png"
    got = load_page(page, fragment=f"pick=b:{vb},a:{va}&mode=parts", screenshot=shot, size=(1200, 700))
    assert got.body_attribute("data-ready") == "1", got.element_text("densemap-result")
    results = json.loads(got.element_text("densemap-result"))
    assert [r["side"] for r in results] == ["b", "a"]
    # the click found the vertex at its place on the screen (to the pixel: events carry whole pixels, about
    # 1/500 of the mesh's height here), and the page marked the map's match of the vertex it found
    for r, target, mesh, vmap in ((results[0], vb, reference("chimp").mesh, al.b_to_a),
                                  (results[1], va, reference("human").mesh, al.a_to_b)):
        extent = np.ptp(mesh.vertices, axis=0).max()
        assert np.linalg.norm(mesh.vertices[r["vertex"]] - mesh.vertices[target]) < 0.01 * extent
        assert r["match"] == int(vmap.indices[r["vertex"]])
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(np.int64)
    assert img.shape[:2] == (700, 1200) and img.var() > 100  # not blank
    magenta = (img[..., 0] > 200) & (img[..., 1] < 90) & (img[..., 2] > 200)
    w = img.shape[1]
    # markers on both meshes: A's panel is the left part, B's the middle (the legend is on the right)
    assert magenta[:, : w * 2 // 5].sum() > 20 and magenta[:, w * 2 // 5 : w * 4 // 5].sum() > 20
    # the meshes are drawn in colour (the parts), not only the white background
    assert ((img.max(-1) - img.min(-1)) > 60).mean() > 0.05
