"""``densemap transfer-parts``: a reference's parts on a new mesh, from landmark pairs."""

from __future__ import annotations

import click

from .options import check_outputs, device_option, echo_result, library_errors, resolve_device, verbosity


@click.command("transfer-parts")
@click.argument("ref_mesh")
@click.argument("new_mesh")
@click.option("--landmarks", required=True, type=click.Path(dir_okay=False),
              help='JSON {"pairs": [[ref_vertex, new_vertex], ...]} or {"points": [[[x,y,z], [x,y,z]], ...]}.')
@click.option("--ref-parts", type=click.Path(dir_okay=False),
              help="Parts of REF_MESH (default: the embedded mesh's, or its OBJ groups).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="Parts of NEW_MESH: .json {name: [ids]} or .npy (+ .names.json); a .report.json beside it.")
@click.option("--dense/--no-dense", default=True, show_default=True,
              help="Refine the landmark bootstrap through a dense spectral map (minutes; --no-dense: seconds, "
                   "less accurate).")
@click.option("--basis", type=click.IntRange(min=1), default=None, show_default="300, the library's DENSE_BASIS",
              help="Eigenfunctions of the dense map's refinement.")
@click.option("--iterations", type=click.IntRange(min=0), default=0, show_default=True,
              help="At most this many descriptor iterations after the landmark bootstrap (kept while they help).")
@click.option("--smoothness", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Graph-cut cost of a part boundary per mean edge length (the bootstrap's cut and the iterations').")
@click.option("--dense-smoothness", type=click.FloatRange(min=0), default=None,
              show_default="0.2, the library's DENSE_SMOOTHNESS",
              help="The same for the dense map's cut.")
@device_option("the geodesics")
@click.pass_context
@library_errors
def transfer_parts(ctx, ref_mesh, new_mesh, landmarks, ref_parts, out, dense, basis, iterations, smoothness,
                   dense_smoothness, device):
    """Cut NEW_MESH into the parts of REF_MESH ('human', 'chimp' or a mesh file) from landmarks.

    Prints per part its share of the area and how sure the transfer is (mean confidence,
    and the share of its area below 0.5).
    """
    from densemap.mapping.transfer_parts import run_transfer_parts

    check_outputs([("-o", out, "file")], {"REF_MESH": ref_mesh, "NEW_MESH": new_mesh, "--landmarks": landmarks,
                                          "--ref-parts": ref_parts})
    # unset options take the library's defaults (so this module need not import it to show them)
    dense_options = {k: v for k, v in (("basis", basis), ("dense_smoothness", dense_smoothness)) if v is not None}
    result, files = run_transfer_parts(ref_mesh, new_mesh, landmarks, out, ref_parts=ref_parts, dense=dense,
                                       iterations=iterations, smoothness=smoothness, device=resolve_device(device),
                                       progress=verbosity(ctx) > 0, **dense_options)
    lines = [" -> ".join(f"{h['stage']} {h['mean_confidence']:.3f}{'' if h['kept'] else ' (dropped)'}"
                         for h in result.history) + "  (mean confidence per stage)",
             "part                    area   confidence  unsure"]
    for name, p in result.per_part.items():
        lines.append(f"{name:22s} {p['area_fraction']:6.3f} {p['confidence']:10.3f} {p['low_confidence_area']:7.1%}")
    lines.append("wrote " + ", ".join(str(f) for f in files))
    echo_result("\n".join(lines))
