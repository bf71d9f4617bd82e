"""``densemap train``: train the auto-calibrated DensePose R-CNN on COCO DensePose data."""

from __future__ import annotations

import logging

import click

from .options import (check_outputs, device_option, echo_log, echo_result, library_errors, resolve_device,
                      threads_option, verbosity)


@click.command("train")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Dataset folder (annotations.json + images/) or COCO DensePose JSON. "
                   "Default: render a small synthetic human set into OUT/synth_data.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Image folder when --data is a JSON file (e.g. coco/train2014).")
@click.option("--extra", "extra", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="More COCO JSON merged into the dataset by image file_name (repeatable).")
@click.option("--pseudo", "pseudo", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Pseudo-labels from `densemap pseudo-label` (repeatable); their images join the training set.")
@click.option("--pseudo-images", type=click.Path(exists=True, file_okay=False), default=None,
              help="Image folder of the --pseudo files (default: the folder recorded in each file).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder (checkpoints, logs, config).")
@click.option("--config", "config_path", default=None,
              help="YAML file or packaged recipe name (synth_cpu, densepose_coco_r50). Default: synth_cpu on a CPU, "
                   "densepose_coco_r50 on CUDA; with --init, the initial checkpoint's; with --resume, the run's own.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key (repeatable), e.g. --set max_iter=500 --set lr=0.001.")
@click.option("--classes", default=None, help="Comma-separated category names or ids merged into one class.")
@click.option("--backbone-weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Local backbone state dict (e.g. ImageNet resnet50); nothing is downloaded.")
@click.option("--uv-symmetry", type=click.Path(exists=True, dir_okay=False), default=None,
              help="DensePose UV_symmetry_transforms.mat for flips (default: derived from the embedded human).")
@click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Initial weights (checkpoint); refused when under 95% of the model's tensors fit.")
@click.option("--init-partial", is_flag=True, help="With --init: load whatever fits, however little.")
@click.option("--resume", is_flag=True,
              help="Continue OUT/last.pt exactly; --set max_iter=N (or --max-minutes) extends a finished run.")
@click.option("--max-minutes", type=click.FloatRange(min=0), default=None, help="Stop (resumably) after this long.")
@device_option("training")
@threads_option
@click.pass_context
@library_errors
def train(ctx, data, images, extra, pseudo, pseudo_images, out, config_path, overrides, classes, backbone_weights, uv_symmetry,
          init, init_partial, resume, max_minutes, device, threads):
    """Train Mask R-CNN + calibrated DensePose head; checkpoints and logs go to OUT.

    Multi-GPU: torchrun --nproc_per_node=8 -m densemap.cli.main train ... (see docs/training.md).
    """
    from densemap_models.train import run_training

    if verbosity(ctx) > 1:
        logging.getLogger("densemap_models").setLevel(logging.DEBUG)
    values = {"classes": [c.strip() for c in classes.split(",") if c.strip()] if classes else None,
              "backbone_weights": backbone_weights, "uv_symmetry": uv_symmetry}
    check_outputs([("--out", out, "dir", ("config.yaml", "last.pt", "model_final.pt", "log.jsonl", "log.csv"),
                    64 << 20)],
                  {"--data": data, "--images": images, "--extra": extra, "--pseudo": pseudo, "--init": init,
                   "--backbone-weights": backbone_weights, "--uv-symmetry": uv_symmetry})
    result = run_training(out, data=data, config=config_path, overrides=overrides, values=values, images=images,
                          extra_annotations=extra, pseudo=[(p, pseudo_images) for p in pseudo], init=init,
                          init_partial=init_partial, resume=resume, max_minutes=max_minutes,
                          device=resolve_device(device, threads), progress=verbosity(ctx) > 0)
    state = "finished" if result.finished else "stopped (continue with --resume)"
    losses = ", ".join(f"{k}={v:.3f}" for k, v in result.last_losses.items())
    echo_result(f"{out}: step {result.step} {state} in {result.seconds / 60:.1f} min; {losses}")
    echo_log(ctx, f"checkpoint: {result.checkpoint}")
