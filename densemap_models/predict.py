"""Inference on image files: IUV images, overlays and JSON results.

:func:`predict_images` runs a model on images and writes, per image ``NAME``:

* ``NAME_iuv.png`` -- the image-size IUV (channel 0 = I, 1 = U x 255, 2 = V x 255; DensePose's
  ``labels_uv_uint8`` pasted at each box, higher scores on top);
* ``NAME_overlay.png`` -- the image with the charts (I) coloured and U/V iso-lines, boxes drawn;
* one ``results.json`` for all images: per detection ``bbox`` (XYWH), ``score``, ``uv_shape``
  (3, h, w) and ``uv_data`` (base64 PNG of the box IUV, the DensePose challenge format), plus
  the mean predicted sigma and calibrated confidence of the detection.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from .postprocess import chart_result

__all__ = ["predict_images", "predict_checkpoint", "paste_iuv", "overlay"]


def paste_iuv(shape, boxes, results) -> np.ndarray:
    """(H, W, 3) uint8 image IUV from box results (first = highest score, drawn last)."""
    H, W = shape
    out = np.zeros((H, W, 3), np.uint8)
    for b, r in reversed(list(zip(boxes, results))):
        iuv = r["iuv"].transpose(1, 2, 0)
        x0, y0 = int(b[0]), int(b[1])
        ys, xs = slice(max(y0, 0), min(y0 + iuv.shape[0], H)), slice(max(x0, 0), min(x0 + iuv.shape[1], W))
        if ys.stop <= ys.start or xs.stop <= xs.start:
            continue
        patch = iuv[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
        fg = patch[..., 0] > 0
        out[ys, xs][fg] = patch[fg]
    return out


def overlay(image: np.ndarray, iuv: np.ndarray, boxes=(), scores=()) -> Image.Image:
    """Charts coloured over the image, U/V iso-lines every 0.1, boxes with scores."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    colours = (np.array([cmap(i % 20)[:3] for i in range(25)]) * 255).astype(np.uint8)
    img = image.astype(np.float32).copy()
    fg = iuv[..., 0] > 0
    img[fg] = 0.45 * img[fg] + 0.55 * colours[iuv[..., 0][fg]]
    for c in (1, 2):
        q = iuv[..., c].astype(np.int32) * 10 // 256
        edge = np.zeros_like(fg)
        edge[:, 1:] |= q[:, 1:] != q[:, :-1]
        edge[1:] |= q[1:] != q[:-1]
        img[edge & fg] = 255
    pil = Image.fromarray(img.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for b, s in zip(boxes, scores):
        draw.rectangle([float(t) for t in b], outline=(255, 255, 0))
        draw.text((float(b[0]) + 2, float(b[1]) + 1), f"{s:.2f}", fill=(255, 255, 0))
    return pil


def _png_b64(iuv: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(iuv.transpose(1, 2, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


@torch.no_grad()
def predict_images(model, paths, out_dir: str | os.PathLike, *, device="cpu", score_thresh: float = 0.5,
                   max_dets: int = 20, progress: bool = False) -> Path:
    """Run ``model`` on image files; write IUV PNGs, overlays and ``results.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval().to(device)
    results = []
    it = list(paths)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="predict", unit="img")
    for p in it:
        p = Path(p)
        with Image.open(p) as f:
            img = np.asarray(f.convert("RGB"))
        x = torch.from_numpy(img.copy()).permute(2, 0, 1).float().div_(255.0).to(device)
        r = model([x])[0]
        keep = torch.nonzero(r["scores"] >= score_thresh).flatten()[:max_dets]
        boxes = r["boxes"][keep].cpu().numpy()
        scores = r["scores"][keep].cpu().numpy()
        dp = r["densepose"][keep.to(r["densepose"].fine_segm.device)]
        charts = [chart_result(dp[k], boxes[k]) for k in range(len(keep))]
        iuv = paste_iuv(img.shape[:2], boxes, charts)
        Image.fromarray(iuv).save(out / f"{p.stem}_iuv.png")
        overlay(img, iuv, boxes, scores).save(out / f"{p.stem}_overlay.png")
        for b, s, c in zip(boxes, scores, charts):
            fg = c["iuv"][0] > 0
            results.append({
                "file_name": p.name, "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                "score": float(s), "category_id": 1, "uv_shape": list(c["iuv"].shape), "uv_data": _png_b64(c["iuv"]),
                "mean_sigma_uv": float(c["sigma"][:, fg].mean()) if fg.any() else None,
                "mean_chart_confidence": float(c["conf"][fg].mean()) if fg.any() else None,
            })
    (out / "results.json").write_text(json.dumps(results))
    return out


def predict_checkpoint(ckpt, paths, out_dir, *, device="cpu", score_thresh: float = 0.5, progress: bool = False) -> Path:
    """What ``densemap predict`` does: load a checkpoint and run :func:`predict_images`."""
    from .train import load_checkpoint

    model, _, _ = load_checkpoint(ckpt, device=device)
    return predict_images(model, paths, out_dir, device=device, score_thresh=score_thresh, progress=progress)
