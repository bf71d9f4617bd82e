"""The harness of the bad-input suites: tiny valid inputs, their broken variants, and the checks.

A case is a folder of files and one command. :func:`check_refused` runs the command in
process (``densemap -q ...`` through click's CliRunner) and asserts what the issue asks of
every bad input: a non-zero exit, exactly one line of output that starts with ``Error:`` and
matches the expected text, no traceback and no "internal error", every file that existed
unchanged (SHA-256 of each), and no new file anywhere in the case folder (no partial output).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from densemap.cli.main import main
from densemap.mesh import Mesh, _write_obj

from conftest import icosphere, octant_parts


@dataclass
class Case:
    """One bad input: the arguments after ``densemap -q``, the expected error, extra checks."""

    args: list
    expect: str
    code: int = 1
    allowed_new: tuple = ()  # files a refusal may leave (none by default)
    env: dict = field(default_factory=dict)


def snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every regular file under ``root`` (symlinks and pipes skipped)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_symlink() or not p.is_file():
                continue
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def invoke(args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env or {}, catch_exceptions=True)


def check_refused(case: Case, root: Path):
    """Run a case under ``-q`` and assert the refusal properties (see the module notes)."""
    before = snapshot(root)
    r = invoke(["-q", *case.args], case.env)
    out = (r.stdout or "") + (r.stderr or "")
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert r.exception is None or isinstance(r.exception, SystemExit), f"unhandled {r.exception!r}\n{out}"
    assert "Traceback" not in out, out
    assert r.exit_code == case.code, f"exit {r.exit_code}, expected {case.code}: {out}"
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{out}"
    line = lines[0]
    assert line.startswith("Error: "), line
    assert "internal error" not in line, line
    assert re.search(case.expect, line), f"{case.expect!r} not in {line!r}"
    after = snapshot(root)
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert not changed, f"inputs changed or removed: {changed}"
    new = sorted(set(after) - set(before) - set(case.allowed_new))
    assert not new, f"partial outputs left: {new}"
    return line


# ----------------------------------------------------------------------------- meshes and parts
def grouped_obj(path: Path, mesh: Mesh, parts=None) -> Path:
    """An OBJ with one ``g`` group per part (the octants by default)."""
    if parts is None:  # octants of the shape at unit size (signs of exact zeros kept at any scale)
        unit = np.round(mesh.vertices / np.abs(mesh.vertices).max(), 9)
        parts = octant_parts(Mesh(unit, mesh.faces))
    from densemap.parts import face_labels

    face_lab = face_labels(mesh.faces, parts.labels)
    with open(path, "w") as fh:
        _write_obj(mesh, fh, groups=face_lab, group_names=parts.names)
    return path


def sphere(sub: int = 1, scale: float = 1.0) -> Mesh:
    s = icosphere(sub)
    return Mesh(s.vertices * scale, s.faces, name="sphere")


def with_extra_face(mesh: Mesh, face, extra_vertices=None) -> Mesh:
    v = mesh.vertices if extra_vertices is None else np.r_[mesh.vertices, extra_vertices]
    return Mesh(v, np.r_[mesh.faces, [face]])


def split_face_at_midpoint(mesh: Mesh) -> Mesh:
    """Face 0 split by the midpoint of its first edge into two faces plus a zero-area sliver."""
    f0 = mesh.faces[0]
    n = mesh.n_vertices
    mid = (mesh.vertices[f0[0]] + mesh.vertices[f0[1]]) / 2
    faces = np.r_[mesh.faces[1:], [[f0[0], n, f0[2]], [n, f0[1], f0[2]], [f0[0], f0[1], n]]]
    return Mesh(np.r_[mesh.vertices, [mid]], faces)


# ----------------------------------------------------------------------------- a charted mesh, maps
def charted_obj(path: Path, sub: int = 1) -> Path:
    """A sphere whose upper half is chart 1 and lower half chart 2, uv = (x, y) mapped to [0, 1]."""
    m = sphere(sub)
    z = m.vertices[m.faces].mean(1)[:, 2]
    uv = (m.vertices[m.faces][..., :2] + 1) / 2
    with open(path, "w") as fh:
        _write_obj(Mesh(m.vertices, m.faces, uv), fh, groups=np.where(z > 0, 0, 1), group_names=["chart_1", "chart_2"])
    return path


def identity_alignment(path: Path, mesh: Mesh) -> Path:
    """An alignment of ``mesh`` onto itself (vertex i -> i, each on its first face)."""
    from densemap.mapping import Alignment, VertexMap

    n = mesh.n_vertices
    face = np.full(n, -1)
    for k in range(mesh.n_faces - 1, -1, -1):
        face[mesh.faces[k]] = k
    bary = (mesh.faces[face] == np.arange(n)[:, None]).astype(float)
    vm = VertexMap(np.arange(n), np.zeros(n), faces=face, bary=bary, corners=mesh.faces[face], n_target=n)
    md = {k: {"name": mesh.name, "sha1": mesh.sha1, "n_vertices": n} for k in ("mesh_a", "mesh_b")}
    Alignment(a_to_b=vm, b_to_a=vm, metadata=md).save(path)
    return path


def rewrite_npz(path: Path, **changes) -> Path:
    """Rewrite arrays of an ``.npz`` in place (a corrupted copy)."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    data.update(changes)
    with open(path, "wb") as fh:
        np.savez(fh, **data)
    return path


# ----------------------------------------------------------------------------- COCO DensePose
def coco(path: Path, *, n_points: int = 5, image_size=(64, 48), **ann_fields) -> Path:
    """One image, one annotation with ``n_points`` chart points (fields overridable)."""
    w, h = image_size
    rng = np.random.default_rng(0)
    ann = {"id": 7, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [4.0, 4.0, 30.0, 30.0], "area": 900.0,
           "dp_x": (rng.random(n_points) * 256).tolist(), "dp_y": (rng.random(n_points) * 256).tolist(),
           "dp_I": [1.0] * n_points, "dp_U": (rng.random(n_points) * 0.4 + 0.3).tolist(),
           "dp_V": (rng.random(n_points) * 0.4 + 0.3).tolist()}
    ann.update(ann_fields)
    data = {"images": [{"id": 1, "file_name": "a.png", "width": w, "height": h}], "annotations": [ann],
            "categories": [{"id": 1, "name": "chimp"}]}
    path.write_text(json.dumps(data))
    return path


def png(path: Path, width: int = 64, height: int = 48) -> Path:
    from PIL import Image

    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(path)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A ~60-byte PNG that declares ``width`` x ``height`` pixels (a decompression bomb's header)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def dataset(root: Path, **ann_fields) -> Path:
    """A one-image training set folder (annotations.json + images/a.png)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    png(root / "images" / "a.png")
    coco(root / "annotations.json", **ann_fields)
    return root
