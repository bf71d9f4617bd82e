"""Charts for any mesh, as one call: :func:`make_charts` (what ``densemap charts`` does).

Two methods:

* ``"flatten"``: each part (or chart label) flattened on its own (:func:`build_atlas`);
* ``"transfer"``: a reference atlas's charts and (u, v) carried through a map onto the
  mesh (:func:`~densemap.charts.relax.carry_atlas`), then relaxed to a fold-free
  parametrisation in ``[0, 1]`` (:func:`~densemap.charts.relax.relax_atlas`).

The atlas is written in the format of the output's suffix (:func:`export_atlas`:
``.npz``, ``.mat``, ``.obj``, ``.ply``, ``.png``) and the report gives the distortion
per chart (area, angle) and the flipped-triangle fraction (before and after relaxing).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from .._validate import check_choice
from ..errors import AtlasError
from ..mesh import Mesh, load_mesh
from ..parts import PartLabels, load_parts
from .atlas import ChartAtlas

__all__ = ["ChartsRun", "make_charts", "load_reference_atlas", "map_to_reference"]

Method = Literal["flatten", "transfer"]


@dataclass
class ChartsRun:
    """What :func:`make_charts` did: the atlas, its report and the file written."""

    atlas: ChartAtlas
    report: dict
    path: Path


def _mesh(spec) -> tuple[Mesh, object]:
    """A mesh file, or ``human``/``chimp`` for an embedded mesh (with its Reference)."""
    from ..data import SPECIES, reference

    if isinstance(spec, Mesh):
        return spec, None
    if str(spec) in SPECIES:
        ref = reference(str(spec))
        return ref.mesh, ref
    return load_mesh(spec), None


def load_reference_atlas(spec, *, mesh: Mesh | None = None) -> ChartAtlas:
    """``human``/``chimp`` (the embedded atlases) or an atlas file (``.npz``, ``.mat``, ``.obj``)."""
    from ..data import SPECIES
    from .io import load_atlas
    from .reference import reference_atlas

    if str(spec) in SPECIES:
        return reference_atlas(str(spec))
    return load_atlas(spec, mesh)


def map_to_reference(alignment_path, new_mesh: Mesh, ref_atlas):
    """The map of an alignment file that sends ``new_mesh``'s vertices onto the reference.

    ``densemap align REF NEW`` stores it as ``b_to_a``; an alignment made the other way
    round (``align NEW REF``) as ``a_to_b``; the one whose source has the new mesh's
    vertex count and whose target has the atlas's is taken.
    """
    from ..mapping.alignment import load_alignment

    n_ref = ref_atlas.n_vertices  # an atlas or a mesh
    al = load_alignment(alignment_path)
    for m in (al.b_to_a, al.a_to_b):
        if len(m) == new_mesh.n_vertices and m.n_target == n_ref:
            return m
    raise AtlasError(f"{alignment_path}: neither map of the alignment goes from {new_mesh.n_vertices} vertices "
                     f"({new_mesh.name}) to the reference's {n_ref}")


def _labels(mesh: Mesh, ref, parts, charts) -> tuple[PartLabels, str]:
    if parts is not None and charts is not None:
        raise ValueError("give --parts or --charts, not both")
    if charts is not None:
        return (charts if isinstance(charts, PartLabels) else load_parts(charts, mesh)), "charts"
    if parts is not None:
        return (parts if isinstance(parts, PartLabels) else load_parts(parts, mesh)), "parts"
    if ref is not None:
        return ref.charts, "charts"
    raise ValueError(f"{mesh.name}: give the part labels (--parts) or chart labels (--charts) to flatten")


def _summary(d: dict) -> dict:
    keys = ("faces", "flipped", "degenerate", "flipped_fraction", "degenerate_fraction", "area", "angle",
            "area_median", "angle_median")
    return {k: d[k] for k in keys if k in d}


def make_charts(mesh, out: str | os.PathLike, *, method: Method = "flatten", parts=None, charts=None,
                reference=None, alignment=None, atlas=None, fit_weight: float = 1.0, iterations: int = 1500) -> ChartsRun:
    """Build an atlas for a mesh and write it (format from ``out``'s suffix).

    Parameters
    ----------
    mesh : path-like, Mesh or {"human", "chimp"}
    out : path-like
        ``.npz`` (densemap atlas), ``.mat`` (DensePose ``UV_Processed.mat``), ``.obj``
        (``vt`` + chart groups), ``.ply`` (per-vertex part/chart/u/v), ``.png`` (texture atlas).
    method : {"flatten", "transfer"}
    parts, charts : path-like or PartLabels, optional
        ``flatten``: the labels whose regions become charts (an embedded mesh defaults to
        its 24 charts); ``parts`` also go into a ``.ply``'s ``part`` property.
    reference : {"human", "chimp"} or path-like
        ``transfer``: the reference atlas (embedded, or an atlas file).
    alignment : path-like
        ``transfer``: an alignment file (``densemap align REF MESH``) holding the map
        from the mesh onto the reference (:func:`map_to_reference`).
    atlas : path-like, optional
        An existing atlas of the mesh (``.npz``, ``.mat``, ``.obj``) to write in another
        format instead of building one (``method`` is then ignored).
    fit_weight, iterations
        Of the relaxation (:func:`~densemap.charts.relax.relax_atlas`).

    Returns
    -------
    ChartsRun
        ``report``: method, mesh, charts, ``distortion`` (overall and ``per_chart``: area,
        angle, flipped, degenerate) and, for ``transfer``, ``before`` (the carried charts)
        with the same figures.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> run = make_charts("chimp", pathlib.Path(tempfile.mkdtemp()) / "chimp.npz")
    >>> run.atlas.n_charts, run.report["distortion"]["flipped_fraction"]
    (24, 0.0)
    """
    from .export import ATLAS_SUFFIXES, export_atlas
    from .flatten import build_atlas
    from .relax import carry_atlas, chart_report, relax_atlas

    check_choice("method", method, get_args(Method))
    out = Path(out)
    if out.suffix.lower() not in ATLAS_SUFFIXES:
        raise AtlasError(f"{out}: unsupported atlas format {out.suffix!r}; expected one of {list(ATLAS_SUFFIXES)}")
    new, ref = _mesh(mesh)
    part_labels = None
    if parts is not None:
        part_labels = parts if isinstance(parts, PartLabels) else load_parts(parts, new)
    report: dict = {"method": method, "mesh": {"name": new.name, "vertices": new.n_vertices, "faces": new.n_faces}}
    if atlas is not None:
        from .io import load_atlas

        atlas = load_atlas(atlas, new)
        report["method"] = "read"
        dist = chart_report(new, atlas)
    elif method == "flatten":
        labels, kind = _labels(new, ref, part_labels, charts)
        atlas = build_atlas(new, labels, name=f"{kind} atlas of {new.name}")
        report["labels"] = kind
        dist = chart_report(new, atlas)
    else:
        if reference is None or alignment is None:
            raise ValueError("method 'transfer' needs the reference atlas (--from) and the alignment (--map)")
        ref_atlas = load_reference_atlas(reference)
        vmap = map_to_reference(alignment, new, ref_atlas)
        carried, weight = carry_atlas(ref_atlas, new, vmap, ref_faces=_ref_faces(reference, ref_atlas))
        atlas = relax_atlas(new, carried, weight, fit_weight=fit_weight, iterations=iterations)
        report["reference"] = {"atlas": ref_atlas.name, "alignment": str(alignment)}
        report["before"] = {**_summary(atlas.distortion["before"]), "per_chart": atlas.distortion["before"]["per_chart"]}
        report["relax"] = {k: atlas.distortion[k] for k in ("pieces", "restarted_pieces", "misfit_median", "misfit_p90")}
        dist = atlas.distortion["after"]
    report["charts"] = int(atlas.n_charts)
    report["distortion"] = {**_summary(dist), "per_chart": dist["per_chart"]}
    path = export_atlas(new, atlas, out, parts=part_labels)
    return ChartsRun(atlas, report, path)


def _ref_faces(reference, ref_atlas: ChartAtlas) -> np.ndarray:
    """The faces the alignment's surface points index: the embedded mesh's, else the atlas's."""
    from ..data import SPECIES, reference as embedded

    if str(reference) in SPECIES:
        return embedded(str(reference)).mesh.faces
    return ref_atlas.faces
