"""`densemap charts` and the carried-then-relaxed atlases: formats by suffix, fold-free relaxation."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import grid_mesh, icosphere, octant_parts
from densemap.charts import build_atlas, load_atlas
from densemap.charts.make import make_charts
from densemap.charts.relax import carry_atlas, chart_report, relax_atlas
from densemap.cli.main import main
from densemap.mapping import VertexMap
from densemap.mesh import load_mesh
from densemap.parts import PartLabels


def _one_chart_grid(n=9):
    mesh = grid_mesh(n)
    return mesh, build_atlas(mesh, PartLabels(np.zeros(mesh.n_vertices, int), ["all"]))


def test_carry_through_the_identity_gives_the_reference_atlas_back():
    mesh, atlas = _one_chart_grid()
    same = VertexMap(np.arange(mesh.n_vertices), np.zeros(mesh.n_vertices), n_target=mesh.n_vertices)
    carried, weight = carry_atlas(atlas, mesh, same)
    np.testing.assert_allclose(carried.uv, atlas.uv, atol=1e-12)
    assert np.array_equal(carried.charts, atlas.charts) and (weight == 1).all()
    relaxed = relax_atlas(mesh, carried, weight)
    assert relaxed.distortion["after"]["flipped"] == 0
    # already fold-free: relaxing moves the coordinates only a little
    assert np.abs(relaxed.uv - atlas.uv).max() < 0.1


def test_relaxing_a_folded_carried_atlas_leaves_no_flipped_triangle_and_uv_in_the_unit_square():
    mesh, atlas = _one_chart_grid(11)
    rng = np.random.default_rng(0)
    idx = np.arange(mesh.n_vertices)
    inner = np.flatnonzero((np.abs(mesh.vertices[:, :2] - 0.5) < 0.4).all(axis=1))
    swap = rng.choice(inner, 24, replace=False)
    idx[swap] = idx[np.roll(swap, 1)]  # a map that folds: 24 vertices sent to each other's places
    carried, weight = carry_atlas(atlas, mesh, VertexMap(idx, np.zeros(len(idx)), n_target=mesh.n_vertices))
    before = chart_report(mesh, carried)
    assert before["flipped"] + before["degenerate"] > 0
    relaxed = relax_atlas(mesh, carried, weight)
    after = chart_report(mesh, relaxed)
    assert after["flipped"] == 0 and after["degenerate"] == 0
    assert relaxed.uv.min() >= 0 and relaxed.uv.max() <= 1
    assert relaxed.distortion["before"]["flipped"] == before["flipped"]
    # close to the carried coordinates where they were right (the untouched border)
    border = ~np.isin(mesh.faces, inner).any(axis=1)
    assert np.median(np.abs(relaxed.uv[border] - carried.uv[border])) < 0.05


@pytest.mark.parametrize("suffix", [".npz", ".mat", ".obj"])
def test_charts_cli_writes_the_format_of_the_suffix_and_it_reads_back(tmp_path, suffix):
    from densemap.mesh import save_mesh
    from densemap.parts import save_parts

    mesh = icosphere(2)
    parts = octant_parts(mesh)
    save_mesh(mesh, tmp_path / "s.obj")
    save_parts(parts, tmp_path / "p.json")
    mesh = load_mesh(tmp_path / "s.obj")  # as the command reads it
    out = tmp_path / f"atlas{suffix}"
    r = CliRunner().invoke(main, ["charts", str(tmp_path / "s.obj"), "--parts", str(tmp_path / "p.json"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "8 charts by flatten" in r.output and "flipped 0.00%" in r.output
    back = load_atlas(out, mesh)
    assert back.n_charts == 8 and back.n_faces == mesh.n_faces
    loc = back.locate(*back.chart_coords(np.arange(back.n_faces), np.full((back.n_faces, 3), 1 / 3)))
    assert (loc.face == np.arange(back.n_faces)).all()  # every face's centre finds its own face
    assert chart_report(mesh, back)["flipped"] == 0


def test_charts_cli_ply_and_errors(tmp_path):
    from densemap.mesh import save_mesh
    from densemap.parts import load_parts, save_parts

    mesh = icosphere(2)
    parts = octant_parts(mesh)
    save_mesh(mesh, tmp_path / "s.obj")
    save_parts(parts, tmp_path / "p.json")
    mesh = load_mesh(tmp_path / "s.obj")
    out = tmp_path / "a.ply"
    r = CliRunner().invoke(main, ["charts", str(tmp_path / "s.obj"), "--parts", str(tmp_path / "p.json"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert (load_parts(out, mesh, field="part").reorder(parts.names).labels == parts.labels).all()
    r = CliRunner().invoke(main, ["charts", str(tmp_path / "s.obj"), "-o", str(tmp_path / "a.npz")])
    assert r.exit_code == 1 and "--parts" in r.output
    r = CliRunner().invoke(main, ["charts", str(tmp_path / "s.obj"), "--parts", str(tmp_path / "p.json"),
                                  "-o", str(tmp_path / "a.xyz")])
    assert r.exit_code == 1 and "unsupported atlas format" in r.output
    r = CliRunner().invoke(main, ["charts", str(tmp_path / "s.obj"), "--method", "transfer", "-o", str(tmp_path / "b.npz")])
    assert r.exit_code == 1 and "--from" in r.output


def test_make_charts_transfer_from_an_alignment_of_a_mesh_with_itself(tmp_path):
    from densemap.mapping import Alignment

    mesh = icosphere(2)
    parts = octant_parts(mesh)
    ref_atlas = build_atlas(mesh, parts)
    from densemap.charts import save_atlas

    save_atlas(ref_atlas, tmp_path / "ref.npz")
    n = mesh.n_vertices
    same = VertexMap(np.arange(n), np.zeros(n), n_target=n)
    Alignment(a_to_b=same, b_to_a=same).save(tmp_path / "al.npz")
    run = make_charts(mesh, tmp_path / "out.npz", method="transfer", reference=tmp_path / "ref.npz",
                      alignment=tmp_path / "al.npz")
    assert run.report["before"]["flipped"] == 0 and run.report["distortion"]["flipped"] == 0
    assert np.array_equal(run.atlas.charts, ref_atlas.charts)
    assert load_atlas(tmp_path / "out.npz", mesh).n_charts == 8


def test_charts_cli_rewrites_an_atlas_in_another_format(tmp_path):
    from densemap.charts import load_uv_processed, save_atlas
    from densemap.mesh import save_mesh

    save_mesh(icosphere(2), tmp_path / "s.obj")
    mesh = load_mesh(tmp_path / "s.obj")
    atlas = build_atlas(mesh, octant_parts(mesh))
    save_atlas(atlas, tmp_path / "a.npz")
    r = CliRunner().invoke(main, ["charts", str(tmp_path / "s.obj"), "--atlas", str(tmp_path / "a.npz"),
                                  "-o", str(tmp_path / "UV_Processed.mat")])
    assert r.exit_code == 0, r.output
    back = load_uv_processed(tmp_path / "UV_Processed.mat", mesh)
    np.testing.assert_allclose(back.uv, load_atlas(tmp_path / "a.npz", mesh).uv, atol=0)
    assert np.array_equal(back.charts, atlas.charts)
