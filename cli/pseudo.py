"""``densemap pseudo-label``: graded DensePose pseudo-labels of unlabelled images by a teacher."""

from __future__ import annotations


import click

from .options import (check_outputs, device_option, echo_result, library_errors, resolve_device, threads_option,
                      verbosity)


@click.command("pseudo-label")
@click.option("--ckpt", required=True, type=click.Path(exists=True), help="Teacher checkpoint (model_final.pt) or run folder.")
@click.option("--images", "images_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of unlabelled images (*.png, *.jpg, ...; not searched recursively).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Output COCO DensePose JSON.")
@click.option("--strategy", type=click.Choice(["uniform", "mask", "I", "uv"]), required=True,
              help="Which points to keep per detection: uniform over the predicted foreground; the K largest "
                   "calibrated foreground posteriors (mask); the K largest calibrated chart posteriors (I); "
                   "the K smallest predicted u/v sigmas (uv).")
@click.option("--k", type=click.IntRange(min=0), required=True,
              help="Points per detection (0: boxes and masks only; more than the foreground: all of it).")
@click.option("--score-min", type=click.FloatRange(0, 1), default=0.8, show_default=True,
              help="Keep detections with at least this score.")
@click.option("--ignore-min", type=click.FloatRange(0, 1), default=None,
              help="Write detections scoring from this up to --score-min as ignore regions (iscrowd 1): a student "
                   "then learns them neither as animals nor as background.  [default: none, they are dropped]")
@click.option("--category", default="chimp", show_default=True, help="Category name written for the detections.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the uniform sampling.")
@click.option("--allow-empty", is_flag=True, help="Write the file even when no detection (or point) was kept.")
@device_option("the teacher")
@threads_option
@click.pass_context
@library_errors
def pseudo_label(ctx, ckpt, images_dir, out, strategy, k, score_min, ignore_min, category, seed, allow_empty, device,
                 threads):
    """Run the teacher CKPT on the images of --images and write pseudo-labels to OUT.

    OUT is COCO DensePose JSON: per kept detection its box, RLE mask, 14 dp_masks, K points
    (dp_x, dp_y, dp_I, dp_U, dp_V) and each point's dp_confidence, file names relative to
    --images. A student starts from the teacher (`densemap train --init CKPT ...`); see
    docs/self-training.md for the training data it needs.
    """
    from densemap_models.pseudo_labels import pseudo_label_folder

    if ignore_min is not None and ignore_min > score_min:
        raise click.BadParameter(f"{ignore_min:g} is above --score-min {score_min:g}", param_hint="--ignore-min")
    check_outputs([("-o", out)], {"--ckpt": ckpt, "--images": images_dir})
    data = pseudo_label_folder(ckpt, images_dir, out, strategy=strategy, k=k, score_min=score_min, category=category,
                               seed=seed, device=resolve_device(device, threads), allow_empty=allow_empty,
                               progress=verbosity(ctx) > 0, ignore_min=ignore_min)
    c = data["info"]["counts"]
    dropped = "; dropped: " + ", ".join(f"{n} {r}" for r, n in c["dropped"].items()) if c["dropped"] else ""
    echo_result(f"{out}: {c['images']} images, {c['kept']} of {c['detections']} detections kept "
                f"(score >= {score_min}), {c['points']} points ({strategy}, k={k}){dropped}")
