"""``densemap info``: statistics of meshes (the embedded reference meshes by default)."""

from __future__ import annotations

import click

from .options import echo_result, library_errors


@click.command()
@click.argument("meshes", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--parts", "parts_file", type=click.Path(exists=True, dir_okay=False), help="Part labels for the mesh.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@library_errors
def info(ctx, meshes, parts_file, as_json):
    """Print statistics of MESHES (default: the embedded human and chimp).

    The statistics are the result: printed under -q too. --json is strict JSON (a value
    that is not finite, e.g. the area of a mesh at 1e200, is null).
    """
    import json

    from densemap._io import json_finite
    from densemap.data import SPECIES, reference
    from densemap.mesh import load_mesh, mesh_info
    from densemap.parts import load_parts

    if not meshes:
        rows = {f"reference {s}": mesh_info(*reference(s)) for s in SPECIES}
    else:
        rows = {}
        for path in meshes:
            mesh = load_mesh(path)
            rows[path] = mesh_info(mesh, load_parts(parts_file, mesh) if parts_file else None)
    if as_json:
        echo_result(json.dumps(json_finite(rows), indent=2, allow_nan=False))
        return
    lines = []
    for name, st in rows.items():
        lines.append(f"{name}:")
        lines += [f"  {k:20s} {v:.6g}" if isinstance(v, float) else f"  {k:20s} {v}" for k, v in st.items()]
    echo_result("\n".join(lines))
