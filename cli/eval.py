"""``densemap eval``: box/mask AP, DensePose AP (GPS, GPSm) and calibration of a checkpoint."""

from __future__ import annotations


import click

from .options import (check_outputs, device_option, echo_log, echo_result, library_errors, resolve_device,
                      threads_option, verbosity)


@click.command("eval")
@click.option("--ckpt", required=True, type=click.Path(exists=True), help="Checkpoint (model_final.pt) or run folder.")
@click.option("--data", required=True, type=click.Path(exists=True), help="Dataset folder or COCO DensePose JSON.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None, help="Image folder for a JSON.")
@click.option("--target", default="densemap_human", show_default=True,
              help="Mesh of the GPS geodesics: densemap_human | densemap_chimp.")
@click.option("--classes", default=None, help="Comma-separated categories merged into one class (default: all).")
@click.option("--min-iou", type=click.FloatRange(0.05, 0.95), default=0.5, show_default=True,
              help="Lowest GPS threshold (0.2 = DensePose's relaxed APex).")
@click.option("-o", "--out", type=click.Path(file_okay=False), default=None,
              help="Folder for metrics.json and reliability.png (default: next to the checkpoint).")
@device_option("inference")
@threads_option
@click.pass_context
@library_errors
def eval_(ctx, ckpt, data, images, target, classes, min_iou, out, device, threads):
    """Evaluate CKPT on a COCO DensePose set: box AP, mask AP, DensePose AP with GPS and GPSm
    (per-part kappa, thresholds MIN_IOU:0.95, 20 detections per image) and a calibration table."""
    from densemap_models.evaluate import evaluate_checkpoint

    cls = [c.strip() for c in classes.split(",")] if classes else ()
    if out is not None:
        check_outputs([("-o", out, "dir", ("metrics.json", "reliability.png"), 4 << 20)],
                      {"--ckpt": ckpt, "--data": data, "--images": images})
    d, out_dir = evaluate_checkpoint(ckpt, data, images=images, target=target, classes=cls, min_iou=min_iou, out=out,
                                     device=resolve_device(device, threads), progress=verbosity(ctx) > 0)
    if not d["calibration"]["summary"]["i_points"]:
        n_det = d.get("n_detections")
        echo_log(ctx, "note: no matched points: no detection" + ("" if n_det is None else f" ({n_det} in all)") +
                 " covers an annotated point with box IoU >= 0.5, so DensePose AP and the calibration are empty "
                 "(an untrained or wrong-domain checkpoint?)")
    echo_result(format_report(d))
    echo_log(ctx, f"written {out_dir / 'metrics.json'} and {out_dir / 'reliability.png'}")


def format_report(d: dict) -> str:
    """A short text table of the metrics."""
    dp = d["densepose"]
    s = d["calibration"]["summary"]
    lines = [
        f"{d['n_images']} images, {d['n_instances']} instances (target mesh {d['target']})",
        f"box  AP {d['bbox']['AP']:6.2f}  AP50 {d['bbox']['AP50']:6.2f}  AP75 {d['bbox']['AP75']:6.2f}",
        f"mask AP {d['segm']['AP']:6.2f}  AP50 {d['segm']['AP50']:6.2f}  AP75 {d['segm']['AP75']:6.2f}",
    ]
    for k in ("GPS", "GPSm"):
        r = dp[k]
        lines.append(f"DensePose {k:4s} AP {r['AP']:6.2f}  AP50 {r['AP50']:6.2f}  AP75 {r['AP75']:6.2f}  "
                     f"APm {r['APm']:6.2f}  APl {r['APl']:6.2f}  AR {r['AR']:6.2f}")
    lines.append("calibration u/v: " + ("no matched points" if not s["uv_points"] else
                 f"{s['uv_points']} values, RMS error {s['uv_rms_error']:.3f}, mean sigma {s['uv_mean_sigma']:.3f}, "
                 f"|err| <= sigma for {100 * s['uv_within_1sigma']:.1f}% (68.3% if calibrated)"))
    lines.append("calibration I: " + ("no matched points" if not s["i_points"] else
                 f"{s['i_points']} points, accuracy {s['i_accuracy']:.3f}, mean confidence {s['i_mean_conf']:.3f}, "
                 f"ECE {s['i_ece']:.3f}"))
    rows = d["calibration"]["uv_bins"]
    if rows:
        lines.append("  sigma bin        n   mean sigma  RMS err  mean|err|  within 1 sigma")
        for r in rows:
            lines.append(f"  {r['sigma_lo']:.3f}-{r['sigma_hi']:.3f} {r['n']:6d}   {r['mean_sigma']:.3f}      "
                         f"{r['rms_error']:.3f}    {r['mean_abs_error']:.3f}      {r['within_1sigma']:.3f}")
    return "\n".join(lines)
