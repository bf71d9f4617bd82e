"""``densemap show-annotations``: draw the COCO DensePose labels of one image, to check by eye."""

from __future__ import annotations

from pathlib import Path

import click

from .options import library_errors, verbosity


@click.command("show-annotations")
@click.argument("annotations", type=click.Path(exists=True, dir_okay=False))
@click.option("--image", "image_id", type=int, default=None,
              help="Image id (default: the first image with annotations).")
@click.option("-o", "--out", "out_png", required=True, type=click.Path(dir_okay=False), help="Output PNG.")
@click.option("--images-dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of the image files (default: images/ beside ANNOTATIONS, then its own folder).")
@click.pass_context
@library_errors
def show_annotations(ctx, annotations, image_id, out_png, images_dir):
    """Overlay boxes, masks, coarse parts and the points (by chart, U and V) on one image.

    Writes four panels side by side. Without the image file the labels are drawn on grey.
    """
    import numpy as np

    from densemap.annotation.coco import read_coco
    from densemap.synth import draw_annotations
    from densemap.viz import write_png

    data = read_coco(annotations)
    images = {im.get("id"): im for im in data.get("images", [])}
    if image_id is None:
        with_anns = [a.get("image_id") for a in data["annotations"] if a.get("image_id") in images]
        if not with_anns:
            raise click.ClickException(f"{annotations}: no annotation refers to an image")
        image_id = with_anns[0]
    if image_id not in images:
        some = sorted(k for k in images if isinstance(k, int))[:5]
        raise click.ClickException(f"{annotations}: no image with id {image_id} (ids start {some})")
    info = images[image_id]
    anns = [a for a in data["annotations"] if a.get("image_id") == image_id]
    base = Path(annotations).parent
    dirs = [Path(images_dir)] if images_dir else [base / "images", base]
    name = info.get("file_name")
    path = next((d / name for d in dirs if name and (d / name).is_file()), None)
    if path is not None:
        from PIL import Image

        image = np.asarray(Image.open(path).convert("RGB"))
    else:
        click.echo(f"{info.get('file_name')}: image file not found in {[str(d) for d in dirs]}; drawing on grey",
                   err=True)
        image = np.full((int(info["height"]), int(info["width"]), 3), 128, np.uint8)
    write_png(draw_annotations(image, anns), out_png)
    n = sum(len(a.get("dp_x", [])) for a in anns)
    if verbosity(ctx) > 0:
        click.echo(f"{out_png}: image {image_id}, {len(anns)} instances, {n} points", err=True)
