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
``view.html``          with ``view=True``: the interactive viewer (one self-contained page,
                       :mod:`densemap.mapping.view`)
=====================  ===========================================================

The files of one run appear together or not at all: they are written into a hidden folder
beside the output folder and swapped in at the end (:class:`densemap._io.output_folder`),
so an interrupted run (Ctrl-C, a full disk) leaves the previous run's set as it was.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path, json_default, output_folder
from ..errors import GLBackendError, PartError
from ..mesh import load_mesh
from ..parts import load_parts
from .alignment import Alignment
from .pipeline import Aligner
from .prepare import AlignInputs, PreparedPair, prepare_pair

__all__ = ["AlignInputs", "AlignRun", "BackgroundPictures", "OUTPUT_NAMES", "load_pair", "run_align", "write_alignment_outputs"]

# every name `densemap align` may write in its folder (a folder holding only these is a previous run's)
OUTPUT_NAMES = ("alignment.npz", "descriptors_a.npy", "descriptors_b.npy", "report.json", "parts.png", "transfer.png",
                "view.html")


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


def _picture_args(inputs: AlignInputs, parts_a, parts_b, b_to_a) -> dict:
    """{file name: (function, args, kwargs)} of the two pictures, each column titled with its
    mesh's file name and what it shows (the parts as aligned: islands merged, ``parts_b`` in
    A's part order)."""
    name_a, name_b = (_short(Path(m.name).name) for m in (inputs.mesh_a, inputs.mesh_b))
    return {
        "parts.png": ("render_meshes", ([(inputs.mesh_a, parts_a), (inputs.mesh_b, parts_b)],),
                      {"views": ("front", "back"), "titles": [f"A: {name_a}", f"B: {name_b}"], "legend": True}),
        "transfer.png": ("render_transfer", (inputs.mesh_a, inputs.mesh_b, b_to_a),
                         {"titles": (f"A: {name_a}, xyz", f"B: {name_b}, A's")}),
    }


def _pictures(inputs: AlignInputs, alignment: Alignment, out: Path) -> list[Path]:
    """The two pictures, drawn here."""
    from .. import viz

    viz.check_offscreen_gl()
    return [getattr(viz, fn)(*args, path=out / name, **kw).path
            for name, (fn, args, kw) in _picture_args(inputs, alignment.parts_a, alignment.parts_b,
                                                                  alignment.b_to_a.indices).items()]


class BackgroundPictures:
    """``align``'s two pictures drawn by a child process (:class:`densemap.viz.process.PictureProcess`)
    while the pair is aligned and scored: the parts as soon as they are known
    (:meth:`parts`), the colour transfer once the map is (:meth:`transfer`), into a
    private temporary folder; :func:`write_alignment_outputs` moves them into the output."""

    def __init__(self):
        from ..viz.process import PictureProcess

        self._tmp = Path(tempfile.mkdtemp(prefix="densemap-pictures-"))
        self._proc = PictureProcess()
        self._jobs: dict = {}

    def _submit(self, inputs: AlignInputs, name: str, parts_a=None, parts_b=None, b_to_a=None) -> None:
        from ..viz.process import plain_mesh

        light = AlignInputs(plain_mesh(inputs.mesh_a), inputs.parts_a, plain_mesh(inputs.mesh_b), inputs.parts_b)
        fn, args, kw = _picture_args(light, parts_a, parts_b, b_to_a)[name]
        self._jobs[name] = self._proc.submit(fn, *args, path=self._tmp / name, **kw)

    def parts(self, inputs: AlignInputs, parts_a, parts_b) -> None:
        self._submit(inputs, "parts.png", parts_a=parts_a, parts_b=parts_b)

    def transfer(self, inputs: AlignInputs, b_to_a) -> None:
        self._submit(inputs, "transfer.png", b_to_a=np.asarray(b_to_a))

    def collect(self, out: Path) -> tuple[list[Path], float]:
        """Wait for the pictures and move them into ``out``: (paths, the child's seconds).

        Raises
        ------
        GLBackendError
        """
        paths, seconds = [], 0.0
        for name, job in self._jobs.items():
            path, t = job.result()
            seconds += t
            paths.append(Path(shutil.move(str(path), str(out / name))))
        return paths, seconds

    def close(self) -> None:
        self._proc.close()
        shutil.rmtree(self._tmp, ignore_errors=True)


# what each picture shows, written into report.json beside the list of pictures
CAPTIONS = {
    "parts.png": "The parts of A (left) and B (right), front and back; the legend names each part's colour.",
    "transfer.png": "Left: A coloured by position (normalised x, y, z as red, green, blue). Right: B with the "
                    "colour of the A vertex its map points to; a good map colours B like A, part for part.",
}


def _short(name: str, n: int = 18) -> str:
    return name if len(name) <= n else name[: n - 3] + "..."


def write_alignment_outputs(out_dir: str | os.PathLike, inputs: AlignInputs, alignment: Alignment, quality: dict, *,
                            timings: dict, device=None, render: bool | BackgroundPictures = True,
                            prepared: PreparedPair | None = None,
                            pictures_of: tuple | None = None, view: bool = False) -> AlignRun:
    """Write ``alignment.npz``, the descriptors, the pictures and ``report.json`` into ``out_dir``.

    The set appears together or not at all (see the module notes): files are written into a
    hidden folder beside ``out_dir`` and swapped in at the end; ``report.json`` comes last
    and lists the pictures. Pictures are skipped (``AlignRun.pictures_skipped`` says why)
    when no off-screen OpenGL backend works. ``pictures_of`` is ``(inputs, alignment)`` to
    draw instead (the prepared meshes, when they differ from the files). ``render`` may be
    a :class:`BackgroundPictures` whose pictures are being drawn already (they are moved
    in; ``pictures_of`` is then unused). ``view`` adds
    ``view.html``, the interactive viewer of ``inputs`` and ``alignment``.
    """
    final = Path(out_dir)
    with output_folder(final, owned=OUTPUT_NAMES, manifest="report.json") as out:
        files = [alignment.save(out / "alignment.npz"), _save_npy(out / "descriptors_a.npy", alignment.desc_a),
                 _save_npy(out / "descriptors_b.npy", alignment.desc_b)]
        pictures, skipped = [], None
        if render:
            t0 = time.perf_counter()
            try:
                if isinstance(render, BackgroundPictures):
                    pictures, drawing = render.collect(out)
                    # the child's time, and what this process waited for it after scoring
                    timings = {**timings, "render": drawing, "render_wait": time.perf_counter() - t0}
                else:
                    pictures = _pictures(*(pictures_of or (inputs, alignment)), out)
                    timings = {**timings, "render": time.perf_counter() - t0}
            except GLBackendError as exc:
                skipped = str(exc)
        if view:
            from .view import write_view

            t0 = time.perf_counter()
            files.append(write_view(out / "view.html", inputs, alignment))
            timings = {**timings, "view": time.perf_counter() - t0}
        ma, mb = inputs.mesh_a, inputs.mesh_b
        report = {
            "mesh_a": {"name": ma.name, "vertices": ma.n_vertices, "faces": ma.n_faces, "sha1": ma.sha1},
            "mesh_b": {"name": mb.name, "vertices": mb.n_vertices, "faces": mb.n_faces, "sha1": mb.sha1},
            "device": None if device is None else str(device),
            "options": alignment.options,
            "timings_s": timings,
            "quality": quality,
            "islands_merged": alignment.metadata.get("islands_merged"),
            "rough_labels": alignment.metadata.get("rough_labels"),
            "pictures": [str(final / p.name) for p in pictures],
            "captions": {p.name: CAPTIONS[p.name] for p in pictures if p.name in CAPTIONS},
        }
        if view:
            report["viewer"] = str(final / "view.html")
        if prepared is not None and prepared.changed:
            report["prepared"] = prepared.record()
        with atomic_path(out / "report.json") as tmp:
            tmp.write_text(json.dumps(report, indent=2, default=json_default))
        names = [p.name for p in files + pictures] + ["report.json"]
    return AlignRun(alignment, report, final, [final / n for n in names], skipped)


def run_align(mesh_a=None, mesh_b=None, *, parts_a=None, parts_b=None, out_dir: str | os.PathLike = "densemap-align",
              device=None, render: bool = True, progress: bool = False, repair: bool = False, view: bool = False,
              **options) -> AlignRun:
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
    repair : bool
        Weld coincident vertices and drop zero-area, sliver and duplicate faces and stray
        vertices before aligning (the outputs keep the files' vertex ids); without it such
        meshes are refused naming the first offender.
    view : bool
        Write ``view.html`` too, the interactive viewer (:mod:`densemap.mapping.view`).
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
    prep = prepare_pair(inputs, repair=repair)
    t_load = time.perf_counter() - t0
    drawn = AlignInputs(prep.mesh_a, prep.parts_a, prep.mesh_b, prep.parts_b) if prep.changed else inputs
    pipeline_keys = ("common_time_step", "t_scale", "length_scale", "method", "merge_islands", "rough_labels")
    aligner = Aligner(prep.mesh_a, prep.parts_a, prep.mesh_b, prep.parts_b, device=device,
                      **{k: options.pop(k) for k in pipeline_keys if k in options})
    # the pictures are drawn by a child process on the core the alignment leaves idle
    pictures = BackgroundPictures() if render else None
    try:
        if pictures is not None:
            pictures.parts(drawn, aligner.parts_a, aligner.parts_b)
        alignment = aligner.align(progress=progress, **options)
        if pictures is not None:
            pictures.transfer(drawn, alignment.b_to_a.indices)
        t1 = time.perf_counter()
        quality = aligner.quality(alignment, ground_truth_b_to_a=inputs.ground_truth_b_to_a, progress=progress)
        timings = {"load": t_load, **alignment.timings, "quality": time.perf_counter() - t1}
        return write_alignment_outputs(out_dir, inputs, prep.restore(alignment), quality, timings=timings,
                                       device=device, render=pictures or False, prepared=prep, view=view)
    finally:
        if pictures is not None:
            pictures.close()
