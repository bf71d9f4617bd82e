"""``densemap convert-annotations``: carry COCO DensePose annotations from one mesh to another."""

from __future__ import annotations

import time

import click

from .options import check_outputs, echo_result, library_errors, parse_sources, verbosity


@click.command("convert-annotations")
@click.argument("in_json", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", "out_json", required=True, type=click.Path(dir_okay=False), help="Output COCO JSON.")
@click.option("--map", "map_path", type=click.Path(exists=True, dir_okay=False),
              help="Alignment .npz between the two meshes (`densemap align`), either direction. "
                   "Default for the embedded pair: computed now with the library's align().")
@click.option("--src-mesh", default="chimp", show_default=True,
              help="Source mesh: 'chimp', 'human' (embedded) or a mesh file.")
@click.option("--dst-mesh", default="human", show_default=True,
              help="Target mesh: 'chimp', 'human' (embedded) or a mesh file.")
@click.option("--src-atlas", type=click.Path(exists=True, dir_okay=False),
              help="Charts of the source mesh: .npz (densemap), UV_Processed.mat or OBJ (vt + groups).")
@click.option("--dst-atlas", type=click.Path(exists=True, dir_okay=False), help="Charts of the target mesh.")
@click.option("--src-name", help="ref_model name of the source mesh (default: densemap_chimp / file stem).")
@click.option("--dst-name", help="ref_model name written for the target mesh.")
@click.option("--sources", default="16", show_default=True,
              help="When computing the map: geodesic sources per part ('all' or an integer).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Per-point report JSON (default: OUT with .report.json).")
@click.option("--strict", is_flag=True, help="Fail (and write nothing) if any point would be dropped.")
@click.option("--allow-empty", is_flag=True,
              help="Write the result even when no point converts (by default that is an error saying why).")
@click.pass_context
@library_errors
def convert_annotations(ctx, in_json, out_json, map_path, src_mesh, dst_mesh, src_atlas, dst_atlas, src_name,
                        dst_name, sources, report_path, strict, allow_empty):
    """Convert the DensePose labels of IN_JSON from the source mesh to the target mesh.

    Chart labels (dp_I/U/V on the source's charts) and vertex labels (dp_vertex) become
    dp_I/U/V on the target's charts plus dp_vertex on the target. With no options this
    converts from the embedded chimpanzee to the embedded human. Writes OUT atomically,
    never over an input, and a per-point report next to it. A conversion in which no
    point survives is an error that says why (e.g. the annotations name the target mesh:
    the wrong direction).
    """
    from densemap.annotation.convert import convert_annotation_file, default_report_path

    t0 = time.perf_counter()
    n_sources = parse_sources(sources)
    report_path = report_path or str(default_report_path(out_json))
    meshes = [m for m in (src_mesh, dst_mesh) if m not in ("chimp", "human")]
    check_outputs([("-o", out_json), ("--report", report_path)],
                  {"IN_JSON": in_json, "--map": map_path, "--src-atlas": src_atlas, "--dst-atlas": dst_atlas,
                   "--src-mesh/--dst-mesh": meshes})
    report = convert_annotation_file(in_json, out_json, source=src_mesh, target=dst_mesh, source_atlas=src_atlas,
                                     target_atlas=dst_atlas, source_name=src_name, target_name=dst_name,
                                     map_path=map_path, sources=n_sources, strict=strict, report_path=report_path,
                                     allow_empty=allow_empty, progress=verbosity(ctx) > 1)
    m = report.provenance.get("map") or {"kind": "identity"}
    how = {"file": f"map {m.get('file')} (sha256 {str(m.get('sha256'))[:12]})",
           "computed": f"map computed with align(sources={sources}) in {m.get('seconds')} s",
           "identity": "identity map (same mesh)"}[m["kind"]]
    echo_result(f"{out_json}: {report.summary()}; {how}; report {report_path} ({time.perf_counter() - t0:.1f} s)")
