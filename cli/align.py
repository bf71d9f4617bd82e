"""``densemap align``: part-wise geodesic descriptors on two meshes and the maps between them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from .options import device_option, library_errors, parse_sources, resolve_device, verbosity


def _load_pair(mesh_a, mesh_b, parts_a, parts_b):
    """Meshes and parts from files, or the embedded human (A) and chimp (B)."""
    from densemap.mesh import load_mesh
    from densemap.parts import load_parts

    if mesh_a is None:
        from densemap.data import chimp_to_human_ground_truth, reference_chimp, reference_human

        ha, hb = reference_human(), reference_chimp()
        return ha.mesh, ha.parts, hb.mesh, hb.parts, chimp_to_human_ground_truth()
    out = []
    for mesh_path, parts_path, flag in ((mesh_a, parts_a, "--parts-a"), (mesh_b, parts_b, "--parts-b")):
        mesh = load_mesh(mesh_path)
        if parts_path is None:
            if Path(mesh_path).suffix.lower() != ".obj":
                raise click.ClickException(
                    f"{mesh_path}: no part labels; give {flag} (parts are read from OBJ groups only for .obj meshes)"
                )
            parts_path = mesh_path
        out += [mesh, load_parts(parts_path, mesh)]
    return (*out, None)


@click.command()
@click.argument("mesh_a", required=False, type=click.Path(dir_okay=False))
@click.argument("mesh_b", required=False, type=click.Path(dir_okay=False))
@click.option("--parts-a", type=click.Path(dir_okay=False), help="Part labels of MESH_A (default: its OBJ groups).")
@click.option("--parts-b", type=click.Path(dir_okay=False), help="Part labels of MESH_B (default: its OBJ groups).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="densemap-align", show_default=True,
              help="Output folder.")
@device_option
@click.option("--weighting", type=click.Choice(["area", "vertex"]), default="area", show_default=True,
              help="Source weights in a part's mean: vertex area, or equal per vertex (the paper).")
@click.option("--sources", default="64", show_default=True,
              help="Geodesic sources: an integer m of sampled sources per part, or 'all' labelled vertices.")
@click.option("--normalize", type=click.Choice(["log", "part", "part-sqrt", "std", "global", "none"]), default="log",
              show_default=True, help="Descriptor column normalisation ('part' is the paper's).")
@click.option("--same-part/--any-part", default=True, show_default=True,
              help="Match (and refine) only between vertices of the same part.")
@click.option("--refine/--no-refine", default=True, show_default=True,
              help="Spectral (ZoomOut) refinement of the descriptor map.")
@click.option("--render/--no-render", default=True, show_default=True, help="Write PNG pictures.")
@click.pass_context
@library_errors
def align(ctx, mesh_a, mesh_b, parts_a, parts_b, out_dir, device, weighting, sources, normalize, same_part, refine, render):
    """Align MESH_A and MESH_B (default: the embedded human and chimpanzee).

    Writes alignment.npz, descriptors_a.npy, descriptors_b.npy, report.json and PNG
    pictures into the output folder.
    """
    import numpy as np

    from densemap.geodesics import GeodesicSolver
    from densemap.mapping import align as align_meshes, json_default, map_quality
    from densemap.mesh import atomic_path

    if (mesh_a is None) != (mesh_b is None):
        raise click.UsageError("give two meshes, or none for the embedded human and chimp")
    sources = parse_sources(sources)
    talk = verbosity(ctx) > 0
    dev = resolve_device(device)
    t0 = time.perf_counter()
    ma, pa, mb, pb, gt = _load_pair(mesh_a, mesh_b, parts_a, parts_b)
    t_load = time.perf_counter() - t0
    opts = {"weighting": weighting, "sources": sources, "normalize": normalize, "same_part": same_part, "refine": refine}
    if talk:
        click.echo(f"A: {ma.name} ({ma.n_vertices} vertices, {pa.n_parts} parts)")
        click.echo(f"B: {mb.name} ({mb.n_vertices} vertices, {pb.n_parts} parts)  device: {dev}")
    result = align_meshes(ma, pa, mb, pb, device=dev, progress=talk, **opts)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "alignment.npz")
    for name, d in (("descriptors_a.npy", result.desc_a), ("descriptors_b.npy", result.desc_b)):
        with atomic_path(out / name) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, d)

    t1 = time.perf_counter()
    # one prefactored solver per mesh, shared by both directions' reports
    sa, sb = GeodesicSolver(ma, device=dev), GeodesicSolver(mb, device=dev)
    quality = {
        "a_to_b": map_quality(ma, mb, result.a_to_b, parts_a=pa, parts_b=result.parts_b, b_to_a=result.b_to_a,
                              solver_a=sa, solver_b=sb),
        "b_to_a": map_quality(mb, ma, result.b_to_a, parts_a=result.parts_b, parts_b=pa, b_to_a=result.a_to_b,
                              ground_truth=gt, solver_a=sb, solver_b=sa),
    }
    timings = {"load": t_load, **result.timings, "quality": time.perf_counter() - t1}

    pictures = []
    if render:
        from densemap.errors import GLBackendError

        try:
            from densemap import viz

            viz.check_offscreen_gl()
            t2 = time.perf_counter()
            pictures.append(str(viz.render_meshes([(ma, pa), (mb, result.parts_b)], out / "parts.png", views=("front", "back"),
                                                  titles=["A", "B"])))
            pictures.append(str(viz.render_transfer(ma, mb, result.b_to_a.indices, out / "transfer.png")))
            timings["render"] = time.perf_counter() - t2
        except GLBackendError as exc:
            click.echo(f"pictures skipped: {exc}", err=True)

    report = {
        "mesh_a": {"name": ma.name, "vertices": ma.n_vertices, "faces": ma.n_faces, "sha1": ma.sha1},
        "mesh_b": {"name": mb.name, "vertices": mb.n_vertices, "faces": mb.n_faces, "sha1": mb.sha1},
        "device": dev,
        "options": result.options,
        "timings_s": timings,
        "quality": quality,
        "pictures": pictures,
    }
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=json_default))
    if talk:
        _summary(report, out)


def _summary(report, out):
    t = report["timings_s"]
    click.echo("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    for direction, q in report["quality"].items():
        line = (f"{direction}: part agreement {q['part_agreement']:.3f}, coverage {q['coverage']:.3f}, "
                f"A->B->A {q['consistency_mean']:.4f}")
        if "gt_error_mean" in q:
            line += (f", ground-truth error mean {q['gt_error_mean']:.4f} median {q['gt_error_median']:.4f} "
                     f"p90 {q['gt_error_p90']:.4f} (x sqrt(area))")
        click.echo(line)
    click.echo(f"wrote {out}/alignment.npz, descriptors_a.npy, descriptors_b.npy, report.json"
               + (", " + ", ".join(Path(p).name for p in report["pictures"]) if report["pictures"] else ""))
