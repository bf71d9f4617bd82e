"""``densemap synth``: write a synthetic COCO DensePose dataset rendered from a reference mesh."""

from __future__ import annotations

import sys
import time

import click

from .options import library_errors, verbosity


def _range(value: str, name: str, lo: int, hi: int) -> int | tuple[int, int]:
    """``"320"`` -> 320, ``"256-512"`` -> (256, 512), checked against lo..hi."""
    try:
        parts = [int(p) for p in value.split("-")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or not all(lo <= p <= hi for p in parts) or (len(parts) == 2 and parts[0] > parts[1]):
        raise click.BadParameter(f"expected an integer or a range LO-HI within {lo}..{hi}, got {value!r}",
                                 param_hint=name)
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


@click.command("synth")
@click.option("--species", type=click.Choice(["human", "chimp"]), required=True, help="Which reference mesh to render.")
@click.option("--images", "n_images", type=click.IntRange(min=1), required=True, help="Number of images.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder: OUT/images/*.png and OUT/annotations.json.")
@click.option("--seed", type=int, default=0, show_default=True, help="Image k is drawn from (seed, k).")
@click.option("--size", default="320", show_default=True,
              help="Image side in pixels, or a range LO-HI drawn per image (e.g. 256-512).")
@click.option("--instances", default="1-4", show_default=True, help="Bodies per image: N or LO-HI.")
@click.option("--points", type=click.IntRange(min=1), default=100, show_default=True,
              help="DensePose points per annotated instance.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes (default: every core for 16 images or more).")
@click.pass_context
@library_errors
def synth(ctx, species, n_images, out_dir, seed, size, instances, points, workers):
    """Render images of randomly posed --species bodies with exact DensePose ground truth.

    The labels are COCO DensePose (bbox, RLE segmentation, 14 dp_masks, ~100 points with
    dp_x/dp_y/dp_I/dp_U/dp_V/dp_vertex) in the species' own charts; a chimp dataset goes
    to the human charts with `densemap convert-annotations`.
    """
    from densemap.synth import SceneOptions, synth_dataset

    size = _range(size, "--size", 32, 4096)
    inst = _range(instances, "--instances", 1, 16)
    options = SceneOptions(size=size, instances=inst if isinstance(inst, tuple) else (inst, inst), points=points)
    talk = verbosity(ctx) > 0
    t0 = time.perf_counter()
    bar = None
    if talk:
        from tqdm import tqdm

        bar = tqdm(total=n_images, unit="img", desc=f"synth {species}", file=sys.stderr)
    last = [0]

    def progress(done):
        if bar is not None:
            bar.update(done - last[0])
            last[0] = done

    try:
        coco = synth_dataset(species, n_images, out_dir, seed=seed, options=options, workers=workers, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if talk:
        dt = time.perf_counter() - t0
        n_pts = sum(len(a.get("dp_x", [])) for a in coco["annotations"])
        click.echo(f"{out_dir}: {len(coco['images'])} images, {len(coco['annotations'])} instances, {n_pts} points "
                   f"in {dt:.1f} s ({len(coco['images']) / dt:.1f} images/s)", err=True)
