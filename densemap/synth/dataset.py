"""Synthetic COCO DensePose datasets: annotations of a scene, and whole datasets on disk.

:func:`annotate_scene` turns a :class:`~densemap.synth.scene.Scene` into COCO DensePose
annotations with exact ground truth (box, RLE mask, 14 ``dp_masks``, points with
``dp_x, dp_y, dp_I, dp_U, dp_V, dp_vertex`` on the species' own charts);
:func:`synth_dataset` writes ``images/*.png`` and ``annotations.json``. Image ``k`` of a
dataset draws all its randomness from ``numpy.random.default_rng([seed, k])``, so a
dataset is the same whatever the number of worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .._validate import check_choice
from ..annotation.coco import REFERENCE_NAMES, encode_rle, encode_rles, write_coco
from ..data import SPECIES, Species
from .scene import Scene, SceneOptions, render_scene, species_assets

__all__ = ["CATEGORIES", "MASK_GRID", "annotate_scene", "synth_image", "synth_dataset"]

CATEGORIES = {"human": "person", "chimp": "chimp"}
MASK_GRID = 256


def _part_rles(coarse: np.ndarray) -> list:
    """The 14 coarse-part masks of a (256, 256) label map as RLEs (``[]`` for an absent part)."""
    present = np.bincount(coarse.ravel(), minlength=15)[1:] > 0
    ks = np.flatnonzero(present) + 1
    out: list = [[] for _ in range(14)]
    if len(ks):
        for k, r in zip(ks, encode_rles(coarse[..., None] == ks)):
            out[k - 1] = r
    return out


def annotate_scene(scene: Scene, rng: np.random.Generator, *, options: SceneOptions | None = None) -> list[dict]:
    """COCO DensePose annotations of the visible instances of ``scene``.

    Parameters
    ----------
    scene : Scene
    rng : numpy.random.Generator
        Chooses the sampled points.
    options : SceneOptions, optional
        ``points``, ``min_area`` and ``min_point_area`` are used.

    Returns
    -------
    list of dict
        One per instance with at least ``min_area`` visible pixels, without ``id`` /
        ``image_id``: ``category_id`` (1), ``bbox`` (tight box of the visible mask,
        ``[x, y, w, h]``), ``area``, ``iscrowd`` (0), ``segmentation`` (RLE, counts as
        str), ``dp_masks`` (14 RLEs of 256 x 256 over the box, ``[]`` for an absent
        part), ``ref_model``; and, when at least ``min_point_area`` pixels are visible,
        ``dp_x``, ``dp_y`` (pixel centres, ``(col + 0.5 - x) / w * 256``), ``dp_I``,
        ``dp_U``, ``dp_V`` (the mesh's own charts) and ``dp_vertex`` (corner with the
        largest barycentric weight).
    """
    opt = options or SceneOptions()
    A = species_assets(scene.species)
    atlas = A["atlas"]
    nf = len(A["faces"])
    inst = scene.instance
    H, W = inst.shape
    anns = []
    for i in range(len(scene.vertices)):
        mask = inst == i
        area = int(mask.sum())
        if area < opt.min_area:
            continue
        rows = np.flatnonzero(mask.any(1))
        cols = np.flatnonzero(mask.any(0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        w, h = x1 - x0, y1 - y0
        ann = {"category_id": 1, "iscrowd": 0, "bbox": [float(x0), float(y0), float(w), float(h)],
               "area": float(area), "segmentation": encode_rle(mask)}
        # coarse parts on the 256 x 256 grid over the box (nearest pixel centre)
        gx = x0 + np.minimum(((np.arange(MASK_GRID) + 0.5) * w / MASK_GRID).astype(np.int64), w - 1)
        gy = y0 + np.minimum(((np.arange(MASK_GRID) + 0.5) * h / MASK_GRID).astype(np.int64), h - 1)
        fsub = scene.face[np.ix_(gy, gx)]
        on = (fsub >= i * nf) & (fsub < (i + 1) * nf)
        coarse = np.where(on, A["coarse"][np.where(on, fsub - i * nf, 0)], 0)
        ann["dp_masks"] = _part_rles(coarse)
        ann["ref_model"] = REFERENCE_NAMES[scene.species]
        if area >= opt.min_point_area:
            pix = np.flatnonzero(mask.ravel())
            pick = np.sort(rng.choice(pix, size=min(opt.points, len(pix)), replace=False))
            r, c = np.divmod(pick, W)
            f = scene.face.ravel()[pick] - i * nf
            b = scene.bary.reshape(-1, 3)[pick]
            I, U, V = atlas.chart_coords(f, b)
            ann["dp_x"] = np.round((c + 0.5 - x0) / w * 256.0, 4).tolist()
            ann["dp_y"] = np.round((r + 0.5 - y0) / h * 256.0, 4).tolist()
            ann["dp_I"] = I.astype(float).tolist()
            ann["dp_U"] = np.round(U, 6).tolist()
            ann["dp_V"] = np.round(V, 6).tolist()
            ann["dp_vertex"] = atlas.nearest_vertex(f, b).tolist()
        anns.append(ann)
    return anns


def synth_image(species: Species, seed: int, index: int, *, options: SceneOptions | None = None,
                device=None) -> tuple[Scene, list[dict]]:
    """Image ``index`` of the dataset with ``seed``: its scene and annotations (no ids).

    Examples
    --------
    >>> scene, anns = synth_image("chimp", seed=0, index=3, options=SceneOptions(size=64, instances=(1, 1)))
    >>> scene.image.shape, [a["ref_model"] for a in anns]
    ((64, 64, 3), ['densemap_chimp'])
    """
    rng = np.random.default_rng([int(seed), int(index)])
    scene = render_scene(species, rng, options=options, device=device)
    return scene, annotate_scene(scene, rng, options=options)


# ----------------------------------------------------------------------------- datasets
def _work(args) -> tuple[int, dict, list[dict]]:
    species, seed, index, options, image_dir, name = args
    from PIL import Image

    scene, anns = synth_image(species, seed, index, options=options)
    Image.fromarray(scene.image).save(os.path.join(image_dir, name), compress_level=1)
    H, W = scene.face.shape
    return index, {"file_name": name, "width": int(W), "height": int(H)}, anns


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _init_worker():
    import torch

    torch.set_num_threads(1)


def synth_dataset(species: Species, n_images: int, out_dir: str | os.PathLike, *, seed: int = 0,
                  options: SceneOptions | None = None, workers: int | None = None,
                  progress: bool | Callable[[int], None] | None = None) -> dict:
    """Write a synthetic COCO DensePose dataset: ``out_dir/images/*.png`` and ``out_dir/annotations.json``.

    Parameters
    ----------
    species : {"human", "chimp"}
    n_images : int
    out_dir : path
        Created if missing; existing images of the same names are overwritten.
    seed : int
        Image ``k`` uses ``numpy.random.default_rng([seed, k])``: the output does not
        depend on ``workers``.
    options : SceneOptions, optional
    workers : int, optional
        Processes (default: the CPUs this process may use, at most 8; 1 for fewer than
        16 images). Each runs torch on one thread.
    progress : bool or callable, optional
        True: a tqdm bar over the images (a widget in a notebook); a callable is called
        with the number of images finished after each one; None or False: silent.

    Returns
    -------
    dict
        The COCO dict that was written (``info``, ``images``, ``annotations``, ``categories``).

    Raises
    ------
    ValueError
        Unknown species, ``n_images < 1``.
    """
    from .._version import __version__

    check_choice("species", species, SPECIES)
    if int(n_images) < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    opt = options or SceneOptions()
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    if workers is None:
        avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = 1 if n_images < 16 else max(1, min(8, avail))
    width = max(6, len(str(n_images - 1)))
    jobs = [(species, int(seed), k, opt, str(image_dir), f"{k:0{width}d}.png") for k in range(int(n_images))]
    results = [None] * len(jobs)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=f"synth {species}", unit="img")
        progress = lambda done: bar.update(done - bar.n)  # noqa: E731
    if workers <= 1:
        for done, job in enumerate(jobs, 1):
            r = _work(job)
            results[r[0]] = r
            if progress:
                progress(done)
    else:
        import multiprocessing as mp

        # torch and a plain fork do not mix; a fork server imports torch once, then forks workers
        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["torch", "densemap.synth.dataset"])
        else:
            ctx = mp.get_context("spawn")
        # one BLAS / OpenMP thread per worker: the processes share the cores; the variables
        # must be set before the workers (or the fork server) import numpy, then are restored
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})
        try:
            pool = ctx.Pool(workers, initializer=_init_worker)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        with pool:
            for done, r in enumerate(pool.imap_unordered(_work, jobs, chunksize=4), 1):
                results[r[0]] = r
                if progress:
                    progress(done)
    if bar is not None:
        bar.close()
    images, annotations = [], []
    for index, img, anns in results:
        image_id = index + 1
        images.append({"id": image_id, **img})
        for a in anns:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, **a})
    size = opt.size if np.isscalar(opt.size) else list(opt.size)
    coco = {
        "info": {"description": f"densemap synthetic DensePose dataset ({species})",
                 "generator": "densemap.synth.synth_dataset", "densemap_version": __version__,
                 "species": species, "seed": int(seed), "images": int(n_images),
                 "options": {"size": size, "instances": list(opt.instances), "points": opt.points,
                             "min_area": opt.min_area, "min_point_area": opt.min_point_area,
                             "pose_scale": opt.pose_scale},
                 "charts": f"dp_I/U/V on the {species} reference atlas (densemap.charts.reference_atlas)"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": CATEGORIES[species], "supercategory": CATEGORIES[species]}],
    }
    write_coco(coco, out_dir / "annotations.json")
    return coco
