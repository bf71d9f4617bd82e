"""Shared fixtures: tiny meshes built in code, with known geometry."""

from __future__ import annotations

import os

import atexit
import shutil
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# the tests (and the commands they start) keep their eigenbases in a private cache, never the user's
os.environ["DENSEMAP_CACHE"] = tempfile.mkdtemp(prefix="densemap-test-cache-")
atexit.register(shutil.rmtree, os.environ["DENSEMAP_CACHE"], ignore_errors=True)

import numpy as np
import pytest

from densemap.mesh import Mesh
from densemap.parts import PartLabels


def grid_mesh(n: int = 11, size: float = 1.0) -> Mesh:
    """Flat n x n grid of squares split into triangles, in the z=0 plane (geodesic = Euclidean)."""
    xs = np.linspace(0.0, size, n)
    x, y = np.meshgrid(xs, xs, indexing="xy")
    v = np.c_[x.ravel(), y.ravel(), np.zeros(n * n)]
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    f = np.r_[np.c_[a, b, c], np.c_[a, c, d]]
    return Mesh(v, f, name="grid")


def icosphere(subdivisions: int = 3, radius: float = 1.0) -> Mesh:
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return Mesh(s.vertices, s.faces, name="icosphere")


def octant_parts(mesh: Mesh) -> PartLabels:
    """8 parts by the signs of x, y, z."""
    v = mesh.vertices
    lab = (v[:, 0] > 0).astype(int) + 2 * (v[:, 1] > 0) + 4 * (v[:, 2] > 0)
    return PartLabels(lab, [f"octant{k}" for k in range(8)], source="octants")


def read_png(path) -> np.ndarray:
    """(H, W, 3) uint8 pixels of a PNG."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture
def gl():
    """The off-screen OpenGL backend VTK renders with; skips the test without one."""
    from densemap import viz
    from densemap.errors import GLBackendError

    try:
        return viz.check_offscreen_gl()
    except GLBackendError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def grid():
    return grid_mesh()


@pytest.fixture
def sphere():
    return icosphere()


@pytest.fixture
def tetra():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return Mesh(v, f, name="tetra")
