"""``densemap export-cse``: a mesh in the files DensePose CSE reads (mesh, texture coordinates, LBO basis)."""

from __future__ import annotations

import click

from .options import check_outputs, echo_result, library_errors, verbosity


@click.command("export-cse")
@click.argument("mesh")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--name", help="The mesh's name in DensePose's mesh catalog (default: <mesh>_<vertices>).")
@click.option("--atlas", type=click.Path(dir_okay=False),
              help="Atlas for the texture coordinates (default: the embedded mesh's; none for a file).")
@click.option("--map", "alignment", type=click.Path(dir_okay=False),
              help="alignment.npz of `densemap align REF MESH`: express the basis through the map to --ref.")
@click.option("--ref", "reference", help="The reference of --map: 'human', 'chimp' or a mesh file.")
@click.option("--k", type=click.IntRange(min=1), default=256, show_default=True, help="Basis functions.")
@click.option("--geodists", is_flag=True, help="Also write the N x N geodesic distances (large: 4 N^2 bytes).")
@click.pass_context
@library_errors
def export_cse(ctx, mesh, out_dir, name, atlas, alignment, reference, k, geodists):
    """Write MESH ('human', 'chimp' or a mesh file) for DensePose CSE into a folder."""
    from densemap.charts.cse import run_export_cse

    check_outputs([("-o", out_dir, "dir")], {"MESH": mesh, "--atlas": atlas, "--map": alignment, "--ref": reference})
    res = run_export_cse(mesh, out_dir, name=name, atlas=atlas, alignment=alignment, reference=reference, k=k,
                         geodists=geodists, progress=verbosity(ctx) > 0)
    how = "carried through the map and orthonormalised" if alignment else "the mesh's own eigenbasis"
    e = res.info["embedder"]
    echo_result(f"{e['NUM_VERTICES']} vertices, {e['FEATURE_DIM']} Laplace-Beltrami functions ({how})\n"
                + "wrote " + ", ".join(str(p) for p in res.files.values()))
