"""``densemap view``: an interactive page of an alignment (one self-contained HTML file)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import check_outputs, echo_result, library_errors


@click.command("view")
@click.argument("align_dir", type=click.Path(exists=True))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="The page to write (default: ALIGN_DIR/view.html).")
@click.option("--mesh-a", type=click.Path(dir_okay=False),
              help="Mesh A, when it is neither embedded nor where the alignment says.")
@click.option("--mesh-b", type=click.Path(dir_okay=False),
              help="Mesh B, when it is neither embedded nor where the alignment says.")
@click.option("--charts-a", type=click.Path(dir_okay=False),
              help="Per-vertex chart labels of mesh A (any part-label format; the embedded meshes have theirs).")
@click.option("--charts-b", type=click.Path(dir_okay=False), help="Per-vertex chart labels of mesh B.")
@click.pass_context
@library_errors
def view(ctx, align_dir, out, mesh_a, mesh_b, charts_a, charts_b):
    """Write an interactive viewer of the alignment in ALIGN_DIR (written by `densemap align`).

    One HTML file that opens in any browser without a network: both meshes side by side
    with linked cameras, colours for the parts, charts, the colour transfer and per-vertex
    map quality (stretch, round trip, ground-truth error when known), and the match of the
    vertex under the pointer marked on the other mesh. The meshes are found by the hashes
    the alignment recorded (embedded, or the files it names); --mesh-a/--mesh-b give them
    otherwise.
    """
    from densemap.mapping.view import view_alignment

    folder = Path(align_dir).is_dir()
    base = Path(align_dir) if folder else Path(align_dir).parent
    target = Path(out) if out is not None else base / "view.html"
    check_outputs([("-o", target, "file", (), 8 << 20)],
                  {"ALIGN_DIR": base / "alignment.npz" if folder else align_dir, "--mesh-a": mesh_a, "--mesh-b": mesh_b, "--charts-a": charts_a,
                   "--charts-b": charts_b})
    page = view_alignment(align_dir, target, mesh_a=mesh_a, mesh_b=mesh_b, charts_a=charts_a, charts_b=charts_b)
    echo_result(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB): open it in a web browser")
