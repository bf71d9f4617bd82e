"""``densemap align`` as one library call: load a pair, align, score, write every output.

:func:`run_align` is what the command does; :func:`write_alignment_outputs` writes the
files of one alignment into a folder:

=====================  ===========================================================
file                   content
=====================  ===========================================================
``alignment.npz``      both maps, descriptors, options, timings, provenance
``descriptors_a.npy``  (V_a, L) float64
``descriptors_b.npy``  (V_b, L) float64
``report.json``        meshes, device, options, timings, map quality both ways
``parts.png``          the parts on both meshes (needs an off-screen GL backend)
``transfer.png``       a colour field on A carried to B through the map
=====================  ===========================================================
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path, json_default
from ..errors import GLBackendError, PartError
from ..mesh import Mesh, load_mesh
from ..parts import PartLabels, load_parts
from .alignment import Alignment
from .pipeline import Aligner

__all__ = ["AlignInputs", "AlignRun", "load_pair", "run_align", "write_alignment_outputs"]


@dataclass
class AlignInputs:
    """A mesh pair with parts, and the B -> A ground truth when it is known."""

    mesh_a: Mesh
    parts_a: PartLabels
    mesh_b: Mesh
    parts_b: PartLabels
    ground_truth_b_to_a: tuple | None = None


@dataclass
class AlignRun:
    """What :func:`run_align` did: the alignment, its report (as written) and the files."""

    alignment: Alignment
    report: dict
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    pictures_skipped: str | None = None


def load_pair(mesh_a=None, mesh_b=None, *, parts_a=None, parts_b=None) -> AlignInputs:
    """Meshes and parts from files, or the embedded human (A) and chimp (B) with their ground truth.

    A mesh given without a part file takes its parts from its OBJ ``g``/``o`` groups.

    Raises
    ------
    ValueError
        Only one of the two meshes given.
    MeshError, PartError
        Unreadable files; a non-OBJ mesh without a part file.
    """
    if (mesh_a is None) != (mesh_b is None):
        raise ValueError("give two meshes, or none for the embedded human and chimp")
    if mesh_a is None:
        from ..data import chimp_to_human_ground_truth, reference

        ha, hb = reference("human"), reference("chimp")
        return AlignInputs(ha.mesh, ha.parts, hb.mesh, hb.parts, chimp_to_human_ground_truth())
    loaded = []
    for mesh_path, parts_path, flag in ((mesh_a, parts_a, "--parts-a"), (mesh_b, parts_b, "--parts-b")):
        mesh = load_mesh(mesh_path)
        if parts_path is None:
            if Path(mesh_path).suffix.lower() != ".obj":
                raise PartError(f"{mesh_path}: no part labels; give {flag} (parts are read from OBJ groups only "
                                "for .obj meshes)")
            parts_path = mesh_path
        loaded += [mesh, load_parts(parts_path, mesh)]
    return AlignInputs(*loaded)


def _save_npy(path: Path, array: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
    return path


def _pictures(inputs: AlignInputs, alignment: Alignment, out: Path) -> list[Path]:
    from .. import viz

    viz.check_offscreen_gl()
    return [
        viz.render_meshes([(inputs.mesh_a, inputs.parts_a), (inputs.mesh_b, alignment.parts_b)], out / "parts.png",
                          views=("front", "back"), titles=["A", "B"]),
        viz.render_transfer(inputs.mesh_a, inputs.mesh_b, alignment.b_to_a.indices, out / "transfer.png"),
    ]


def write_alignment_outputs(out_dir: str | os.PathLike, inputs: AlignInputs, alignment: Alignment, quality: dict, *,
                            timings: dict, device=None, render: bool = True) -> AlignRun:
    """Write ``alignment.npz``, the descriptors, the pictures and ``report.json`` into ``out_dir``.

    Each file is written atomically; ``report.json`` comes last and lists the pictures.
    Pictures are skipped (``AlignRun.pictures_skipped`` says why) when no off-screen
    OpenGL backend works.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [alignment.save(out / "alignment.npz"), _save_npy(out / "descriptors_a.npy", alignment.desc_a),
             _save_npy(out / "descriptors_b.npy", alignment.desc_b)]
    pictures, skipped = [], None
    if render:
        t0 = time.perf_counter()
        try:
            pictures = _pictures(inputs, alignment, out)
            timings = {**timings, "render": time.perf_counter() - t0}
        except GLBackendError as exc:
            skipped = str(exc)
    ma, mb = inputs.mesh_a, inputs.mesh_b
    report = {
        "mesh_a": {"name": ma.name, "vertices": ma.n_vertices, "faces": ma.n_faces, "sha1": ma.sha1},
        "mesh_b": {"name": mb.name, "vertices": mb.n_vertices, "faces": mb.n_faces, "sha1": mb.sha1},
        "device": None if device is None else str(device),
        "options": alignment.options,
        "timings_s": timings,
        "quality": quality,
        "pictures": [str(p) for p in pictures],
    }
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=json_default))
    return AlignRun(alignment, report, out, files + pictures + [out / "report.json"], skipped)


def run_align(mesh_a=None, mesh_b=None, *, parts_a=None, parts_b=None, out_dir: str | os.PathLike = "densemap-align",
              device=None, render: bool = True, progress: bool = False, **options) -> AlignRun:
    """Everything ``densemap align`` does: load, align, score both directions, write the outputs.

    Parameters
    ----------
    mesh_a, mesh_b : path-like, optional
        Mesh files; both None for the embedded human (A) and chimp (B), whose B -> A
        ground truth is then scored too.
    parts_a, parts_b : path-like, optional
        Part files (default: the OBJ groups of the mesh).
    out_dir : path-like
    device : optional
        Where geodesics and matching run (None: CPU).
    render : bool
        Write the two pictures.
    progress : bool
    **options
        :func:`~densemap.mapping.pipeline.align` options (weighting, sources, normalize,
        same_part, refine, ...).

    Returns
    -------
    AlignRun

    Examples
    --------
    >>> import tempfile
    >>> run = run_align(out_dir=tempfile.mkdtemp(), sources=4, refine=False, render=False)
    >>> sorted(p.name for p in run.files)
    ['alignment.npz', 'descriptors_a.npy', 'descriptors_b.npy', 'report.json']
    >>> run.report["quality"]["b_to_a"]["part_agreement"]
    1.0
    """
    t0 = time.perf_counter()
    inputs = load_pair(mesh_a, mesh_b, parts_a=parts_a, parts_b=parts_b)
    t_load = time.perf_counter() - t0
    pipeline_keys = ("common_time_step", "t_scale", "length_scale", "method")
    aligner = Aligner(inputs.mesh_a, inputs.parts_a, inputs.mesh_b, inputs.parts_b, device=device,
                      **{k: options.pop(k) for k in pipeline_keys if k in options})
    alignment = aligner.align(progress=progress, **options)
    t1 = time.perf_counter()
    quality = aligner.quality(alignment, ground_truth_b_to_a=inputs.ground_truth_b_to_a)
    timings = {"load": t_load, **alignment.timings, "quality": time.perf_counter() - t1}
    return write_alignment_outputs(out_dir, inputs, alignment, quality, timings=timings, device=device, render=render)
