"""``densemap predict``: a checkpoint on images, video clips and folders of both."""

from __future__ import annotations

import click

from .options import device_option, library_errors, resolve_device, threads_option, verbosity


@click.command("predict")
@click.option("--ckpt", required=True, type=click.Path(exists=True), help="Checkpoint (model_final.pt) or run folder.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--score-thresh", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Least detection score kept.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Sample clips at F frames per second (1 = the camera-trap evaluation protocol).")
@click.option("--every", type=click.IntRange(min=1), default=None, help="Sample every N-th frame of a clip.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="At most N sampled frames per clip.")
@click.option("--smooth/--no-smooth", default=True, show_default=True,
              help="Fuse each tracked detection with its neighbours in time (clips only).")
@click.option("--smooth-radius", type=click.IntRange(min=1), default=2, show_default=True,
              help="Sampled frames on each side that --smooth fuses.")
@click.option("--smooth-align", type=click.Choice(["image", "box"]), default="image", show_default=True,
              help="Carry neighbours onto the current box at the same image points, or box-relative.")
@click.option("--overlay/--no-overlay", default=False, show_default=True,
              help="Also write CLIP_overlay.mp4 (IUV colours, boxes, track ids, scores).")
@click.option("--surface", is_flag=True,
              help="Also write NAME_surface.npz / CLIP_surface.npz: each detection's pixels as points on the "
                   "embedded human mesh (vertex id, face, barycentric coordinates, 3-D point).")
@click.option("--birth-score", type=click.FloatRange(0, 1), default=None,
              help="Least score that starts a track (default: --score-thresh).")
@click.option("--max-gap", type=click.IntRange(min=0), default=2, show_default=True,
              help="Sampled frames a track may miss and keep its id.")
@device_option("inference")
@threads_option
@click.pass_context
@library_errors
def predict(ctx, ckpt, inputs, out, score_thresh, fps, every, max_frames, smooth, smooth_radius, smooth_align, overlay,
            surface, birth_score, max_gap, device, threads):
    """Predict DensePose on INPUTS: images, videos (mp4, avi, asf, mov, mkv) and folders of them.

    Outputs mirror each input's relative path under OUT: for an image NAME_iuv.png,
    NAME_overlay.png and its detections in OUT/results.json; for a clip CLIP.json (per
    sampled frame: timestamp, boxes, scores, RLE masks, IUV, mean sigma, track id),
    CLIP_overlay.mp4 with --overlay, and a row in OUT/summary.csv. With --surface every
    image or clip also gets a _surface.npz: per detection, each foreground pixel's vertex,
    face, barycentric coordinates and point on the embedded human mesh (the charts the
    model predicts), named in the detection's JSON record. Finished clips are
    skipped when the command runs again. Under torchrun the inputs are shared out
    between the ranks.
    """
    from densemap_models.predict import ClipSettings, Sampling, predict_checkpoint

    if fps is not None and every is not None:
        raise click.UsageError("give at most one of --fps and --every")
    sampling = Sampling(fps=fps, every=every, max_frames=max_frames)
    settings = ClipSettings(score_thresh=score_thresh, smooth_radius=smooth_radius if smooth else 0,
                            birth_score=score_thresh if birth_score is None else max(birth_score, score_thresh),
                            max_gap=max_gap, smooth_align=smooth_align, overlay=overlay, surface=surface)
    talk = verbosity(ctx) > 0
    s = predict_checkpoint(ckpt, inputs, out, device=resolve_device(device, threads), sampling=sampling,
                           settings=settings, progress=talk)
    if not talk:
        return
    lines = []
    if s.images:
        lines.append(f"{s.images} images" + (f", {s.images_without_detection} without a detection at score >= "
                                            f"{score_thresh:g}" if s.images_without_detection else ""))
    if s.clips or s.clips_skipped:
        fr = f" ({s.frames / s.seconds:.1f} frames/s)" if s.frames and s.seconds > 0 else ""
        lines.append(f"{s.clips} clips predicted{fr}, {s.clips_skipped} already complete"
                     + (f", {s.clips_without_detection} without a detection" if s.clips_without_detection else ""))
    for clip, why in s.errors:
        lines.append(f"skipped {clip}: {why}")
    click.echo("; ".join(lines[:2]) + f" -> {s.out_dir}", err=True)
    for line in lines[2:]:
        click.echo(line, err=True)
