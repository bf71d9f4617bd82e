"""``densemap convert-annotations``: carry COCO DensePose annotations from one mesh to another."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .options import library_errors, parse_sources, verbosity

REFERENCES = ("chimp", "human")


def _side(mesh_arg, atlas_arg, name_arg, flag):
    """(mesh, atlas, ref name, species or None) for one side of the conversion."""
    from densemap.charts import build_atlas, load_atlas, load_obj_atlas, reference_atlas
    from densemap.mesh import load_mesh

    if mesh_arg in REFERENCES:
        from densemap import data
        from densemap.annotation.convert import REFERENCE_NAMES

        ref = data.reference_chimp() if mesh_arg == "chimp" else data.reference_human()
        atlas = load_atlas(atlas_arg, ref.mesh) if atlas_arg else reference_atlas(mesh_arg)
        return ref.mesh, atlas, name_arg or REFERENCE_NAMES[mesh_arg], mesh_arg
    path = Path(mesh_arg)
    name = name_arg or path.stem
    if atlas_arg:
        mesh = load_mesh(path)
        return mesh, load_atlas(atlas_arg, mesh), name, None
    if path.suffix.lower() == ".obj":
        mesh, atlas = load_obj_atlas(path)
        from densemap.mesh import Mesh

        return Mesh(mesh.vertices, mesh.faces, name=mesh.name), atlas, name, None
    raise click.UsageError(f"{mesh_arg}: give {flag}-atlas (an .npz, UV_Processed.mat or OBJ with vt and groups)")


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
@click.pass_context
@library_errors
def convert_annotations(ctx, in_json, out_json, map_path, src_mesh, dst_mesh, src_atlas, dst_atlas, src_name,
                        dst_name, sources, report_path, strict):
    """Convert the DensePose labels of IN_JSON from the source mesh to the target mesh.

    Chart labels (dp_I/U/V on the source's charts) and vertex labels (dp_vertex) become
    dp_I/U/V on the target's charts plus dp_vertex on the target. With no options this
    converts from the embedded chimpanzee to the embedded human. Writes OUT atomically,
    never over IN_JSON, and a per-point report next to it.
    """
    import os

    from densemap.annotation.convert import AnnotationConverter, _load_map, convert_file

    if os.path.exists(out_json) and os.path.samefile(in_json, out_json):
        raise click.UsageError(f"{out_json}: refusing to overwrite the input file")
    sources = parse_sources(sources)
    talk = verbosity(ctx) > 0
    t0 = time.perf_counter()
    ms, sa, sn, s_ref = _side(src_mesh, src_atlas, src_name, "--src")
    md, da, dn, d_ref = _side(dst_mesh, dst_atlas, dst_name, "--dst")
    vmap, info = None, None
    if map_path:
        vmap, info = _load_map(map_path, ms, md)
    elif ms.sha1 != md.sha1:
        if not (s_ref and d_ref):
            raise click.UsageError("give --map (an alignment between the two meshes); "
                                   "it is computed on the fly only for the embedded chimp and human")
        from densemap import data
        from densemap.mapping import align

        if talk:
            click.echo(f"computing the {s_ref} -> {d_ref} map with align(sources={sources}) ...", err=True)
        rs = data.reference_chimp() if s_ref == "chimp" else data.reference_human()
        rd = data.reference_chimp() if d_ref == "chimp" else data.reference_human()
        t1 = time.perf_counter()
        vmap = align(rs.mesh, rs.parts, rd.mesh, rd.parts, sources=sources).a_to_b
        info = {"kind": "computed", "function": "densemap.mapping.align", "options": {"sources": sources},
                "seconds": round(time.perf_counter() - t1, 2)}
    converter = AnnotationConverter(ms, sa, md, da, vmap, source_name=sn, target_name=dn, map_info=info)
    report_path = report_path or str(Path(out_json).with_suffix("")) + ".report.json"
    report = convert_file(in_json, out_json, converter, strict=strict, report_path=report_path)
    if talk:
        m = info or {"kind": "identity"}
        how = {"file": f"map {m.get('file')} (sha256 {str(m.get('sha256'))[:12]})",
               "computed": f"map computed with align(sources={sources}) in {m.get('seconds')} s",
               "identity": "identity map (same mesh)"}[m["kind"]]
        click.echo(f"{out_json}: {report.summary()}; {how}; report {report_path} "
                   f"({time.perf_counter() - t0:.1f} s)")
