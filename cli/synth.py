"""``densemap synth``: write a synthetic COCO DensePose dataset rendered from a reference mesh."""

from __future__ import annotations

import sys
import time

import click

from .options import check_outputs, echo_result, library_errors, verbosity


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
@click.option("--images", "n_images", type=click.IntRange(min=1), default=None, help="Number of images (or clips with --video).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Output folder: OUT/images/*.png and OUT/annotations.json.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Image k is drawn from (seed, k).")
@click.option("--size", default="320", show_default=True,
              help="Image side in pixels, or a range LO-HI drawn per image (e.g. 256-512).")
@click.option("--instances", default="1-4", show_default=True, help="Bodies per image: N or LO-HI.")
@click.option("--points", type=click.IntRange(min=1), default=100, show_default=True,
              help="DensePose points per annotated instance.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes (default: every core for 16 images or more).")
@click.option("--video", is_flag=True, help="Render --images animated clips instead (mp4, frames, per-frame GT).")
@click.option("--frames", type=click.IntRange(min=2), default=24, show_default=True, help="Frames per clip (--video).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=6.0, show_default=True,
              help="Frame rate of the clips (--video).")
@click.pass_context
@library_errors
def synth(ctx, species, n_images, out_dir, seed, size, instances, points, workers, video, frames, fps):
    """Render images of randomly posed --species bodies with exact DensePose ground truth.

    The labels are COCO DensePose (bbox, RLE segmentation, 14 dp_masks, ~100 points with
    dp_x/dp_y/dp_I/dp_U/dp_V/dp_vertex) in the species' own charts; a chimp dataset goes
    to the human charts with `densemap convert-annotations`.

    With --video, --images N renders N animated clips instead (bodies moving between
    key poses, a panning camera, occluders crossing): OUT/clips/*.mp4, their frames in
    OUT/images/, per-frame ground truth with track ids in OUT/annotations.json, and the
    surface points followed through each clip in OUT/clips/*.npz.
    """
    from densemap.synth import SceneOptions, synth_dataset

    if n_images is None:
        raise click.UsageError("Missing option '--images' (the number of images, or of clips with --video).")
    size = _range(size, "--size", 32, 4096)
    inst = _range(instances, "--instances", 1, 16)
    check_outputs([("--out", out_dir, "dir", ("annotations.json",), 16 << 20)])
    if video:
        return _video(ctx, species, n_images, out_dir, seed, size, inst, points, frames, fps)
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
    dt = time.perf_counter() - t0
    n_pts = sum(len(a.get("dp_x", [])) for a in coco["annotations"])
    echo_result(f"{out_dir}: {len(coco['images'])} images, {len(coco['annotations'])} instances, {n_pts} points "
                f"in {dt:.1f} s ({len(coco['images']) / dt:.1f} images/s)")


def _video(ctx, species, n_clips, out_dir, seed, size, inst, points, frames, fps):
    """``--video``: clips with exact per-frame DensePose ground truth (densemap.synth.video)."""
    from densemap.synth.video import VideoOptions, synth_video_dataset

    if isinstance(size, tuple):
        raise click.BadParameter("--video takes one frame size, not a range", param_hint="--size")
    options = VideoOptions(frames=frames, fps=fps, size=size, instances=inst if isinstance(inst, tuple) else (inst, inst),
                           points=points)
    talk = verbosity(ctx) > 0
    t0 = time.perf_counter()
    bar = None
    if talk:
        from tqdm import tqdm

        bar = tqdm(total=n_clips, unit="clip", desc=f"synth --video {species}", file=sys.stderr)
    try:
        coco = synth_video_dataset(species, n_clips, out_dir, seed=seed, options=options,
                                   progress=(lambda k: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    dt = time.perf_counter() - t0
    echo_result(f"{out_dir}: {n_clips} clips, {len(coco['images'])} frames, {len(coco['annotations'])} instances "
                f"in {dt:.1f} s ({len(coco['images']) / dt:.1f} frames/s)")
