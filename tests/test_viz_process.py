"""Pictures drawn by a child process (densemap.viz.process) and align's pictures drawn that way."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import octant_parts, read_png

from densemap import viz
from densemap.errors import GLBackendError
from densemap.mapping.outputs import run_align
from densemap.viz import gl as gl_probe
from densemap.viz.process import PictureProcess, plain_mesh


@pytest.fixture
def parts(sphere):
    return octant_parts(sphere)


@pytest.fixture
def no_gl(monkeypatch):
    """A backend nobody has, forced for this process and the children it starts."""
    monkeypatch.setenv("VTK_DEFAULT_OPENGL_WINDOW", "vtkNoSuchWindow")
    gl_probe._probe_all.cache_clear()
    yield
    gl_probe._probe_all.cache_clear()


def test_the_child_draws_the_pictures_the_caller_would(gl, sphere, parts, tmp_path):
    field = sphere.vertices[:, 0]
    with PictureProcess() as pictures:
        job_p = pictures.submit("render_parts", plain_mesh(sphere), parts, path=tmp_path / "child_parts.png",
                                views=("front",), size=(200, 160))
        job_t = pictures.submit("render_transfer", plain_mesh(sphere), plain_mesh(sphere), np.arange(sphere.n_vertices),
                                path=tmp_path / "child_transfer.png", field=field, size=(320, 160), views=("front",))
        (path_p, sec_p), (path_t, sec_t) = job_p.result(), job_t.result()
    assert path_p == tmp_path / "child_parts.png" and sec_p > 0 and sec_t > 0
    here_p = viz.render_parts(sphere, parts, views=("front",), size=(200, 160), fallback=False)
    here_t = viz.render_transfer(sphere, sphere, np.arange(sphere.n_vertices), field=field, size=(320, 160),
                                 views=("front",), fallback=False)
    np.testing.assert_array_equal(read_png(path_p), np.asarray(here_p))
    np.testing.assert_array_equal(read_png(path_t), np.asarray(here_t))


def test_without_gl_the_child_raises_in_the_caller(no_gl, sphere, parts, tmp_path):
    with PictureProcess() as pictures:
        job = pictures.submit("render_parts", plain_mesh(sphere), parts, path=tmp_path / "p.png")
        with pytest.raises(GLBackendError, match="vtkNoSuchWindow: unknown VTK_DEFAULT_OPENGL_WINDOW"):
            job.result()
    assert not (tmp_path / "p.png").exists()


def test_a_child_that_dies_is_a_gl_error_not_a_hang(sphere, parts, tmp_path):
    with PictureProcess() as pictures:
        pictures._proc.kill()
        job = pictures.submit("render_parts", plain_mesh(sphere), parts, path=tmp_path / "p.png")
        with pytest.raises(GLBackendError, match=r"the picture process died \(signal 9\)"):
            job.result()


def test_a_script_without_a_main_guard_is_not_run_again_by_the_child(gl, tmp_path):
    # multiprocessing's spawn would import the script again in the child (and recurse)
    script = tmp_path / "user_script.py"
    script.write_text(
        "import sys, trimesh\n"
        "from densemap.mesh import Mesh\n"
        "from densemap.viz.process import PictureProcess\n"
        "print('top level ran', flush=True)\n"
        "t = trimesh.creation.icosphere(subdivisions=2)\n"
        "m = Mesh(t.vertices, t.faces, name='ico')\n"
        "with PictureProcess() as pictures:\n"
        f"    print(pictures.submit('render_parts', m, None, path={str(tmp_path / 's.png')!r}).result()[0])\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("top level ran") == 1 and (tmp_path / "s.png").is_file()


def test_only_picture_functions_are_sent(tmp_path):
    with PictureProcess() as pictures:
        with pytest.raises(ValueError, match="render_transfer"):
            pictures.submit("check_offscreen_gl", path=tmp_path / "x.png")


def test_plain_mesh_leaves_the_caches_behind(sphere):
    area = sphere.area  # fills cached properties
    light = plain_mesh(sphere)
    assert "area" in vars(sphere) and "area" not in vars(light)
    np.testing.assert_array_equal(light.vertices, sphere.vertices)
    np.testing.assert_array_equal(light.faces, sphere.faces)
    assert light.name == "icosphere" and light.area == area


def test_align_pictures_come_from_the_child_and_land_in_the_output(gl, tmp_path):
    run = run_align(out_dir=tmp_path / "out", sources=4, refine=False)
    names = sorted(p.name for p in run.files)
    assert names == ["alignment.npz", "descriptors_a.npy", "descriptors_b.npy", "parts.png", "report.json",
                     "transfer.png"]
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["timings_s"]["render"] > 0 and rep["timings_s"]["render_wait"] >= 0
    assert rep["pictures"] == [str(tmp_path / "out" / "parts.png"), str(tmp_path / "out" / "transfer.png")]
    img = read_png(tmp_path / "out" / "transfer.png")
    assert img.shape == (1000, 1000, 3) and len(np.unique(img.reshape(-1, 3), axis=0)) > 100
    assert not list(tmp_path.glob("out/.*")) and run.pictures_skipped is None


def test_align_without_gl_skips_the_pictures_and_says_why(no_gl, tmp_path):
    run = run_align(out_dir=tmp_path / "out", sources=4, refine=False)
    assert "unknown VTK_DEFAULT_OPENGL_WINDOW" in run.pictures_skipped
    assert sorted(p.name for p in run.files) == ["alignment.npz", "descriptors_a.npy", "descriptors_b.npy",
                                                 "report.json"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["pictures"] == []
