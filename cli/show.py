"""``densemap show-annotations``: draw the COCO DensePose labels of one image, to check by eye."""

from __future__ import annotations

import click

from .options import check_outputs, echo_log, echo_result, library_errors


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

    Writes four panels side by side, each enlarged to at least 512 pixels on its short
    side; U and V carry a colour bar. Without the image file the labels are drawn on grey.
    """
    from densemap.synth.overlay import draw_annotation_file

    check_outputs([("-o", out_png)], {"ANNOTATIONS": annotations, "--images-dir": images_dir})
    drawn = draw_annotation_file(annotations, out_png, image_id=image_id, images_dir=images_dir)
    if drawn.image_file is None:
        echo_log(ctx, f"image {drawn.image_id}: image file not found in {drawn.searched}; drew on grey")
    echo_result(f"{out_png}: image {drawn.image_id}, {drawn.instances} instances, {drawn.points} points")
