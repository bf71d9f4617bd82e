"""The command line: help without torch, info, align end to end on tiny meshes, and its errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from densemap.cli.main import main
from densemap.mesh import Mesh, _write_obj, save_mesh

from conftest import icosphere, octant_parts


def test_help_does_not_import_torch():
    code = "import sys; from densemap.cli.main import main; " \
           "sys.argv=['densemap','--help']\ntry:\n main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "align" in out and out.strip().endswith("False")


def test_version():
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and "densemap, version" in r.output


def _grouped_obj(path, mesh, parts):
    face_lab = np.array([np.bincount(parts.labels[f], minlength=parts.n_parts).argmax() for f in mesh.faces])
    with open(path, "w") as fh:
        _write_obj(mesh, fh, groups=face_lab, group_names=parts.names)
    return path


def _ellipsoid(scale=(1.0, 1.3, 0.8)):
    s = icosphere(3)
    return Mesh(s.vertices * np.array(scale), s.faces, name="ellipsoid")


def test_align_two_obj_files_with_groups(tmp_path):
    a, b = icosphere(3), _ellipsoid()
    pa = _grouped_obj(tmp_path / "a.obj", a, octant_parts(a))
    pb = _grouped_obj(tmp_path / "b.obj", b, octant_parts(b))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["align", str(pa), str(pb), "-o", str(out), "--sources", "8", "--no-render"])
    assert r.exit_code == 0, r.output
    for name in ("alignment.npz", "descriptors_a.npy", "descriptors_b.npy", "report.json"):
        assert (out / name).is_file()
    rep = json.loads((out / "report.json").read_text())
    assert rep["quality"]["a_to_b"]["part_agreement"] == 1.0  # same-part matching is the default
    assert set(rep["timings_s"]) >= {"load", "descriptors", "match", "refine", "quality"}
    assert np.load(out / "descriptors_a.npy").shape == (a.n_vertices, 8)
    from densemap.mapping import load_alignment

    al = load_alignment(out / "alignment.npz")
    # an ellipsoid is a stretched sphere whose vertex i corresponds to the sphere's vertex i:
    # the mapped vertex must be within about one edge (0.1 rad on ico3) of it, on the sphere
    u = b.vertices[al.a_to_b.indices] / np.array([1.0, 1.3, 0.8])
    ang = np.arccos(np.clip((u / np.linalg.norm(u, axis=1, keepdims=True) * a.vertices).sum(1), -1, 1))
    print("mean angular error", ang.mean())
    assert ang.mean() < 0.1


def test_align_options_follow_the_library_defaults(tmp_path):
    """The help states the library's source count; --refine picks the method, none or --no-refine skips it."""
    from densemap.mapping.pipeline import DEFAULT_SOURCES

    r = CliRunner().invoke(main, ["align", "--help"])
    assert f"default: ({DEFAULT_SOURCES}," in " ".join(r.output.split())
    a = icosphere(2)
    pa = _grouped_obj(tmp_path / "a.obj", a, octant_parts(a))
    for flag, method in ((["--refine", "zoomout"], "zoomout"), (["--refine", "none"], False), (["--no-refine"], False),
                         ([], "consistent")):
        out = tmp_path / f"out{len(flag)}{method}"
        r = CliRunner().invoke(main, ["align", str(pa), str(pa), "-o", str(out), "--no-render", *flag])
        assert r.exit_code == 0, r.output
        opts = json.loads((out / "report.json").read_text())["options"]
        assert opts["refine"] == method, flag
        assert opts["descriptor_options"]["sources"] == DEFAULT_SOURCES


def _invoke(*args):
    return CliRunner().invoke(main, ["align", *map(str, args), "--no-render", "--sources", "4"])


def test_align_errors(tmp_path):
    a = icosphere(2)
    parts = octant_parts(a)
    good = _grouped_obj(tmp_path / "a.obj", a, parts)
    plain = save_mesh(a, tmp_path / "plain.obj")
    # missing file
    r = _invoke(tmp_path / "nope.obj", good)
    assert r.exit_code != 0 and "nope.obj: no such file" in r.output
    # no groups to read parts from
    r = _invoke(plain, good)
    assert r.exit_code != 0 and "has no 'g' or 'o' groups" in r.output
    # a PLY without --parts-a
    ply = save_mesh(a, tmp_path / "a.ply")
    r = _invoke(ply, good)
    assert r.exit_code != 0 and "give --parts-a" in r.output
    # mismatched part names
    renamed = _grouped_obj(tmp_path / "r.obj", a, parts.reorder(parts.names).__class__(parts.labels, [f"p{k}" for k in range(8)]))
    r = _invoke(good, renamed)
    assert r.exit_code != 0 and "part names differ" in r.output and "missing from" in r.output
    # a disconnected mesh
    two = Mesh(np.r_[a.vertices, a.vertices + 5], np.r_[a.faces, a.faces + a.n_vertices])
    twoparts = octant_parts(Mesh(two.vertices - np.r_[np.zeros((a.n_vertices, 3)), np.full((a.n_vertices, 3), 5.0)], two.faces))
    bad = _grouped_obj(tmp_path / "two.obj", two, twoparts)
    r = _invoke(good, bad)
    assert r.exit_code != 0 and "2 connected components" in r.output
    # no traceback; the error is one line, the last
    assert "Traceback" not in r.output and r.output.strip().splitlines()[-1].startswith("Error: ")
    assert "geodesic reduce" not in r.output  # refused before any geodesic work
    # one mesh only
    r = _invoke(good)
    assert r.exit_code != 0 and "give two meshes" in r.output
    # a library ValueError (no geodesic source per part) is one line too, not a traceback
    r = CliRunner().invoke(main, ["align", str(good), str(good), "--no-render", "--sources", "0"])
    assert r.exit_code == 1 and r.exception is None or isinstance(r.exception, SystemExit)
    assert r.output.strip().splitlines() == ["Error: sources per part must be a positive integer, got 0"]
    r = _invoke(good, good, "--landmark-rounds", "two")
    assert r.exit_code == 2 and "expected 'auto' or an integer >= 0, got 'two'" in r.output
    r = _invoke(good, good, "--rough-labels", "--refine", "zoomout")
    assert r.exit_code == 2 and "Invalid value for --rough-labels: needs the consistent refinement" in r.output


def _self_align(tmp_path, *flags):
    """``densemap align`` of an 8-part icosphere against itself with ``flags``: (CLI result, report)."""
    a = icosphere(2)
    good = _grouped_obj(tmp_path / "a.obj", a, octant_parts(a))
    out = tmp_path / ("_".join(flags) or "default")
    r = CliRunner().invoke(main, ["align", str(good), str(good), "--no-render", "--sources", "4", *flags,
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    # the mesh against itself: still the identity
    if "--no-refine" not in flags:
        assert np.array_equal(np.load(out / "alignment.npz")["b_to_a.indices"], np.arange(a.n_vertices))
    return r, json.loads((out / "report.json").read_text())


def test_align_rough_labels_reaches_the_refinement(tmp_path):
    for flag, rough in (("--rough-labels", True), ("--careful-labels", False), (None, False)):
        r, report = _self_align(tmp_path, *([flag] if flag else []))
        # clean labels (no islands) are careful unless the flag says otherwise
        assert report["rough_labels"] is rough and ("labels treated as rough" in r.output) == rough


def test_align_basis_flag_reaches_the_refinement(tmp_path):
    for flag, want in (("--plain-basis", {"area_match": False}), ("--area-matched-basis", {"area_match": True}),
                       (None, {})):
        assert _self_align(tmp_path, *([flag] if flag else []))[1]["options"]["refine_options"] == want
    good = tmp_path / "a.obj"  # the mesh _self_align wrote
    r = _invoke(good, good, "--plain-basis", "--refine", "zoomout")
    assert r.exit_code == 2 and "Invalid value for --area-matched-basis/--plain-basis: needs the consistent" in r.output


def test_info_on_a_file(tmp_path):
    a = icosphere(2)
    p = save_mesh(a, tmp_path / "a.obj")
    r = CliRunner().invoke(main, ["info", str(p), "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)[str(p)]
    assert st["vertices"] == a.n_vertices and st["components"] == 1 and st["closed_manifold"]


@pytest.mark.slow
def test_align_default_embedded_pair(tmp_path):
    r = CliRunner().invoke(main, ["align", "-o", str(tmp_path), "--no-render"])
    assert r.exit_code == 0, r.output
    q = json.loads((tmp_path / "report.json").read_text())["quality"]["b_to_a"]
    assert q["gt_error_mean"] <= 0.03 and q["part_agreement"] >= 0.97


def test_align_merges_a_stray_island_and_says_so(tmp_path):
    from densemap.mesh import load_mesh
    from densemap.parts import PartLabels, load_parts, save_parts

    a = icosphere(3)
    pa = _grouped_obj(tmp_path / "a.obj", a, octant_parts(a))
    clean = load_parts(pa, load_mesh(pa))
    lab = clean.labels.copy()
    adj = a.adjacency.tocsr()
    for v in np.flatnonzero(lab == 0):
        ring = np.r_[v, adj[v].indices]
        ring2 = np.unique(np.concatenate([adj[u].indices for u in ring]))
        if (lab[ring2] == 0).all():
            break
    lab[ring] = 7  # a one-ring patch of the opposite octant
    pb = save_parts(PartLabels(lab, clean.names), tmp_path / "b_parts.json")
    args = ["align", str(pa), str(pa), "--parts-b", str(pb), "--no-render", "--sources", "4"]
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert f"labels: B: 1 stray island ({len(ring)} vertices) merged into the parts around them" in r.output
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["islands_merged"]["b"]["islands"] == 1 and rep["islands_merged"]["a"]["islands"] == 0
    # labels with an island are taken for rough ones
    assert rep["rough_labels"] is True and "labels treated as rough" in r.output
    # merged, B's labels are A's again: the mesh maps to itself
    npz = np.load(tmp_path / "out" / "alignment.npz")
    assert np.array_equal(npz["b_to_a.indices"], np.arange(a.n_vertices))
    r = CliRunner().invoke(main, [*args, "--keep-islands", "--careful-labels", "-o", str(tmp_path / "kept")])
    assert r.exit_code == 0 and "stray island" not in r.output and "rough" not in r.output
    rep = json.loads((tmp_path / "kept" / "report.json").read_text())
    assert rep["islands_merged"]["b"]["islands"] == 0 and rep["rough_labels"] is False
    # kept, the island's vertices are sent into the other octant, far away
    b2a = np.load(tmp_path / "kept" / "alignment.npz")["b_to_a.indices"]
    assert (lab[b2a[ring]] == 7).all() and np.linalg.norm(a.vertices[b2a[ring]] - a.vertices[ring], axis=1).min() > 1


def test_align_match_flag_reaches_the_first_match(tmp_path):
    for flag, want in (("--plain-match", False), ("--standardized-match", True), (None, True)):
        assert _self_align(tmp_path, *([flag] if flag else []))[1]["options"]["standardize_parts"] is want
    # matching across parts has no part to standardise over: recorded as off
    report = _self_align(tmp_path, "--any-part", "--no-refine")[1]
    assert report["options"]["standardize_parts"] is False
