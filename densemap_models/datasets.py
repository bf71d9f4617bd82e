"""COCO DensePose datasets for training: DensePose-COCO layout and densemap's synthetic sets.

:class:`DensePoseDataset` reads one or more COCO JSON files (the first gives the image folder;
extra files -- e.g. pseudo-labels -- are merged in by image ``file_name``) and yields
``(image (3, H, W) float in [0, 1], target dict)`` in the form :mod:`densemap_models.rcnn` trains
on. Every selected category becomes the single foreground class (``classes`` selects them by
name or id); crowd instances (``iscrowd: 1``) are not trained as instances: their boxes become
the target's ``ignore_boxes``, regions where anchors and proposals are not trained as background
(a pseudo-label file marks the teacher's uncertain detections so). Instances without DensePose points train the box,
the mask and the DensePose foreground only (heterogeneous training). Per-point fields other
than ``dp_x, dp_y, dp_I, dp_U, dp_V`` (e.g. a pseudo-label ``dp_conf``) are ignored.

Flips mirror the image, boxes and masks, map I through :data:`~densemap_models.symmetry.POINT_FLIP`
and (U, V) through a :class:`~densemap_models.symmetry.UVSymmetry`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from densemap._images import read_image
from densemap.annotation.coco import dp_mask_labels, read_coco, rle_for_pycocotools
from densemap.errors import AnnotationError

from .dataset_checks import check_dataset

__all__ = ["DensePoseDataset", "collate", "resolve_data", "instance_mask", "box_grid_mask", "box_grid_parts"]

GRID = 256


def resolve_data(data: str | os.PathLike, images: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """``(annotation JSON, image folder)`` from a dataset folder (``DIR/annotations.json`` +
    ``DIR/images``) or a JSON file (images in ``images``, else ``JSON_DIR/images``, else ``JSON_DIR``)."""
    p = Path(data)
    if p.is_dir():
        js = p / "annotations.json"
        if not js.is_file():
            raise AnnotationError(f"{p}: a dataset folder must hold annotations.json (and images/)")
        root = Path(images) if images else (p / "images")
    elif p.is_file():
        js = p
        root = Path(images) if images else (p.parent / "images" if (p.parent / "images").is_dir() else p.parent)
    else:
        raise AnnotationError(f"{p}: no such dataset folder or annotation file")
    if not root.is_dir():
        raise AnnotationError(f"{root}: image folder not found (pass --images)")
    return js, root


def instance_mask(ann: dict, height: int, width: int) -> np.ndarray | None:
    """(H, W) uint8 instance mask from ``segmentation`` (RLE or polygons), or None."""
    from pycocotools import mask as mask_utils

    seg = ann.get("segmentation")
    if not seg:
        return None
    if isinstance(seg, list):
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return None
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    else:
        rle = rle_for_pycocotools(seg)
    return mask_utils.decode(rle).astype(np.uint8)


def box_grid_mask(ann: dict) -> np.ndarray | None:
    """(256, 256) uint8 foreground of ``dp_masks`` on the box grid (union of the 14 parts), or None."""
    lab = dp_mask_labels(ann)
    return None if lab is None else (lab > 0).astype(np.uint8)


def box_grid_parts(ann: dict) -> np.ndarray | None:
    """(256, 256) uint8 coarse part (1..14, 0 = background) of ``dp_masks`` on the box grid, or None
    when the annotation has no per-part masks (none, or a single foreground RLE)."""
    m = ann.get("dp_masks")
    if not isinstance(m, list) or len(m) != 14:
        return None
    return dp_mask_labels(ann).astype(np.uint8)


def _crop_to_grid(mask: np.ndarray, bbox) -> np.ndarray:
    """Image mask -> (256, 256) box grid (nearest sampling at grid-cell centres)."""
    x, y, w, h = bbox
    g = (np.arange(GRID) + 0.5) / GRID
    xs = np.clip((x + g * w).astype(np.int64), 0, mask.shape[1] - 1)
    ys = np.clip((y + g * h).astype(np.int64), 0, mask.shape[0] - 1)
    return mask[np.ix_(ys, xs)]


class DensePoseDataset(torch.utils.data.Dataset):
    """Images and DensePose targets from COCO JSON.

    Parameters
    ----------
    annotations : path or list of paths
        COCO DensePose JSON files; the first one's images are the dataset, later files add
        annotations to images with the same ``file_name`` (pseudo-labels hook).
    image_root : path
    classes : sequence of str or int, optional
        Categories kept (by name or id), all merged into one foreground class; default all.
    train : bool
        Random horizontal flips (with ``flip_prob``) when True.
    uv_symmetry : UVSymmetry, optional
        Default: the embedded human's exact mirror (:func:`~densemap_models.symmetry.default_uv_symmetry`).
    skip_empty : bool
        Drop images without any kept instance (training).
    pseudo : sequence of (path, image_root or None)
        Pseudo-labelled COCO files (``densemap pseudo-label``) whose images join the
        dataset: each image is read from its own root (the given one, else the file's
        ``info["image_root"]``, else the file's folder). Every pseudo instance is
        foreground whatever its category; per-point confidences are not used.
    invalid : {"error", "drop"}
        What a bad image or annotation does when the dataset is built
        (:func:`~densemap_models.dataset_checks.check_dataset`): an error naming the file,
        image, annotation and field (default), or dropped and counted in ``self.dropped``.

    Raises
    ------
    AnnotationError
        A malformed file; an image that is not an image, not of its recorded size or over
        the pixel limit; a box, mask or point that does not fit its image or chart
        (non-finite values, ``dp_I`` outside 1..24, U/V outside [0, 1], ``dp_x``/``dp_y``
        outside [0, 256]) unless ``invalid="drop"``.
    """

    def __init__(self, annotations, image_root, *, classes=(), train: bool = True, flip_prob: float = 0.5,
                 uv_symmetry=None, skip_empty: bool = False, seed: int = 0, pseudo=(), invalid: str = "error"):
        files = [annotations] if isinstance(annotations, (str, os.PathLike)) else list(annotations)
        if not files:
            raise AnnotationError("no annotation file given")
        data = read_coco(files[0])
        self.root = Path(image_root)
        self.images = list(data.get("images", []))
        cats = data.get("categories", [])
        if not all(isinstance(c, dict) and "id" in c for c in cats) or not all("id" in im for im in self.images):
            raise AnnotationError(f"{files[0]}: every image and category needs an 'id'")
        keep_ids = {c["id"] for c in cats}
        if classes:
            wanted = {str(c) for c in classes}
            keep_ids = {c["id"] for c in cats if c.get("name") in wanted or str(c["id"]) in wanted}
            if not keep_ids:
                raise AnnotationError(f"{files[0]}: none of the classes {sorted(wanted)} is among the categories "
                                      f"{[c.get('name') for c in cats]}")
        self.category_ids = keep_ids
        by_name = {im.get("file_name"): im["id"] for im in self.images}
        self.anns: dict[int, list] = {im["id"]: [] for im in self.images}
        for a in data["annotations"]:
            if a.get("image_id") in self.anns and (not cats or a.get("category_id") in keep_ids):
                self.anns[a["image_id"]].append(a)
        wanted = {str(c) for c in classes} if classes else None
        for extra in files[1:]:
            d = read_coco(extra)
            ids = {im["id"]: im["file_name"] for im in d.get("images", [])}
            ok_cats = None
            if wanted is not None and d.get("categories"):
                ok_cats = {c["id"] for c in d["categories"] if c.get("name") in wanted or str(c["id"]) in wanted}
            for a in d["annotations"]:
                img = by_name.get(ids.get(a.get("image_id")))
                if img is not None and (ok_cats is None or a.get("category_id") in ok_cats):
                    self.anns[img].append(a)
        for path, root in pseudo:
            self._add_pseudo(path, root)
        self.dropped = check_dataset(self.images, self.anns, self.root, where=str(files[0]), invalid=invalid)
        if skip_empty:
            self.images = [im for im in self.images if any(not a.get("iscrowd", 0) for a in self.anns[im["id"]])]
        self.train, self.flip_prob = train, float(flip_prob)
        self._uv_symmetry = uv_symmetry
        self.seed = int(seed)

    def _add_pseudo(self, path, root) -> None:
        d = read_coco(path)
        anns, k = d.get("annotations", []), (d.get("info") or {}).get("k")
        if not any(not a.get("iscrowd", 0) for a in anns):
            raise AnnotationError(f"{path}: holds no pseudo-labelled detection; nothing to train on "
                                  "(see the counts of `densemap pseudo-label`)")
        if (k is None or k > 0) and not any(a.get("dp_x") for a in anns):
            raise AnnotationError(f"{path}: holds {len(anns)} detections but no pseudo-labelled point "
                                  f"(k={k}); a student would learn no chart from it")
        if root is None:
            root = (d.get("info") or {}).get("image_root") or Path(path).parent
        next_id = max(self.anns, default=0) + 1
        new_id = {}
        for im in d.get("images", []):
            new_id[im["id"]] = next_id
            self.images.append({**im, "id": next_id, "_root": str(root)})
            self.anns[next_id] = []
            next_id += 1
        for a in d.get("annotations", []):
            if a.get("image_id") in new_id:
                self.anns[new_id[a["image_id"]]].append(a)

    @property
    def uv_symmetry(self):
        if self._uv_symmetry is None:
            from .symmetry import default_uv_symmetry

            self._uv_symmetry = default_uv_symmetry()
        return self._uv_symmetry

    def __len__(self) -> int:
        return len(self.images)

    def load_image(self, index: int) -> np.ndarray:
        im = self.images[index]
        return read_image(Path(im.get("_root", self.root)) / im["file_name"])

    def target(self, index: int, height: int, width: int) -> dict:
        """The target dict of image ``index`` (unflipped)."""
        im = self.images[index]
        boxes, masks, grid, grid_ok, parts, parts_ok, pts, ignore = [], [], [], [], [], [], [], []
        for a in self.anns[im["id"]]:
            x, y, w, h = [float(t) for t in a["bbox"]]
            if w < 1 or h < 1:
                continue
            if a.get("iscrowd", 0):
                ignore.append([x, y, x + w, y + h])
                continue
            k = len(boxes)
            boxes.append([x, y, x + w, y + h])
            m = instance_mask(a, height, width)
            g = box_grid_mask(a)
            if m is None and g is not None:  # paste dp_masks into the image
                m = np.zeros((height, width), np.uint8)
                xs = np.arange(max(int(x), 0), min(int(np.ceil(x + w)), width))
                ys = np.arange(max(int(y), 0), min(int(np.ceil(y + h)), height))
                gx = np.clip(((xs + 0.5 - x) / w * GRID).astype(int), 0, GRID - 1)
                gy = np.clip(((ys + 0.5 - y) / h * GRID).astype(int), 0, GRID - 1)
                m[np.ix_(ys, xs)] = g[np.ix_(gy, gx)]
            if g is None and m is not None:
                g = _crop_to_grid(m, (x, y, w, h))
            if m is None:  # box only: the box is the mask
                m = np.zeros((height, width), np.uint8)
                m[int(y) : int(np.ceil(y + h)), int(x) : int(np.ceil(x + w))] = 1
            masks.append(m)
            grid.append(g if g is not None else np.zeros((GRID, GRID), np.uint8))
            grid_ok.append(g is not None)
            pg = box_grid_parts(a)
            parts.append(pg if pg is not None else np.zeros((GRID, GRID), np.uint8))
            parts_ok.append(pg is not None)
            if a.get("dp_x") and a.get("dp_I"):
                n = len(a["dp_x"])
                p = np.zeros((n, 6))
                p[:, 0] = k
                p[:, 1] = np.asarray(a["dp_x"], dtype=np.float64) / GRID
                p[:, 2] = np.asarray(a["dp_y"], dtype=np.float64) / GRID
                p[:, 3] = np.asarray(a["dp_I"], dtype=np.float64)
                p[:, 4] = np.asarray(a["dp_U"], dtype=np.float64)
                p[:, 5] = np.asarray(a["dp_V"], dtype=np.float64)
                pts.append(p[(p[:, 3] >= 1) & (p[:, 3] <= 24)])
        n = len(boxes)
        return {
            "boxes": torch.tensor(np.asarray(boxes, np.float32).reshape(n, 4)),
            "labels": torch.ones(n, dtype=torch.int64),
            "masks": torch.from_numpy(np.stack(masks) if n else np.zeros((0, height, width), np.uint8)),
            "dp_box_masks": torch.from_numpy(np.stack(grid) if n else np.zeros((0, GRID, GRID), np.uint8)),
            "dp_mask_valid": torch.tensor(grid_ok, dtype=torch.bool),
            "dp_box_parts": torch.from_numpy(np.stack(parts) if n else np.zeros((0, GRID, GRID), np.uint8)),
            "dp_parts_valid": torch.tensor(parts_ok, dtype=torch.bool),
            "dp_points": torch.tensor(np.concatenate(pts) if pts else np.zeros((0, 6)), dtype=torch.float32),
            "ignore_boxes": torch.tensor(np.asarray(ignore, np.float32).reshape(len(ignore), 4)),
            "image_id": int(im["id"]),
        }

    def flip(self, image: np.ndarray, target: dict) -> tuple[np.ndarray, dict]:
        """Mirror an image and its target left-right (charts and U/V through the symmetry tables)."""
        W = image.shape[1]
        t = dict(target)
        for key in ("boxes", "ignore_boxes"):
            if key in target:
                b = target[key].clone()
                b[:, [0, 2]] = W - target[key][:, [2, 0]]
                t[key] = b
        t["masks"] = target["masks"].flip(-1)
        t["dp_box_masks"] = target["dp_box_masks"].flip(-1)
        if "dp_box_parts" in target:  # mirrored parts swap sides: DensePose's mask flip table
            from .symmetry import MASK_FLIP

            t["dp_box_parts"] = torch.from_numpy(MASK_FLIP.astype(np.uint8))[target["dp_box_parts"].flip(-1).long()]
        p = target["dp_points"].clone()
        if len(p):
            p[:, 1] = 1.0 - p[:, 1]
            I2, U2, V2 = self.uv_symmetry(p[:, 3].numpy(), p[:, 4].numpy(), p[:, 5].numpy())
            p[:, 3] = torch.from_numpy(np.asarray(I2, np.float32))
            p[:, 4] = torch.from_numpy(np.asarray(U2, np.float32))
            p[:, 5] = torch.from_numpy(np.asarray(V2, np.float32))
        t["dp_points"] = p
        return np.ascontiguousarray(image[:, ::-1]), t

    def __getitem__(self, index: int):
        """Image ``index % len(self)``; the flip is drawn from ``(seed, index)``, so an index
        ``epoch * len(self) + i`` gives epoch-dependent but reproducible flips (exact resume)."""
        epoch, index = divmod(int(index), len(self))
        img = self.load_image(index)
        t = self.target(index, img.shape[0], img.shape[1])
        flip = np.random.default_rng([self.seed, epoch, index]).random() < self.flip_prob
        if self.train and self.flip_prob > 0 and flip:
            img, t = self.flip(img, t)
        return torch.from_numpy(img.copy()).permute(2, 0, 1).float().div_(255.0), t


def collate(batch):
    """List of (image, target) -> (list of images, list of targets)."""
    return [b[0] for b in batch], [b[1] for b in batch]
