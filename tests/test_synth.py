"""Posing rigs and synthetic COCO DensePose datasets: exact, valid, reproducible."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from scipy.spatial import cKDTree

from densemap import data
from densemap.annotation.coco import check_annotation, read_coco
from densemap.annotation.convert import REFERENCE_NAMES
from densemap.charts import reference_atlas
from densemap.synth.raster import project
from densemap.synth.rig import DEFAULT_LIMITS, RigError, load_rig, pose, random_pose
from densemap.synth import COARSE_OF_CHART, SceneOptions, draw_annotations, synth_dataset, synth_image

SPECIES = ("human", "chimp")
SMALL = SceneOptions(size=160, instances=(1, 3), min_point_area=100)


def reference(species):
    return data.reference_human() if species == "human" else data.reference_chimp()


@pytest.fixture(scope="module")
def scenes():
    """Three small images per species: (scene, annotations)."""
    return {sp: [synth_image(sp, 7, k, options=SMALL) for k in range(3)] for sp in SPECIES}


def instances_of(scene, anns, min_area=SMALL.min_area):
    """Pair each annotation with its instance index (annotations keep the instance order)."""
    vis = [i for i in range(len(scene.vertices)) if (scene.instance == i).sum() >= min_area]
    assert len(vis) == len(anns)
    return zip(vis, anns)


# ----------------------------------------------------------------------------- rigs
@pytest.mark.parametrize("species", SPECIES)
def test_rig_file_fits_its_mesh(species):
    rig = load_rig(species)
    mesh = reference(species).mesh
    assert rig.n_vertices == mesh.n_vertices and rig.n_joints == 19
    assert data.data_path(f"{species}_rig.npz").stat().st_size < 500_000
    np.testing.assert_allclose(rig.weight.sum(1), 1.0, atol=1e-9)
    assert rig.weight_index.shape[1] == 4 and (rig.weight >= 0).all()
    assert rig.parents[0] == -1 and (rig.parents[1:] < np.arange(1, 19)).all()
    # frames are orthonormal; right-side frames mirror the left ones
    A = rig.axes
    np.testing.assert_allclose(A @ np.swapaxes(A, 1, 2), np.broadcast_to(np.eye(3), A.shape), atol=1e-12)
    M = np.diag([-1.0, 1, 1])
    np.testing.assert_allclose(A[rig.index("elbow_right")], M @ A[rig.index("elbow_left")])


@pytest.mark.parametrize("species", SPECIES)
def test_identity_pose_is_the_rest_mesh(species):
    rig = load_rig(species)
    V = reference(species).mesh.vertices
    X, J = pose(V, rig, np.zeros((19, 3)), return_joints=True)
    np.testing.assert_allclose(X, V, atol=1e-12)
    np.testing.assert_allclose(J, rig.joints, atol=1e-12)


def test_a_joint_moves_only_its_subtree_rigidly():
    rig = load_rig("human")
    V = reference("human").mesh.vertices
    ang = np.zeros((19, 3))
    e, w = rig.index("elbow_left"), rig.index("wrist_left")
    ang[e] = [60, 0, 0]
    X, J = pose(V, rig, ang, return_joints=True)
    moved = np.isin(rig.weight_index, [e, w]) & (rig.weight > 0)
    still = ~moved.any(1)
    np.testing.assert_allclose(X[still], V[still], atol=1e-12)
    others = [j for j in range(19) if j != w]
    np.testing.assert_allclose(J[others], rig.joints[others], atol=1e-12)
    # bones keep their length; the elbow flexes forward (+z), the knee backward
    np.testing.assert_allclose(np.linalg.norm(J[w] - J[e]), np.linalg.norm(rig.joints[w] - rig.joints[e]))
    assert J[w, 2] > rig.joints[w, 2] + 0.5
    ang[:] = 0
    ang[rig.index("knee_left")] = [-60, 0, 0]
    _, J = pose(V, rig, ang, return_joints=True)
    a = rig.index("ankle_left")
    assert J[a, 2] < rig.joints[a, 2] - 1.0


def test_mirrored_angles_give_a_mirrored_pose():
    rig = load_rig("chimp")
    V = reference("chimp").mesh.vertices
    mirror = cKDTree(V).query(V * [-1, 1, 1])[1]
    assert np.abs(V[mirror] * [-1, 1, 1] - V).max() < 1e-9  # the chimp is exactly symmetric
    ang = random_pose(rig, np.random.default_rng(3))
    for j, n in enumerate(rig.names):
        if n.endswith("_right"):
            ang[j] = ang[rig.index(n[:-6] + "_left")]
        elif not n.endswith("_left"):
            ang[j, 1:] = 0  # twist / side bend of the trunk are not symmetric
    X = pose(V, rig, ang)
    err = np.abs(X[mirror] * [-1, 1, 1] - X).max()
    assert err < 0.05, err  # dm; the MakeHuman weights are symmetric to about 1e-3


def test_random_pose_respects_the_limits():
    rig = load_rig("human")
    rng = np.random.default_rng(0)
    lo = np.array([DEFAULT_LIMITS[n.rsplit("_", 1)[0] if n.endswith(("_left", "_right")) else n] for n in rig.names])
    for _ in range(20):
        a = random_pose(rig, rng)
        assert (a >= lo[..., 0] - 1e-12).all() and (a <= lo[..., 1] + 1e-12).all()
    assert (random_pose(rig, rng, scale=0) == 0).all()
    with pytest.raises(RigError, match="lo <= hi"):
        random_pose(rig, rng, limits={"knee": ((10, 0), (0, 0), (0, 0))})
    with pytest.raises(RigError, match=r"rotations must have shape \(19, 3\)"):
        pose(reference("human").mesh.vertices, rig, np.zeros((18, 3)))
    with pytest.raises(RigError, match="vertices must have shape"):
        pose(np.zeros((5, 3)), rig, np.zeros((19, 3)))
    with pytest.raises(ValueError, match=r"unknown species 'dog'; expected one of \['human', 'chimp'\]"):
        load_rig("dog")


# ----------------------------------------------------------------------------- annotations
@pytest.mark.parametrize("species", SPECIES)
def test_annotations_are_valid_densepose(scenes, species):
    n = reference(species).mesh.n_vertices
    count = 0
    for scene, anns in scenes[species]:
        assert scene.image.dtype == np.uint8 and scene.image.shape == (160, 160, 3)
        for a in anns:
            chk = check_annotation(a, n_vertices=n, ref_models=(REFERENCE_NAMES[species],))
            assert chk.error is None and not any(chk.reasons)
            assert a["iscrowd"] == 0 and a["category_id"] == 1 and len(a["dp_masks"]) == 14
            if "dp_x" in a:
                count += 1
                assert chk.kind == "chart" and chk.n_points == SMALL.points
                assert ((chk.x > 0) & (chk.x < 256) & (chk.y > 0) & (chk.y < 256)).all()
    assert count >= 3


@pytest.mark.parametrize("species", SPECIES)
def test_points_land_on_their_pixels(scenes, species):
    """(I, U, V) located on the posed mesh and projected = the pixel centre (dp_x, dp_y)."""
    atlas = reference_atlas(species)
    F = reference(species).mesh.faces
    nf = len(F)
    for scene, anns in scenes[species]:
        for i, a in instances_of(scene, anns):
            if "dp_x" not in a:
                continue
            loc = atlas.locate(np.asarray(a["dp_I"]).astype(int), np.asarray(a["dp_U"]), np.asarray(a["dp_V"]))
            assert (loc.face >= 0).all() and not loc.moved.any()
            P = np.einsum("pk,pkd->pd", loc.bary, scene.vertices[i][F[loc.face]])
            uv, _ = project(P, scene.camera)
            x, y, w, h = a["bbox"]
            xi = x + np.asarray(a["dp_x"]) * w / 256
            yi = y + np.asarray(a["dp_y"]) * h / 256
            assert np.hypot(uv[:, 0] - xi, uv[:, 1] - yi).max() < 1.0
            # the pixel under the point shows this instance, and dp_vertex is a corner of its face
            col, row = np.floor(xi).astype(int), np.floor(yi).astype(int)
            face = scene.face[row, col]
            assert ((face >= i * nf) & (face < (i + 1) * nf)).all()
            assert (F[face - i * nf] == np.asarray(a["dp_vertex"])[:, None]).any(1).all()


@pytest.mark.parametrize("species", SPECIES)
def test_boxes_masks_and_coarse_parts(scenes, species):
    charts = reference_atlas(species).charts
    nf = len(charts)
    for scene, anns in scenes[species]:
        for i, a in instances_of(scene, anns):
            m = mask_utils.decode(a["segmentation"]).astype(bool)
            np.testing.assert_array_equal(m, scene.instance == i)
            assert a["area"] == m.sum()
            rows, cols = np.nonzero(m)
            assert a["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
            # dp_masks: the coarse part of the face under each of the 256 x 256 cell centres
            x, y, w, h = (int(v) for v in a["bbox"])
            g = (np.arange(256) + 0.5) / 256
            gy, gx = y + (g * h).astype(int), x + (g * w).astype(int)
            f = scene.face[np.ix_(gy, gx)] - i * nf
            on = (f >= 0) & (f < nf)
            expect = np.where(on, COARSE_OF_CHART[charts[np.clip(f, 0, nf - 1)]], 0)
            got = np.zeros((256, 256), int)
            for k, r in enumerate(a["dp_masks"], 1):
                if r:
                    got[mask_utils.decode(r) > 0] = k
            np.testing.assert_array_equal(got, expect)


def test_occluded_instances_keep_box_and_mask_but_no_points():
    opt = SceneOptions(size=96, instances=(3, 3), min_point_area=10**6)
    _, anns = synth_image("human", 1, 0, options=opt)
    assert anns and all("dp_x" not in a and "segmentation" in a and "dp_masks" in a for a in anns)
    opt = SceneOptions(size=96, instances=(3, 3), min_area=10**6)
    assert synth_image("human", 1, 0, options=opt)[1] == []


def test_reproducible_from_the_seed():
    a = synth_image("chimp", 5, 2, options=SMALL)
    b = synth_image("chimp", 5, 2, options=SMALL)
    c = synth_image("chimp", 6, 2, options=SMALL)
    np.testing.assert_array_equal(a[0].image, b[0].image)
    assert json.dumps(a[1]) == json.dumps(b[1])
    assert not np.array_equal(a[0].image, c[0].image)


def test_options_are_checked():
    with pytest.raises(ValueError, match="size"):
        SceneOptions(size=(512, 256))
    with pytest.raises(ValueError, match="instances"):
        SceneOptions(instances=(0, 2))
    with pytest.raises(ValueError, match=r"unknown species 'dog'"):
        synth_image("dog", 0, 0)


# ----------------------------------------------------------------------------- datasets
def test_dataset_round_trips_through_pycocotools(tmp_path):
    coco = synth_dataset("chimp", 3, tmp_path, seed=1, options=SMALL, workers=1)
    path = tmp_path / "annotations.json"
    assert read_coco(path) == json.loads(json.dumps(coco))
    assert coco["categories"] == [{"id": 1, "name": "chimp", "supercategory": "chimp"}]
    assert coco["info"]["seed"] == 1 and coco["info"]["species"] == "chimp"
    api = COCO(str(path))
    assert sorted(api.getImgIds()) == [1, 2, 3]
    ids = [a["id"] for a in coco["annotations"]]
    assert ids == list(range(1, len(ids) + 1))
    from PIL import Image

    for img in coco["images"]:
        with Image.open(tmp_path / "images" / img["file_name"]) as im:
            assert im.size == (img["width"], img["height"]) and im.mode == "RGB"
    for a in api.loadAnns(api.getAnnIds()):
        m = api.annToMask(a)
        assert m.sum() == a["area"]
        x, y, w, h = a["bbox"]
        rows, cols = np.nonzero(m)
        assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (x, y, x + w, y + h)
        for r in a["dp_masks"]:
            if r:
                assert mask_utils.decode(r).shape == (256, 256)


def test_chimp_labels_convert_to_the_human(scenes):
    """Chimp-chart labels go through convert_annotations (with the ground-truth map) intact."""
    from densemap.annotation.convert import AnnotationConverter, convert_annotations
    from densemap.mapping import VertexMap

    chimp, human = data.reference_chimp(), data.reference_human()
    face, bary = data.chimp_to_human_ground_truth()
    corners = human.mesh.faces[face]
    vmap = VertexMap(indices=corners[np.arange(len(face)), bary.argmax(1)], distances=np.zeros(len(face)),
                     faces=face, bary=bary, corners=corners, n_target=human.mesh.n_vertices)
    conv = AnnotationConverter(chimp.mesh, reference_atlas("chimp"), human.mesh, reference_atlas("human"), vmap,
                               source_name=REFERENCE_NAMES["chimp"], target_name=REFERENCE_NAMES["human"])
    anns = [dict(a, id=k, image_id=1) for k, a in enumerate((a for _, aa in scenes["chimp"] for a in aa), 1)]
    out, report = convert_annotations({"images": [{"id": 1}], "annotations": anns}, conv)
    n = sum(len(a.get("dp_x", [])) for a in anns)
    assert report.n_points == n and n > 0
    assert sum(len(a.get("dp_x", [])) for a in out["annotations"]) == n
    for a in out["annotations"]:
        chk = check_annotation(a, n_vertices=human.mesh.n_vertices, ref_models=(REFERENCE_NAMES["human"],))
        assert chk.error is None and not any(chk.reasons)


@pytest.mark.slow
def test_worker_processes_do_not_change_the_dataset(tmp_path):
    a = synth_dataset("human", 6, tmp_path / "a", seed=4, options=SMALL, workers=1)
    b = synth_dataset("human", 6, tmp_path / "b", seed=4, options=SMALL, workers=2)
    assert a == b
    for img in a["images"]:
        name = img["file_name"]
        assert (tmp_path / "a" / "images" / name).read_bytes() == (tmp_path / "b" / "images" / name).read_bytes()


def test_overlay_panels(scenes):
    scene, anns = scenes["human"][0]
    out = draw_annotations(scene.image, anns)
    assert out.shape == (160, 640, 3) and out.dtype == np.uint8
    assert not np.array_equal(out[:, :160], scene.image)  # masks and boxes were drawn


def test_cli_synth_and_show(tmp_path):
    from densemap.cli.main import main

    out = tmp_path / "ds"
    res = CliRunner().invoke(main, ["synth", "--species", "human", "--images", "2", "--out", str(out),
                                    "--size", "128", "--instances", "2", "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "2 images" in res.output
    data_ = read_coco(out / "annotations.json")
    assert len(data_["images"]) == 2 and {im["width"] for im in data_["images"]} == {128}
    png = tmp_path / "show.png"
    res = CliRunner().invoke(main, ["show-annotations", str(out / "annotations.json"), "--image", "2", "-o", str(png)])
    assert res.exit_code == 0, res.output
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (4 * 512, 512)  # panels enlarged to a 512-pixel short side
    res = CliRunner().invoke(main, ["show-annotations", str(out / "annotations.json"), "--image", "9", "-o", str(png)])
    assert res.exit_code != 0 and "no image with id 9" in res.output
    res = CliRunner().invoke(main, ["synth", "--species", "human", "--images", "1", "--out", str(out), "--size", "9-5"])
    assert res.exit_code == 2 and "--size" in res.output
