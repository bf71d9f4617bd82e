"""``densemap predict``: IUV images, overlays and JSON results of a checkpoint on images."""

from __future__ import annotations

import click

from .options import device_option, library_errors, resolve_device, threads_option, verbosity


@click.command("predict")
@click.option("--ckpt", required=True, type=click.Path(exists=True), help="Checkpoint (model_final.pt) or run folder.")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--score-thresh", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@device_option("inference")
@threads_option
@click.pass_context
@library_errors
def predict(ctx, ckpt, images, out, score_thresh, device, threads):
    """Write NAME_iuv.png, NAME_overlay.png and results.json (DensePose challenge uv_data) for IMAGES."""
    from densemap_models.predict import predict_checkpoint

    path = predict_checkpoint(ckpt, images, out, device=resolve_device(device, threads), score_thresh=score_thresh,
                              progress=verbosity(ctx) > 0)
    if verbosity(ctx) > 0:
        click.echo(f"{len(images)} images -> {path}", err=True)
