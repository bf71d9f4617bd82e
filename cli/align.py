"""``densemap align``: part-wise geodesic descriptors on two meshes and the maps between them."""

from __future__ import annotations

import click

from .options import (check_outputs, device_option, echo_log, echo_result, library_errors, parse_rounds,
                      parse_sources, resolve_device, verbosity)


@click.command()
@click.argument("mesh_a", required=False, type=click.Path(dir_okay=False))
@click.argument("mesh_b", required=False, type=click.Path(dir_okay=False))
@click.option("--parts-a", type=click.Path(dir_okay=False), help="Part labels of MESH_A (default: its OBJ groups).")
@click.option("--parts-b", type=click.Path(dir_okay=False), help="Part labels of MESH_B (default: its OBJ groups).")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default="densemap-align", show_default=True,
              help="Output folder.")
@device_option("geodesics and matching")
@click.option("--weighting", type=click.Choice(["area", "vertex"]), default="area", show_default=True,
              help="Source weights in a part's mean: vertex area, or equal per vertex (the paper).")
@click.option("--sources", default=None, show_default="16, the library's DEFAULT_SOURCES",
              help="Geodesic sources: an integer m of sampled sources per part, or 'all' labelled vertices.")
@click.option("--normalize", type=click.Choice(["log", "part", "part-sqrt", "std", "global", "none"]), default="log",
              show_default=True, help="Descriptor column normalisation ('part' is the paper's).")
@click.option("--same-part/--any-part", default=True, show_default=True,
              help="Match (and refine) only between vertices of the same part.")
@click.option("--standardized-match/--plain-match", "standardize_parts", default=True, show_default=True,
              help="The first match within each part compares the part's descriptors centred and scaled over "
                   "the part on each mesh, so different proportions do not shift it (docs/alignment.md); "
                   "--plain-match compares them as they are (the paper).")
@click.option("--refine", type=click.Choice(["consistent", "zoomout", "none"]), default="consistent",
              show_default=True,
              help="Spectral refinement of both maps: together with a bijectivity term, the paper's ZoomOut "
                   "(each direction alone), or none.")
@click.option("--no-refine", "no_refine", is_flag=True, help="Same as --refine none.")
@click.option("--landmark-rounds", default=None, metavar="N|auto",
              show_default="auto: 3 rounds for labels of at most 12 parts, else 0",
              help="Rounds of the self-landmark stage after the consistent refinement (spread vertices the maps "
                   "send back to themselves become landmarks for a second refinement; for coarse labels); 0: off.")
@click.option("--rough-labels/--careful-labels", "rough_labels", default=None,
              show_default="decided from the labels: rough when a labelling has stray islands",
              help="The part labels are rough (boundaries a few rings off, stray islands): the refinement's last "
                   "step matches across parts, so wrongly labelled vertices are not forced into the wrong part, "
                   "and B's eigenbasis is not matched to A's part areas (rough labels give wrong areas). Costs "
                   "accuracy with careful labels (docs/alignment.md). --careful-labels keeps that step within "
                   "parts and the area-matched basis.")
@click.option("--area-matched-basis/--plain-basis", "area_match", default=None,
              show_default="area-matched with careful labels, plain with rough ones",
              help="Compute B's eigenbasis with its part areas scaled to A's (a conformal change of B's metric; "
                   "lowers the error where proportions differ, needs careful labels), or the plain one.")
@click.option("--keep-islands", is_flag=True,
              help="Keep stray islands of a part label as they are (by default each piece under a quarter of its "
                   "part's largest takes the label around it; report.json says what was merged).")
@click.option("--render/--no-render", default=True, show_default=True, help="Write PNG pictures.")
@click.option("--view/--no-view", default=False, show_default=True,
              help="Write view.html too: an interactive viewer of the maps (one self-contained page).")
@click.option("--repair", is_flag=True,
              help="Weld coincident vertices and drop zero-area, sliver and duplicate faces and vertices in no face "
                   "(outputs keep the files' vertex ids); without it such meshes are refused.")
@click.pass_context
@library_errors
def align(ctx, mesh_a, mesh_b, parts_a, parts_b, out_dir, device, weighting, sources, normalize, same_part,
          standardize_parts, refine, no_refine, landmark_rounds, rough_labels, area_match, keep_islands, render, view,
          repair):
    """Align MESH_A and MESH_B (default: the embedded human and chimpanzee).

    Writes alignment.npz, descriptors_a.npy, descriptors_b.npy, report.json, PNG
    pictures (and view.html with --view) into the output folder: all of them or, when
    the run fails or is interrupted, none (the folder keeps its previous run).
    """
    from densemap.mapping import run_align
    from densemap.mapping.outputs import OUTPUT_NAMES

    source_option = {} if sources is None else {"sources": parse_sources(sources)}
    if landmark_rounds is not None:
        source_option["landmark_rounds"] = parse_rounds(landmark_rounds)
    refine = False if no_refine or refine == "none" else refine
    if rough_labels and (refine != "consistent" or not same_part):
        raise click.BadParameter("needs the consistent refinement within parts (--refine consistent, --same-part)",
                                 param_hint="--rough-labels")
    if area_match is not None:
        if refine != "consistent":
            raise click.BadParameter("needs the consistent refinement (--refine consistent)",
                                     param_hint="--area-matched-basis/--plain-basis")
        source_option["refine_options"] = {"area_match": area_match}
    check_outputs([("-o", out_dir, "dir", OUTPUT_NAMES, 32 << 20)],
                  {"MESH_A": mesh_a, "MESH_B": mesh_b, "--parts-a": parts_a, "--parts-b": parts_b})
    talk = verbosity(ctx) > 0
    run = run_align(mesh_a, mesh_b, parts_a=parts_a, parts_b=parts_b, out_dir=out_dir, device=resolve_device(device),
                    render=render, progress=talk, repair=repair, view=view, weighting=weighting, normalize=normalize,
                    same_part=same_part, standardize_parts=standardize_parts, refine=refine,
                    merge_islands=not keep_islands, rough_labels=rough_labels,
                    **source_option)
    if run.pictures_skipped:
        echo_log(ctx, f"pictures skipped: {run.pictures_skipped}")
    echo_result(_summary(run.report, run.files))


def _summary(report: dict, files) -> str:
    """The result: meshes, quality both ways, total time (per stage in report.json), the files."""
    a, b = report["mesh_a"], report["mesh_b"]
    t = report["timings_s"]
    # pictures drawn in the background count by what the run waited for them, not their own time
    total = sum(v for k, v in t.items() if not (k == "render" and "render_wait" in t))
    lines = [f"A: {a['name']} ({a['vertices']} vertices)   B: {b['name']} ({b['vertices']} vertices)   "
             f"device: {report['device']}   time: {total:.1f} s (per stage in report.json)"]
    prep = report.get("prepared")
    if prep:
        done = [f"{k[-1].upper()} scaled by {v:.3g}" for k, v in prep.items() if k.startswith("scale_") and v != 1.0]
        done += [f"{k[-1].upper()}: {v['welded']} vertices welded, {v['removed_faces']} faces and "
                 f"{v['removed_vertices']} vertices removed" for k, v in prep.items() if k.startswith("repair_")]
        lines.append("prepared: " + "; ".join(done))
    merged = {k: v for k, v in (report.get("islands_merged") or {}).items() if v and v["islands"]}
    if merged:
        said = [f"{k.upper()}: {v['islands']} stray island{'s' * (v['islands'] != 1)} ({v['vertices']} vertices) "
                "merged into the parts around them" for k, v in merged.items()]
        lines.append("labels: " + "; ".join(said) + " (--keep-islands keeps them)")
    if report.get("rough_labels") and report["options"].get("refine") == "consistent" \
            and report["options"].get("same_part"):
        lines.append("labels treated as rough: the last refinement step matched across parts "
                     "(--careful-labels keeps it within parts)")
    for direction, q in report["quality"].items():
        line = (f"{direction}: part agreement {q['part_agreement']:.3f}, coverage {q['coverage']:.3f}, "
                f"A->B->A {q['consistency_mean']:.4f}")
        if "gt_error_mean" in q:
            line += (f", ground-truth error mean {q['gt_error_mean']:.4f} median {q['gt_error_median']:.4f} "
                     f"p90 {q['gt_error_p90']:.4f} (x sqrt(area))")
        lines.append(line)
    lines.append("wrote " + ", ".join(str(p) for p in files))
    return "\n".join(lines)
