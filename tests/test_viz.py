"""Tests of densemap.viz: off-screen pictures, the GL backend check, colours, atomic PNG writes.

Rendering tests are marked ``gl`` and skip when no off-screen OpenGL backend works; the
GL-check failure path is tested with a monkeypatched probe, so it never touches VTK.
"""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import trimesh
from conftest import read_png

from densemap.viz import gl as gl_probe
from densemap.viz.palette import _PAIRS as PAIRS
from densemap import viz
from densemap.errors import GLBackendError
from densemap.mesh import Mesh
from densemap.parts import PartLabels

NAMES = ["arm_left", "arm_right", "leg_left", "leg_right"]


@pytest.fixture
def sphere():
    t = trimesh.creation.icosphere(subdivisions=3)
    return Mesh(t.vertices, t.faces, name="icosphere")


def quadrant_labels(mesh):
    """4 parts by the signs of x and y: 0 (x<0, y<0), 1 (x>0, y<0), 2 (x<0, y>0), 3 (x>0, y>0)."""
    x, y = mesh.vertices[:, 0], mesh.vertices[:, 1]
    return (x > 0).astype(np.int64) + 2 * (y > 0)


@pytest.fixture
def parts(sphere):
    return PartLabels(quadrant_labels(sphere), NAMES)


@pytest.fixture
def fresh_probe(monkeypatch):
    """Forget the cached probe result before and after the test, with no backend forced."""
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    gl_probe._probe_all.cache_clear()
    yield
    gl_probe._probe_all.cache_clear()


def colour_set(img):
    return {tuple(int(c) for c in px) for px in np.unique(img.reshape(-1, 3), axis=0)}


def u8_set(colors):
    return {tuple(int(c) for c in row) for row in np.rint(np.asarray(colors) * 255).astype(int)}


# ----------------------------------------------------------------------------- GL check (no rendering)
def test_gl_check_failure_names_packages(monkeypatch, fresh_probe):
    calls = []

    def probe(backend):
        calls.append(backend)
        return f"lib{backend} not found"

    monkeypatch.setattr(gl_probe, "_probe", probe)
    with pytest.raises(GLBackendError, match=r"apt-get install libegl1 libgl1-mesa-dri") as info:
        viz.check_offscreen_gl()
    msg = str(info.value)
    assert "libosmesa6" in msg
    assert "egl: libegl not found" in msg and "osmesa: libosmesa not found" in msg
    assert calls == ["egl", "osmesa"]
    assert "VTK_DEFAULT_OPENGL_WINDOW" not in os.environ


def test_gl_failure_stops_rendering_before_vtk(monkeypatch, fresh_probe, sphere, parts, tmp_path):
    monkeypatch.setattr(gl_probe, "_probe", lambda backend: "test render crashed (signal 11)")
    with pytest.raises(GLBackendError, match="libosmesa6"):
        viz.render_parts(sphere, parts, tmp_path / "parts.png", fallback=False)
    with pytest.raises(GLBackendError, match="libosmesa6"):  # exact id colours need VTK
        viz.render_parts(sphere, parts, tmp_path / "parts.png", ids_as_colors=True)
    assert list(tmp_path.iterdir()) == []


def test_gl_check_falls_back_to_osmesa_and_selects_it(monkeypatch, fresh_probe):
    tried = []

    def probe(backend):
        tried.append(backend)
        return None if backend == "osmesa" else "test render crashed (signal 11)"

    monkeypatch.setattr(gl_probe, "_probe", probe)
    assert viz.check_offscreen_gl() == "osmesa"
    assert os.environ["VTK_DEFAULT_OPENGL_WINDOW"] == "vtkOSOpenGLRenderWindow"
    assert viz.check_offscreen_gl() == "osmesa"
    assert tried == ["egl", "osmesa"]  # cached: probed once per process


def test_gl_check_honours_forced_backend(monkeypatch, fresh_probe):
    tried = []
    monkeypatch.setattr(gl_probe, "_probe", lambda b: tried.append(b))
    monkeypatch.setenv("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    assert viz.check_offscreen_gl() == "osmesa"
    assert tried == ["osmesa"]


def test_gl_check_unknown_forced_backend(monkeypatch, fresh_probe):
    monkeypatch.setenv("VTK_DEFAULT_OPENGL_WINDOW", "vtkNoSuchWindow")
    with pytest.raises(GLBackendError, match="vtkNoSuchWindow: unknown VTK_DEFAULT_OPENGL_WINDOW"):
        viz.check_offscreen_gl()


def test_probe_reports_missing_library(monkeypatch):
    monkeypatch.setattr(gl_probe.ctypes.util, "find_library", lambda name: None)
    assert gl_probe._probe("osmesa") == "libOSMesa not found"


def test_probe_reports_crash_and_timeout(monkeypatch):
    monkeypatch.setattr(gl_probe.ctypes.util, "find_library", lambda name: f"lib{name}.so.1")
    stderr = "\x1b[33m2026-01-01 (0.2s) [7F19] vtkOSOpenGLRenderWindow:150   WARN| libOSMesa not found.\x1b[0m\n"
    crashed = subprocess.CompletedProcess([], -11, stdout="", stderr=stderr)
    monkeypatch.setattr(gl_probe.subprocess, "run", lambda *a, **k: crashed)
    assert gl_probe._probe("osmesa") == "test render crashed (signal 11): libOSMesa not found."

    def hang(*args, **kwargs):
        raise subprocess.TimeoutExpired(args[0], kwargs["timeout"])

    monkeypatch.setattr(gl_probe.subprocess, "run", hang)
    assert gl_probe._probe("egl").startswith("test render timed out after")


def test_import_is_cheap():
    code = "import sys, densemap.viz; print('pyvista' in sys.modules, 'vtkmodules' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ----------------------------------------------------------------------------- colours
def test_part_palette_distinct_and_not_grey():
    for n in (0, 1, 14, 28, 60):
        pal = viz.part_palette(n)
        assert pal.shape == (n, 3)
        assert ((pal >= 0) & (pal <= 1)).all()
        got = u8_set(pal)
        assert len(got) == n
        assert not got & u8_set([viz.UNLABELLED_COLOR, viz.BACKGROUND_COLOR])
    with pytest.raises(ValueError, match="n must be >= 0"):
        viz.part_palette(-1)


def test_part_colors_pair_left_and_right():
    names = ["Upper Arm Left", "Upper Arm Right", "head", "leg_l", "leg_r"]
    c = viz.part_colors(names)
    assert len(u8_set(c)) == 5
    np.testing.assert_allclose(c[[0, 1]], PAIRS[0])  # dark and light shade of one hue
    np.testing.assert_allclose(c[2], PAIRS[1, 0])
    np.testing.assert_allclose(c[[3, 4]], PAIRS[2])


def test_part_colors_falls_back_to_palette_for_many_parts():
    names = [f"p{k}" for k in range(30)]
    np.testing.assert_allclose(viz.part_colors(names), viz.part_palette(30))


def test_color_field_position(sphere):
    c = viz.color_field(sphere)
    assert c.shape == (sphere.n_vertices, 3)
    v = sphere.vertices
    for axis in range(3):
        np.testing.assert_allclose(c[np.argmin(v[:, axis]), axis], 0.0)
        np.testing.assert_allclose(c[np.argmax(v[:, axis]), axis], 1.0)
    flat = Mesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]])
    np.testing.assert_allclose(viz.color_field(flat)[:, 2], 0.5)
    with pytest.raises(ValueError, match=r"unknown color field kind 'normal'; expected one of \['position'\]"):
        viz.color_field(sphere, "normal")


def test_pictures_colour_faces_by_the_atlas_rule():
    # the one face-majority rule (densemap.parts.face_labels) decides a face's colour,
    # so pictures agree with the chart atlas on boundary faces: (5, 7, -1) -> 5, not corner 0's
    from densemap.parts import face_labels
    from densemap.viz.palette import colour_spec, to_u8

    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [2, 0, 0]], float)
    faces = np.array([[0, 1, 2], [1, 3, 2], [1, 4, 3], [4, 0, 2]])
    labels = np.array([7, 5, 7, 5, -1])
    kind, rgb, _ = colour_spec(Mesh(v, faces), labels, colors=viz.part_palette(8))
    expected = face_labels(faces, labels)
    assert kind == "cell" and expected.tolist() == [7, 5, 5, 7]
    np.testing.assert_array_equal(rgb, to_u8(viz.part_palette(8))[expected])


def test_ids_from_pixels():
    colors = viz.part_palette(3)
    u8 = np.rint(np.vstack([colors, [viz.UNLABELLED_COLOR], [viz.BACKGROUND_COLOR]]) * 255).astype(np.uint8)
    img = u8[np.array([[0, 1, 2], [3, 4, 0]])]
    np.testing.assert_array_equal(viz.ids_from_pixels(img, colors), [[0, 1, 2], [-1, -2, 0]])


# ----------------------------------------------------------------------------- validation (no rendering)
def test_render_rejects_bad_arguments(sphere, parts, tmp_path):
    with pytest.raises(ValueError, match=r"expected a path ending in '.png'"):
        viz.render_parts(sphere, parts, tmp_path / "parts.jpg")
    with pytest.raises(ValueError, match=r"unknown view 'side'; expected one of \['front'"):
        viz.render_parts(sphere, parts, tmp_path / "p.png", views=("front", "side"))
    with pytest.raises(ValueError, match="must not be parallel"):
        viz.render_parts(sphere, parts, tmp_path / "p.png", up="y", front="-y")
    with pytest.raises(ValueError, match="unknown up axis 'w'"):
        viz.render_parts(sphere, parts, tmp_path / "p.png", up="w")
    with pytest.raises(ValueError, match=r"colors must have shape \(L, 3\) with L >= 4"):
        viz.render_parts(sphere, parts, tmp_path / "p.png", colors=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="labels must be integers"):
        viz.render_parts(sphere, np.zeros(sphere.n_vertices), tmp_path / "p.png")
    with pytest.raises(ValueError, match=r"colours must be finite RGB values in \[0, 1\]"):
        viz.render_meshes([(sphere, np.full((sphere.n_vertices, 3), 2.0))], tmp_path / "m.png")
    with pytest.raises(ValueError, match="got 1 titles for 2 meshes"):
        viz.render_meshes([(sphere, None), (sphere, None)], tmp_path / "m.png", titles=["a"])
    idx = np.arange(sphere.n_vertices)
    with pytest.raises(ValueError, match=rf"b_to_a\[3\] = {sphere.n_vertices} but icosphere has"):
        viz.render_transfer(sphere, sphere, np.where(idx == 3, sphere.n_vertices, idx), tmp_path / "t.png")
    with pytest.raises(ValueError, match="b_to_a must have one A vertex per B vertex"):
        viz.render_transfer(sphere, sphere, idx[:-1], tmp_path / "t.png")
    with pytest.raises(ValueError, match=r"field must have shape \(V_a,\) or \(V_a, 3\)"):
        viz.render_transfer(sphere, sphere, idx, tmp_path / "t.png", field=np.zeros((5, 3)))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- PNG writing
def test_write_png_round_trip(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    path = viz.write_png(img, tmp_path / "sub" / "img.png")
    np.testing.assert_array_equal(read_png(path), img)
    assert sorted(p.name for p in path.parent.iterdir()) == ["img.png"]


def test_write_png_is_atomic(tmp_path, monkeypatch):
    from PIL import Image

    target = tmp_path / "img.png"
    old = np.zeros((4, 4, 3), np.uint8)
    viz.write_png(old, target)
    before = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG half written")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        viz.write_png(np.full((4, 4, 3), 255, np.uint8), target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["img.png"]  # no temporary file left behind
    with pytest.raises(OSError, match="disk full"):
        viz.write_png(old, tmp_path / "new.png")
    assert [p.name for p in tmp_path.iterdir()] == ["img.png"]


def test_write_png_rejects_bad_image(tmp_path):
    with pytest.raises(ValueError, match=r"\(H, W, 3\|4\) uint8 array, got shape \(4, 4\) dtype float64"):
        viz.write_png(np.zeros((4, 4)), tmp_path / "img.png")


# ----------------------------------------------------------------------------- rendering
@pytest.mark.gl
def test_render_parts_writes_png_of_requested_size(gl, sphere, parts, tmp_path):
    path = viz.render_parts(sphere, parts, tmp_path / "parts.png", size=(640, 480))
    assert path.path == tmp_path / "parts.png" and path.renderer == "vtk" and path.note is None
    img = read_png(path)
    np.testing.assert_array_equal(np.asarray(path), img)  # the Picture holds what was saved
    assert img.shape == (480, 640, 3)
    assert len(colour_set(img)) > 10  # lit, anti-aliased, with titles and legend
    assert [p.name for p in tmp_path.iterdir()] == ["parts.png"]


@pytest.mark.gl
def test_ids_as_colors_gives_exact_palette_pixels(gl, sphere, tmp_path):
    labels = quadrant_labels(sphere)
    labels[sphere.vertices[:, 2] > 0.9] = -1  # an unlabelled cap facing the camera
    parts = PartLabels(labels, NAMES)
    path = viz.render_parts(sphere, parts, tmp_path / "ids.png", views=("front",), size=(300, 300), ids_as_colors=True)
    img = read_png(path)
    colors = viz.part_colors(NAMES)
    expected = u8_set(colors) | u8_set([viz.UNLABELLED_COLOR, viz.BACKGROUND_COLOR])
    assert colour_set(img) == expected  # no blended edge pixels: anti-aliasing and lighting are off
    ids = viz.ids_from_pixels(img, colors)
    # front view (camera on +z, y up): image right is +x, image top is +y
    assert ids[0, 0] == -2 and ids[150, 150] == -1
    assert ids[100, 200] == 3 and ids[100, 100] == 2 and ids[200, 100] == 0 and ids[200, 200] == 1


@pytest.mark.gl
def test_ids_as_colors_back_view_mirrors(gl, sphere, parts, tmp_path):
    path = viz.render_parts(sphere, parts, tmp_path / "ids.png", views=("back",), size=(200, 200), ids_as_colors=True)
    ids = viz.ids_from_pixels(read_png(path), viz.part_colors(NAMES))
    # from behind (camera on -z) +x is on the image's left
    assert ids[60, 60] == 3 and ids[60, 140] == 2


@pytest.mark.gl
def test_transfer_identity_gives_identical_halves(gl, sphere, tmp_path):
    idx = np.arange(sphere.n_vertices)
    path = viz.render_transfer(sphere, sphere, idx, tmp_path / "t.png", titles=("same", "same"), size=(600, 600))
    img = read_png(path)
    assert img.shape == (600, 600, 3)
    left, right = img[:, :300], img[:, 300:]
    assert (left != 255).any()  # something was drawn
    # identical up to the rasteriser's rounding at a different viewport offset: a few pixels off by 1-2 levels
    diff = np.abs(left.astype(int) - right.astype(int))
    assert diff.max() <= 2 and np.mean(diff > 0) < 1e-3
    # front and back rows show different sides of the field
    assert not np.array_equal(img[:300, :300], img[300:, :300])


@pytest.mark.gl
def test_transfer_mirror_map_changes_b(gl, sphere, tmp_path):
    v = sphere.vertices
    mirrored = v * [-1, 1, 1]
    b_to_a = np.argmin(((mirrored[:, None] - v[None]) ** 2).sum(-1), axis=1)  # B vertex i <- A vertex at (-x, y, z)
    path = viz.render_transfer(sphere, sphere, b_to_a, tmp_path / "t.png", titles=("same", "same"), size=(400, 400))
    img = read_png(path)
    assert not np.array_equal(img[:, :200], img[:, 200:])
    # the mirrored field seen from the front is the A picture flipped left-right (up to a pixel of rasterisation)
    a, b = img[30:200, :200].astype(int), img[30:200, 200:][:, ::-1].astype(int)
    assert np.mean(np.abs(np.roll(b, 1, axis=1) - a) < 40) > 0.9 or np.mean(np.abs(b - a) < 40) > 0.9


def test_titles_of_narrow_panels_shrink_to_fit():
    from densemap.viz.pictures import TITLE_SIZE, _TITLE_PX_PER_CHAR, _title_size

    assert _title_size("back", 400) == TITLE_SIZE  # a short title keeps its size
    long = "A: reference human (front)"
    size = _title_size(long, 385)  # the parts picture: two panels beside the legend in 1000 px
    assert size < TITLE_SIZE and size * _TITLE_PX_PER_CHAR * len(long) <= 0.9 * 385
    assert _title_size(long, 385) <= _title_size(long, 500) <= TITLE_SIZE  # wider panels, no smaller
    assert _title_size("x" * 500, 100) == 6  # never below a readable size


_RENDER_THEN_TORCHVISION = """
import sys
import numpy as np
from densemap import viz
from densemap.mesh import Mesh
from densemap.parts import PartLabels
v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
viz.render_parts(Mesh(v, f), PartLabels(np.array([0, 0, 1, 1]), ["a", "b"]), path=sys.argv[1], fallback=False)
import torchvision  # noqa: F401 - pulls in triton, whose LLVM crashed after Mesa's
print("imported")
"""


@pytest.mark.gl
def test_torchvision_imports_after_an_in_process_picture(gl, tmp_path):
    # Mesa's LLVM loaded first made triton's static initialisers segfault (signal 11);
    # densemap.viz loads triton's library before VTK (gl.load_triton_first)
    if importlib.util.find_spec("triton") is None:  # found, not imported: importing it here could crash this process
        pytest.skip("triton is not installed")
    proc = subprocess.run([sys.executable, "-c", _RENDER_THEN_TORCHVISION, str(tmp_path / "p.png")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["imported"] and (tmp_path / "p.png").exists()


@pytest.mark.gl
def test_render_meshes_side_by_side(gl, sphere, parts, tmp_path):
    small = Mesh(sphere.vertices * 0.5, sphere.faces, name="small")
    items = [(sphere, parts), (small, viz.color_field(small)), (sphere, None)]
    path = viz.render_meshes(items, tmp_path / "m.png", titles=["parts", "field", "plain"], size=(600, 200))
    assert read_png(path).shape == (200, 600, 3)
    # with ids_as_colors, each panel fits its own mesh: equal label pictures despite the scale
    path = viz.render_meshes(
        [(sphere, parts), (small, PartLabels(parts.labels, NAMES))], tmp_path / "ids.png", size=(400, 200),
        ids_as_colors=True,
    )
    img = read_png(path)
    left, right = viz.ids_from_pixels(img[:, :200], viz.part_colors(NAMES)), viz.ids_from_pixels(
        img[:, 200:], viz.part_colors(NAMES)
    )
    assert np.mean(left == right) > 0.98


# ----------------------------------------------------------------------------- without GL: matplotlib
def _dominant(img, box):
    """The most frequent colour in ``img[y0:y1, x0:x1]``."""
    (y0, y1), (x0, x1) = box
    cols, counts = np.unique(img[y0:y1, x0:x1].reshape(-1, 3), axis=0, return_counts=True)
    return cols[np.argmax(counts)].astype(int)


def test_without_gl_pictures_fall_back_to_matplotlib_with_a_note(monkeypatch, fresh_probe, sphere, parts, tmp_path):
    monkeypatch.setattr(gl_probe, "_probe", lambda backend: "test render crashed (signal 11)")
    pic = viz.render_parts(sphere, parts, tmp_path / "parts.png", views=("front",), size=(400, 300), legend=False)
    assert pic.renderer == "matplotlib" and "test render crashed (signal 11)" in pic.note
    assert "note:" in repr(pic) and "note: drawn with matplotlib" in pic._repr_html_()
    img = np.asarray(pic)
    assert img.shape == (300, 400, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(read_png(tmp_path / "parts.png"), img)
    # seen from the front (+z, y up, x to the right): the four quadrant parts in their places,
    # each in its own hue (shaded, so compare hues by the dominant channel ordering)
    colors = np.rint(viz.part_colors(NAMES) * 255).astype(int)
    ys, xs = np.nonzero((img != np.rint(np.asarray(viz.BACKGROUND_COLOR) * 255).astype(int)).any(-1))
    cy, cx = int(ys.mean()), int(xs.mean())
    q = 30
    where = {0: ((cy + 10, cy + 10 + q), (cx - 10 - q, cx - 10)),   # x<0, y<0: lower left
             1: ((cy + 10, cy + 10 + q), (cx + 10, cx + 10 + q)),   # x>0, y<0: lower right
             2: ((cy - 10 - q, cy - 10), (cx - 10 - q, cx - 10)),   # x<0, y>0: upper left
             3: ((cy - 10 - q, cy - 10), (cx + 10, cx + 10 + q))}   # x>0, y>0: upper right
    for k, box in where.items():
        seen = _dominant(img, box)
        # the shaded colour is the part colour scaled by one factor in (0, 1]
        ratio = seen / np.maximum(colors[k], 1)
        assert np.ptp(ratio[colors[k] > 20]) < 0.08, (k, seen, colors[k])
        # every other part's colour is farther from what is seen than its own
        others = [np.abs(seen / max(seen.max(), 1) - colors[j] / max(colors[j].max(), 1)).sum() for j in range(4)]
        assert int(np.argmin(others)) == k


def test_picture_display_and_save(tmp_path):
    img = np.zeros((4, 6, 3), np.uint8)
    img[1, 2] = (255, 0, 0)
    pic = viz.Picture(img)
    assert pic.size == (6, 4) and pic._repr_html_() is None  # no note: the PNG is shown
    assert pic._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(TypeError, match="not saved"):
        os.fspath(pic)
    assert pic.save(tmp_path / "p.png") == tmp_path / "p.png" and os.fspath(pic) == str(tmp_path / "p.png")
    np.testing.assert_array_equal(read_png(pic), img)
    with pytest.raises(ValueError, match="PNG"):
        pic.save(tmp_path / "p.jpg")
