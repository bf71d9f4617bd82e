"""``densemap predict --surface``: each detection's pixels as points on the reference mesh, for images and clips,
with a random-weights model (its detections and charts are arbitrary, which is all these properties need)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from test_predict_video import ckpt, model  # noqa: E402,F401 - the random-weights fixtures, shared
from test_video import write_clip  # noqa: E402

from densemap.charts import reference_atlas, surface_to_iuv  # noqa: E402
from densemap.data import reference  # noqa: E402
from densemap_models import clip_predict  # noqa: E402
from densemap_models.clip_outputs import decode_iuv  # noqa: E402
from densemap_models.predict import ClipSettings, predict_media  # noqa: E402
from densemap_models.surface_outputs import SurfaceFile, detection_surface  # noqa: E402

LOW = ClipSettings(score_thresh=0.0, birth_score=0.0, max_dets=2, smooth_radius=1, surface=True)


def _check_points(arrays: dict) -> None:
    """Vertex ids in range, points on the mesh, and the points' (I, U, V) equal to the predicted IUV."""
    mesh, atlas = reference("human").mesh, reference_atlas("human")
    n = len(arrays["vertex"])
    assert n > 0 and all(len(a) == n for a in arrays.values())
    face, bary, vertex = arrays["face"].astype(np.int64), arrays["bary"].astype(np.float64), arrays["vertex"]
    assert (face >= 0).all() and face.max() < mesh.n_faces  # the model's 24 charts are all in the atlas
    assert vertex.min() >= 0 and vertex.max() < mesh.n_vertices
    corners = mesh.faces[face]
    assert (vertex == corners[np.arange(n), np.argmax(bary, 1)]).all()  # the face corner nearest the point
    assert (bary >= -1e-6).all() and np.allclose(bary.sum(1), 1, atol=1e-6)
    on_face = np.einsum("nk,nkd->nd", bary, mesh.vertices[corners])
    assert np.abs(arrays["point"] - on_face).max() < 1e-5 * np.ptp(mesh.vertices)  # float32 points
    back = surface_to_iuv(face, bary, atlas)
    pred = arrays["iuv"].astype(np.float64) / np.array([1.0, 255.0, 255.0])
    assert (back[:, 0] == pred[:, 0]).all()
    inside = arrays["distance"] == 0
    assert inside.mean() > 0.5  # most predicted (U, V) fall inside their chart
    assert np.abs(back[inside, 1:] - pred[inside, 1:]).max() < 1e-6
    # outside its chart a (U, V) moves to the chart's nearest point: by the distance written
    moved = np.linalg.norm(back[~inside, 1:] - pred[~inside, 1:], axis=1)
    assert np.allclose(moved, arrays["distance"][~inside], atol=1e-5)


def test_images_write_surface_points(tmp_path, model):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (60, 106, 3), dtype=np.uint8)).save(data / "a.png")
    out = tmp_path / "out"
    s = predict_media(model, [data], out, settings=LOW)
    assert s.images == 1
    recs = json.loads((out / "results.json").read_text())
    assert recs and all(r["surface"]["file"] == "a_surface.npz" for r in recs)
    iuv_image = np.asarray(Image.open(out / "a_iuv.png"))
    with np.load(out / "a_surface.npz") as z:
        meta = json.loads(str(z["meta.json"]))
        assert meta["mesh_sha1"] == reference("human").mesh.sha1 and meta["keys"] == [f"d{k}" for k in range(len(recs))]
        for k, r in enumerate(recs):
            arrays = {name: z[f"{r['surface']['key']}.{name}"] for name in meta["arrays"]}
            assert len(arrays["vertex"]) == r["surface"]["points"]
            _check_points(arrays)
            # each row is the pixel of the detection's box IUV it says (uv_data), at its place in the image
            box_iuv = decode_iuv(r["uv_data"])
            x, y = arrays["pixel"].T
            x0, y0 = int(r["bbox"][0]), int(r["bbox"][1])
            assert (box_iuv[:, y - y0, x - x0].T == arrays["iuv"]).all()
            assert (box_iuv[0] > 0).sum() == len(x)
            if k == 0:  # the best detection is drawn on top of the image IUV
                assert (iuv_image[y, x] == arrays["iuv"]).all()


def test_clip_writes_surface_points_per_frame_and_detection(tmp_path, model):
    clip = write_clip(tmp_path / "data" / "c.avi", frames=2, fps=1)
    out = tmp_path / "out"
    predict_media(model, [clip], out, settings=LOW)
    doc = json.loads((out / "c.json").read_text())
    dets = [(f["frame"], k, d) for f in doc["frames"] for k, d in enumerate(f["detections"])]
    assert dets and doc["settings"]["surface"] is True
    with np.load(out / "c_surface.npz") as z:
        assert json.loads(str(z["meta.json"]))["keys"] == [f"f{frame}_d{k}" for frame, k, _ in dets]
        for frame, k, d in dets:
            assert d["surface"] == {"file": "c_surface.npz", "key": f"f{frame}_d{k}", "points": d["surface"]["points"]}
            arrays = {name: z[f"f{frame}_d{k}.{name}"] for name in ("pixel", "iuv", "vertex", "face", "bary",
                                                                    "point", "distance")}
            assert len(arrays["vertex"]) == d["surface"]["points"]
            assert (decode_iuv(d["uv_data"])[0] > 0).sum() == d["surface"]["points"]  # the smoothed IUV's pixels
            _check_points(arrays)


@pytest.mark.slow  # ~10 s on a busy 2-core machine: four runs
def test_clip_surface_file_is_complete_and_resumable(tmp_path, model, monkeypatch):
    data = tmp_path / "data"
    write_clip(data / "c0.avi", frames=1, fps=1)
    write_clip(data / "c1.avi", frames=2, fps=1)
    out = tmp_path / "out"
    real, calls = clip_predict.detect, {"n": 0}

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # the second frame of the second clip
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(clip_predict, "detect", flaky)
    with pytest.raises(KeyboardInterrupt):
        predict_media(model, [data], out, settings=LOW)
    assert (out / "c0.json").is_file() and (out / "c0_surface.npz").is_file()
    assert not (out / "c1.json").exists() and not (out / "c1_surface.npz").exists()
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"
    monkeypatch.setattr(clip_predict, "detect", real)
    s = predict_media(model, [data], out, settings=LOW)
    assert (s.clips_skipped, s.clips) == (1, 1) and (out / "c1_surface.npz").is_file()
    # a clip finished without --surface is predicted again when --surface is asked for
    predict_media(model, [data / "c0.avi"], tmp_path / "plain", settings=ClipSettings(score_thresh=1.0))
    s = predict_media(model, [data / "c0.avi"], tmp_path / "plain", settings=ClipSettings(score_thresh=1.0, surface=True))
    assert (s.clips, s.clips_skipped) == (1, 0) and (tmp_path / "plain" / "c0_surface.npz").is_file()


def test_detection_surface_of_known_values():
    atlas = reference_atlas("human")
    faces = np.array([10, 5000, 20000])
    bary = np.array([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2], [1 / 3, 1 / 3, 1 / 3]])
    iuv = surface_to_iuv(faces, bary, atlas)
    q = np.c_[iuv[:, 0], np.floor(iuv[:, 1:] * 255)].astype(np.uint8)  # as chart_result quantises
    box = np.zeros((3, 1, 3), np.uint8)
    box[:, 0, :] = q.T
    s = detection_surface(box, [5.7, 2.2, 8.7, 3.2])
    assert s["pixel"].tolist() == [[5, 2], [6, 2], [7, 2]]
    assert (s["iuv"] == q).all()
    _check_points(s)


def test_surface_file_abort_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with SurfaceFile(tmp_path / "x_surface.npz") as f:
            f.add("d0", {"vertex": np.arange(3)})
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with SurfaceFile(tmp_path / "y_surface.npz") as f:
        f.add("d0", {"vertex": np.arange(3)})
    with np.load(tmp_path / "y_surface.npz") as z:
        assert z["d0.vertex"].tolist() == [0, 1, 2] and json.loads(str(z["meta.json"]))["keys"] == ["d0"]


def test_cli_surface_flag(tmp_path, ckpt):
    from click.testing import CliRunner

    from densemap.cli.main import main

    Image.fromarray(np.random.default_rng(2).integers(0, 255, (60, 106, 3), dtype=np.uint8)).save(tmp_path / "b.png")
    r = CliRunner().invoke(main, ["predict", "--ckpt", str(ckpt), str(tmp_path / "b.png"), "-o", str(tmp_path / "out"),
                                  "--score-thresh", "0", "--surface", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "b_surface.npz").is_file()
