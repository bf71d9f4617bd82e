"""``densemap info``: statistics of meshes (the embedded reference meshes by default)."""

from __future__ import annotations

import click

from .options import library_errors, verbosity


def mesh_stats(mesh, parts=None, charts=None) -> dict:
    from densemap.mesh import check_mesh

    rep = check_mesh(mesh)
    out = {
        "vertices": mesh.n_vertices,
        "faces": mesh.n_faces,
        "components": rep.n_components,
        "closed_manifold": rep.is_closed_manifold,
        "area": mesh.area,
        "bbox_diagonal": mesh.bounding_box_diagonal,
        "mean_edge_length": float(mesh.edge_lengths.mean()),
        "check": rep.summary(),
    }
    if parts is not None:
        out["parts"] = parts.n_parts
        out["unlabelled_vertices"] = int((parts.labels < 0).sum())
    if charts is not None:
        out["charts"] = charts.n_parts
    return out


@click.command()
@click.argument("meshes", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--parts", "parts_file", type=click.Path(exists=True, dir_okay=False), help="Part labels for the mesh.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@library_errors
def info(ctx, meshes, parts_file, as_json):
    """Print statistics of MESHES (default: the embedded human and chimp)."""
    import json

    from densemap.mesh import load_mesh
    from densemap.parts import load_parts

    rows = {}
    if not meshes:
        from densemap.data import reference_chimp, reference_human

        for name, ref in (("human", reference_human()), ("chimp", reference_chimp())):
            rows[f"reference {name}"] = mesh_stats(*ref)
    else:
        for path in meshes:
            mesh = load_mesh(path)
            parts = load_parts(parts_file, mesh) if parts_file else None
            rows[path] = mesh_stats(mesh, parts)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if verbosity(ctx) == 0:
        return
    for name, st in rows.items():
        click.echo(f"{name}:")
        for k, v in st.items():
            click.echo(f"  {k:20s} {v:.6g}" if isinstance(v, float) else f"  {k:20s} {v}")
