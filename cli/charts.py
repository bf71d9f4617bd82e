"""``densemap charts``: chart atlases for any mesh, written in the format other tools read."""

from __future__ import annotations

import click

from .options import check_outputs, echo_result, library_errors


@click.command()
@click.argument("mesh")
@click.option("--parts", type=click.Path(dir_okay=False), help="Part labels whose regions become charts (flatten), "
              "also written into a .ply.")
@click.option("--charts", "charts_file", type=click.Path(dir_okay=False),
              help="Chart labels (e.g. 24 DensePose charts) per vertex, flattened one chart each.")
@click.option("--method", type=click.Choice(["flatten", "transfer"]), default="flatten", show_default=True,
              help="flatten: each region on its own; transfer: carry a reference atlas through --map, then relax.")
@click.option("--from", "reference", help="transfer: the reference atlas: 'human', 'chimp' or an atlas file "
              "(.npz, DensePose's UV_Processed.mat, .obj with vt).")
@click.option("--map", "alignment", type=click.Path(dir_okay=False),
              help="transfer: alignment.npz of `densemap align REF MESH` (the map from MESH onto the reference).")
@click.option("--atlas", type=click.Path(dir_okay=False),
              help="An existing atlas of MESH (.npz, .mat, .obj) to write in OUT's format instead of building one.")
@click.option("--relax-iterations", type=click.IntRange(min=1), default=1500, show_default=True,
              help="transfer: L-BFGS iterations of the relaxation (fewer: faster, more distorted hands).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False),
              help="Output: .npz atlas, .mat UV_Processed, .obj (vt + chart groups), .ply (part/chart/u/v), .png.")
@click.pass_context
@library_errors
def charts(ctx, mesh, parts, charts_file, method, reference, alignment, atlas, relax_iterations, out):
    """Chart atlas of MESH (a mesh file, or 'human'/'chimp' for an embedded mesh).

    Prints the distortion per chart (area, angle: 1 = perfect) and the flipped-triangle
    fraction (before and after relaxing, for --method transfer).
    """
    from densemap.charts.make import make_charts

    check_outputs([("-o", out, "file")], {"MESH": mesh, "--parts": parts, "--charts": charts_file,
                                          "--from": reference, "--map": alignment, "--atlas": atlas})
    run = make_charts(mesh, out, method=method, parts=parts, charts=charts_file, reference=reference,
                      alignment=alignment, atlas=atlas, iterations=relax_iterations)
    echo_result(_summary(run.report, run.path))


def _summary(report: dict, path) -> str:
    d = report["distortion"]
    lines = [f"{report['mesh']['name']}: {report['charts']} charts by {report['method']}, {d['faces']} faces"]
    if "before" in report:
        b = report["before"]
        lines.append(f"carried: flipped {b['flipped_fraction']:.2%}, degenerate {b['degenerate_fraction']:.2%}, "
                     f"median area {b['area_median']:.3f}, median angle {b['angle_median']:.3f}")
        lines.append(f"relaxed: flipped {d['flipped_fraction']:.2%}, degenerate {d['degenerate_fraction']:.2%}, "
                     f"median area {d['area_median']:.3f}, median angle {d['angle_median']:.3f}")
    else:
        lines.append(f"flipped {d['flipped_fraction']:.2%}, median area {d['area_median']:.3f}, "
                     f"median angle {d['angle_median']:.3f}")
    lines.append("(area, angle: 1 = preserved; medians over the faces, means in the report)")
    lines.append("chart  faces  area   angle  flipped" + ("  (carried: area angle flipped)" if "before" in report else ""))
    for cid, c in sorted(d["per_chart"].items(), key=lambda kv: int(kv[0])):
        row = f"{int(cid):5d} {c['faces']:6d} {c['area_median']:6.3f} {c['angle_median']:6.3f} {c['flipped']:8d}"
        if "before" in report and cid in report["before"]["per_chart"]:
            p = report["before"]["per_chart"][cid]
            row += f"  ({p['area_median']:.3f} {p['angle_median']:.3f} {p['flipped']})"
        lines.append(row)
    lines.append(f"wrote {path}")
    return "\n".join(lines)
