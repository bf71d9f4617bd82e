"""The rasteriser against analytic scenes and a brute-force ray caster."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import icosphere
from devices import DEVICES

from densemap.synth.raster import Camera, Fragments, default_chunk, look_at, project, rasterize


def front_camera(width=64, height=48, focal=50.0) -> Camera:
    """At the origin, looking along +z (OpenCV axes: x right, y down)."""
    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    return Camera(K, np.eye(3), np.zeros(3), width, height)


def pixel_rays(cam: Camera) -> np.ndarray:
    """(H, W, 3) camera-space directions (z = 1) through the pixel centres."""
    rows, cols = np.mgrid[0 : cam.height, 0 : cam.width] + 0.5
    uv1 = np.stack([cols, rows, np.ones_like(cols)], -1)
    return uv1 @ np.linalg.inv(cam.K).T


def brute_force(V, F, cam: Camera):
    """Nearest ray-triangle hit per pixel by testing every face (slow path): (face, depth)."""
    d = pixel_rays(cam).reshape(-1, 3)
    X = V @ cam.R.T + cam.t
    best = np.full(len(d), np.inf)
    face = np.full(len(d), -1)
    for f, (a, b, c) in enumerate(X[F]):
        n = np.cross(b - a, c - a)
        den = d @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (a @ n) / den
        P = d * t[:, None]
        # inside test: solve P = a + s (b - a) + r (c - a) in the triangle's plane
        M = np.stack([b - a, c - a], 1)
        sr = np.linalg.lstsq(M, (P - a).T, rcond=None)[0].T
        inside = (sr >= -1e-12).all(1) & (sr.sum(1) <= 1 + 1e-12) & np.isfinite(t) & (t > 0)
        closer = inside & (t < best)
        best[closer] = t[closer]
        face[closer] = f
    return face.reshape(cam.height, cam.width), best.reshape(cam.height, cam.width)


TRI = np.array([[-0.31, -0.23, 2.0], [0.37, -0.19, 2.0], [0.03, 0.33, 2.0]])  # in front of the camera


def test_triangle_covers_expected_pixels():
    cam = front_camera()
    F = np.array([[0, 2, 1]])  # counter-clockwise seen from the camera: faces it
    fr = rasterize(TRI, F, cam)
    assert isinstance(fr, Fragments) and fr.face.shape == (48, 64) and fr.bary.shape == (48, 64, 3)
    # expected: pixel centres whose ray meets the triangle, in the image plane (2-D test)
    uv, _ = project(TRI, cam)
    rows, cols = np.mgrid[0:48, 0:64] + 0.5
    P = np.stack([cols, rows], -1)
    sign = []
    for i in range(3):
        a, b = uv[i], uv[(i + 1) % 3]
        sign.append((b[0] - a[0]) * (P[..., 1] - a[1]) - (b[1] - a[1]) * (P[..., 0] - a[0]))
    sign = np.stack(sign)
    expected = (sign >= 0).all(0) | (sign <= 0).all(0)
    assert expected.sum() > 100
    np.testing.assert_array_equal(fr.face >= 0, expected)
    assert (fr.face[expected] == 0).all()
    assert np.isinf(fr.depth[~expected]).all() and (fr.bary[~expected] == 0).all()


def test_barycentrics_interpolate_to_the_ray_hit():
    cam = look_at([0.3, -0.2, -1.5], [0, 0, 2], up=[0.1, 1, 0], focal=120.0, width=50, height=40)
    tilted = TRI + np.array([[0, 0, 0.4], [0, 0, -0.3], [0, 0, 0.2]])  # not parallel to the image
    fr = rasterize(tilted, np.array([[0, 1, 2]]), cam)
    on = fr.face >= 0
    assert on.sum() > 50
    hit = np.einsum("pk,kd->pd", fr.bary[on], tilted)
    # the ray from the camera centre through the pixel centre, intersected with the plane
    rows, cols = np.nonzero(on)
    d = cam.ray(cols + 0.5, rows + 0.5)
    n = np.cross(tilted[1] - tilted[0], tilted[2] - tilted[0])
    t = ((tilted[0] - cam.center) @ n) / (d @ n)
    expect = cam.center + d * t[:, None]
    assert np.abs(hit - expect).max() < 1e-5
    np.testing.assert_allclose(fr.bary[on].sum(1), 1.0, atol=1e-12)
    assert (fr.bary[on] >= 0).all()
    # depth is the camera-space z of the hit
    _, z = project(expect, cam)
    np.testing.assert_allclose(fr.depth[on], z, atol=1e-9)


def test_depth_test_and_deterministic_ties():
    cam = front_camera(32, 32, focal=40.0)
    near = TRI * [1, 1, 0.5] + [0.05, 0, 0]
    V = np.r_[TRI, near, TRI]  # face 0 far, face 1 near, face 2 a copy of face 0
    F = np.array([[0, 2, 1], [3, 5, 4], [6, 8, 7]])
    fr = rasterize(V, F, cam)
    both = rasterize(V[:3], F[:1], cam).face >= 0
    only_near = rasterize(V, F[1:2], cam).face >= 0
    assert (fr.face[only_near] == 1).all()
    assert (fr.face[both & ~only_near] == 0).all()  # the coincident copy (face 2) loses the tie
    # same answer whatever the order of the faces and the chunking
    perm = np.array([2, 1, 0])
    fr2 = rasterize(V, F[perm], cam, chunk=7)
    np.testing.assert_array_equal(np.where(fr2.face >= 0, perm[np.maximum(fr2.face, 0)], -1)[only_near], 1)
    assert (fr2.face[both & ~only_near] == 0).all()  # face 0 of the permuted list = the old face 2


def test_backface_culling_and_near_plane():
    cam = front_camera()
    away = np.array([[0, 1, 2]])  # clockwise seen from the camera
    assert (rasterize(TRI, away, cam).face >= 0).any()
    assert (rasterize(TRI, away, cam, cull_backfaces=True).face < 0).all()
    assert (rasterize(TRI, away[:, ::-1], cam, cull_backfaces=True).face >= 0).any()
    behind = TRI * [1, 1, -1]
    assert (rasterize(behind, away, cam).face < 0).all()
    crossing = TRI.copy()
    crossing[0, 2] = -1.0
    assert (rasterize(crossing, away, cam).face < 0).all()  # dropped, not clipped


def test_sphere_matches_brute_force_ray_casting():
    mesh = icosphere(2, radius=1.0)
    cam = look_at([0.4, 0.9, 3.2], [0, 0, 0], focal=40.0, width=40, height=36)
    fr = rasterize(mesh.vertices, mesh.faces, cam)
    face, depth = brute_force(mesh.vertices, mesh.faces, cam)
    np.testing.assert_array_equal(fr.face >= 0, face >= 0)
    on = face >= 0
    np.testing.assert_allclose(fr.depth[on], depth[on], atol=1e-9)  # the nearest surface, exactly
    same = fr.face[on] == face[on]
    assert same.mean() > 0.97  # the rest are pixel centres on a shared edge (same depth)
    # culling changes nothing on a closed, outward-oriented mesh
    np.testing.assert_array_equal(rasterize(mesh.vertices, mesh.faces, cam, cull_backfaces=True).face, fr.face)
    # hits lie on the faces
    hit = np.einsum("pk,pkd->pd", fr.bary[on], mesh.vertices[mesh.faces[fr.face[on]]])
    assert np.abs(np.linalg.norm(hit, axis=1) - 1).max() < 0.06  # chords of the unit sphere


def test_chunking_does_not_change_the_result():
    mesh = icosphere(3)
    cam = look_at([0, 0, 3.0], [0, 0, 0], focal=60.0, width=48, height=48)
    a = rasterize(mesh.vertices, mesh.faces, cam)
    b = rasterize(mesh.vertices, mesh.faces, cam, chunk=37)  # chunks end inside faces, too
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    small = icosphere(1)
    cam = look_at([0, 0, 3.0], [0, 0, 0], focal=20.0, width=16, height=16)
    for x, y in zip(rasterize(small.vertices, small.faces, cam), rasterize(small.vertices, small.faces, cam, chunk=1)):
        np.testing.assert_array_equal(x, y)
    big = rasterize(TRI, np.array([[0, 2, 1]]), front_camera(), chunk=10)  # one face, many chunks
    np.testing.assert_array_equal(big.face, rasterize(TRI, np.array([[0, 2, 1]]), front_camera()).face)


def test_torch_in_torch_out_and_numpy_in_numpy_out():
    mesh = icosphere(1)
    cam = look_at([0, 0, 3.0], [0, 0, 0], focal=30.0, width=24, height=20)
    fn = rasterize(mesh.vertices, mesh.faces, cam)
    assert isinstance(fn.face, np.ndarray) and fn.face.dtype == np.int64
    ft = rasterize(torch.tensor(mesh.vertices), torch.tensor(mesh.faces), cam)
    assert isinstance(ft.face, torch.Tensor) and ft.face.device.type == "cpu"
    np.testing.assert_array_equal(ft.face.numpy(), fn.face)
    np.testing.assert_allclose(ft.bary.numpy(), fn.bary)
    f32 = rasterize(torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces), cam)
    assert f32.bary.dtype == torch.float32
    assert (f32.face.numpy() == fn.face).mean() > 0.99


def test_look_at_and_project():
    cam = look_at([0, 0, 5.0], [0, 0, 0], focal=100.0, width=80, height=60)
    uv, z = project(np.array([[0, 0, 0], [0, 1.0, 0], [1.0, 0, 0]]), cam)
    np.testing.assert_allclose(uv[0], [40, 30])
    assert uv[1, 1] < 30  # world up is image up
    assert uv[2, 0] > 40  # looking along -z with y up, +x is to the right
    np.testing.assert_allclose(z, 5.0)
    np.testing.assert_allclose(cam.center, [0, 0, 5.0], atol=1e-12)


def test_bad_input():
    cam = front_camera()
    with pytest.raises(ValueError, match=r"faces\[0\] = \[0, 1, 3\] references a vertex outside 0..2"):
        rasterize(TRI, np.array([[0, 1, 3]]), cam)
    with pytest.raises(ValueError, match="vertices must have shape"):
        rasterize(TRI[:, :2], np.array([[0, 1, 2]]), cam)
    with pytest.raises(ValueError, match="integer"):
        rasterize(TRI, np.array([[0.0, 1.0, 2.0]]), cam)
    with pytest.raises(ValueError, match="finite"):
        rasterize(TRI * np.array([[np.nan, 1, 1], [1, 1, 1], [1, 1, 1]]), np.array([[0, 1, 2]]), cam)
    with pytest.raises(ValueError, match="rotation"):
        Camera(np.eye(3), 2 * np.eye(3), np.zeros(3), 10, 10)
    with pytest.raises(ValueError, match="parallel"):
        look_at([0, 0, 0], [0, 1, 0], focal=10, width=8, height=8)


def test_empty_mesh_gives_background():
    fr = rasterize(np.zeros((0, 3)), np.zeros((0, 3), np.int64), front_camera(8, 6))
    assert (fr.face == -1).all() and np.isinf(fr.depth).all()


@pytest.mark.parametrize("device", DEVICES)
def test_device_matches_cpu(device):
    mesh = icosphere(3)
    cam = look_at([0.2, 0.5, 3.0], [0, 0, 0], focal=80.0, width=96, height=80)
    cpu = rasterize(mesh.vertices, mesh.faces, cam, chunk=1000)  # many blocks
    dev = rasterize(torch.tensor(mesh.vertices, device=device), torch.tensor(mesh.faces, device=device), cam)
    assert dev.face.device.type == device
    np.testing.assert_array_equal(dev.face.cpu().numpy(), cpu.face)
    np.testing.assert_allclose(dev.bary.cpu().numpy(), cpu.bary, atol=1e-9)
    also = rasterize(mesh.vertices, mesh.faces, cam, device=device)
    assert isinstance(also.face, np.ndarray)  # numpy in, numpy out, computed on the device
    np.testing.assert_array_equal(also.face, cpu.face)
    f32 = rasterize(torch.tensor(mesh.vertices, dtype=torch.float32, device=device), mesh.faces, cam)
    assert f32.bary.dtype == torch.float32 and (f32.face.cpu().numpy() == cpu.face).mean() > 0.999


def test_default_chunk_scales_with_free_device_memory():
    assert default_chunk("cpu") == 2**21 and default_chunk("cpu", 10**12) == 2**21
    assert default_chunk("cuda", 16 * 2**30) == 2**24  # a quarter of the free memory, 256 B a pair
    assert default_chunk("cuda", 140 * 2**30) == 2**26  # capped
    assert default_chunk("cuda", 2**20) == 2**18  # floor

