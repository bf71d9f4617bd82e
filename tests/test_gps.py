"""GPS / GPSm and DensePose AP: analytic values on tiny cases."""

import math

import numpy as np
import pytest

from densemap.charts import ChartAtlas
from densemap.mesh import Mesh
from densemap_models.evaluate import calibration, densepose_ap
from densemap_models.gps import GeodesicTarget, default_target, gps_from_vertices, gps_pair, part_kappa


def test_part_kappa_table():
    assert part_kappa([1, 2, 3, 5, 7, 11, 15, 19, 23]).tolist() == [0.351, 0.351, 0.107, 0.126, 0.237, 0.173, 0.142,
                                                                      0.128, 0.150]


def test_gps_hand_computed():
    gt_v = np.array([0, 1, 2, 3, -1])
    pred_v = np.array([0, 5, -1, 7, 4])  # exact, 0.1 m off, background, 0.2 m off; last GT has no vertex
    gt_I = np.array([1, 3, 23, 5, 1])
    d = np.array([0.0, 0.1, 0.0, 0.2, 0.3])
    expected = (1 + math.exp(-0.01 / (2 * 0.107**2)) + 0 + math.exp(-0.04 / (2 * 0.126**2))) / 4
    assert gps_from_vertices(gt_v, pred_v, gt_I, d) == pytest.approx(expected, rel=1e-12)
    # the CVPR'18 constant kappa
    expected = (1 + math.exp(-0.01 / (2 * 0.255**2)) + math.exp(-0.04 / (2 * 0.255**2))) / 4
    assert gps_from_vertices(gt_v, pred_v, gt_I, d, kappa=0.255) == pytest.approx(expected, rel=1e-12)
    assert gps_from_vertices(np.array([-1]), np.array([0]), np.array([1]), np.array([0.0])) == 0.0


def test_gps_perfect_prediction_is_one_on_the_human():
    rng = np.random.default_rng(0)
    I = rng.integers(1, 25, 40)
    U, V = rng.random(40), rng.random(40)
    assert gps_pair(default_target(), I, U, V, I, U, V) == 1.0


def _grid_target(n=11):
    """Flat unit square (decimetres) with one chart: (u, v) = (x, y); geodesics = Euclidean."""
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    verts = np.c_[x.ravel(), y.ravel(), np.zeros(n * n)]
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a = i * n + j
            faces += [[a, a + 1, a + n + 1], [a, a + n + 1, a + n]]
    faces = np.array(faces)
    mesh = Mesh(verts, faces, name="grid")
    atlas = ChartAtlas(faces, np.ones(len(faces), int), verts[faces][:, :, :2], n_vertices=len(verts), name="grid atlas")
    return GeodesicTarget(mesh, atlas, units_to_metres=0.1, name="grid")


def test_grid_target_vertices_and_metres():
    t = _grid_target()
    v = t.vertices([1, 1, 0], [0.0, 0.52, 0.3], [0.0, 0.49, 0.3])
    assert v[0] == 0 and v[2] == -1
    assert v[1] == 5 * 11 + 5  # nearest vertex of (0.52, 0.49) is (0.5, 0.5)
    d = t.pair_distances([0, 0, 60], [10, 0, 60])
    assert d[1] == 0 and d[2] == 0
    assert d[0] == pytest.approx(0.1, rel=0.1)  # 1 dm along the boundary = 0.1 m (heat method on a coarse grid: ~6 %)


def _coco_case():
    """One image, one annotated GT in box [10, 10, 51, 61] (full-box dp_masks) + one ignore-GT."""
    from pycocotools import mask as mask_utils

    full = np.asfortranarray(np.ones((256, 256), np.uint8))
    rle = mask_utils.encode(full)
    rle["counts"] = rle["counts"].decode("ascii")
    rng = np.random.default_rng(1)
    n = 20
    ann = {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [10.0, 10.0, 51.0, 61.0], "area": 51.0 * 61,
           "dp_x": (rng.integers(0, 50, n) * 5.0 + 0.5).tolist(), "dp_y": (rng.integers(0, 60, n) * 255 / 61 + 0.5).tolist(),
           "dp_I": rng.integers(1, 25, n).astype(float).tolist(),
           "dp_U": (rng.integers(0, 256, n) / 255).tolist(), "dp_V": (rng.integers(0, 256, n) / 255).tolist(),
           "dp_masks": [rle] + [{}] * 13}
    ignore = {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [60.0, 5.0, 30.0, 40.0], "area": 1200.0}
    return ann, ignore


def _perfect_det(ann):
    x, y, w, h = ann["bbox"]
    iuv = np.zeros((3, int(h), int(w)), np.uint8)
    iuv[0] = 1  # foreground everywhere (mask IoU 1)
    px = np.trunc(np.asarray(ann["dp_x"]) * w / 255).astype(int)
    py = np.trunc(np.asarray(ann["dp_y"]) * h / 255).astype(int)
    iuv[0, py, px] = ann["dp_I"]
    iuv[1, py, px] = np.round(np.asarray(ann["dp_U"]) * 255)
    iuv[2, py, px] = np.round(np.asarray(ann["dp_V"]) * 255)
    sigma = np.full((2, int(h), int(w)), 0.01, np.float32)
    conf = np.ones((int(h), int(w)), np.float32)
    return {"iuv": iuv, "sigma": sigma, "conf": conf, "fg_conf": conf}, np.array([x, y, x + w, y + h])


def _pred(dets, scores):
    from pycocotools import mask as mask_utils

    return [{"image_id": 1, "height": 100, "width": 100, "boxes": np.array([b for _, b in dets]),
             "scores": np.asarray(scores), "dp": [d for d, _ in dets],
             "masks": [mask_utils.encode(np.asfortranarray(np.zeros((100, 100), np.uint8))) for _ in dets]}]


def test_densepose_ap_perfect_prediction_is_100():
    ann, ignore = _coco_case()
    det, box = _perfect_det(ann)
    res = densepose_ap({1: [ann, ignore]}, _pred([(det, box)], [0.9]))
    assert res["GPS"]["AP"] == pytest.approx(100.0)
    assert res["GPSm"]["AP"] == pytest.approx(100.0)
    assert res["GPS"]["AR"] == pytest.approx(100.0)


def test_densepose_ap_ignore_gt_detection_is_not_a_false_positive():
    ann, ignore = _coco_case()
    det, box = _perfect_det(ann)
    x, y, w, h = ignore["bbox"]
    on_ignore = {"iuv": np.ones((3, int(h), int(w)), np.uint8), "sigma": np.ones((2, int(h), int(w)), np.float32),
                 "conf": np.ones((int(h), int(w)), np.float32), "fg_conf": np.ones((int(h), int(w)), np.float32)}
    preds = _pred([(on_ignore, np.array([x, y, x + w, y + h])), (det, box)], [0.95, 0.9])
    assert densepose_ap({1: [ann, ignore]}, preds)["GPS"]["AP"] == pytest.approx(100.0)
    # without the ignore-GT the higher-scoring detection is a false positive
    assert densepose_ap({1: [ann]}, preds)["GPS"]["AP"] < 100.0


def test_densepose_ap_wrong_charts_score_zero():
    ann, _ = _coco_case()
    det, box = _perfect_det(ann)
    det["iuv"][0][det["iuv"][0] > 0] = 0  # all background: GPS 0, no match
    det["iuv"][0][0, 0] = 1
    res = densepose_ap({1: [ann]}, _pred([(det, box)], [0.9]))
    assert res["GPS"]["AP"] == 0.0


def test_calibration_table_counts_points():
    ann, _ = _coco_case()
    det, box = _perfect_det(ann)
    cal = calibration({1: [ann]}, _pred([(det, box)], [0.9]))
    s = cal["summary"]
    assert s["i_accuracy"] == 1.0 and s["uv_points"] == 2 * len(set(zip(ann["dp_x"], ann["dp_y"])))
    assert s["uv_rms_error"] < 1e-6
