"""Embedded reference meshes: a MakeHuman-derived human and a chimpanzee-proportioned mesh.

Both carry the same 32 semantic parts and the 24 DensePose charts. The chimp was built
from the human (skinning deformation, then remeshing), so its ground-truth
correspondence to the human is known: :func:`chimp_to_human_ground_truth`.
See ``docs/reference-meshes.md`` and ``scripts/make_reference_meshes.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from .._validate import check_choice
from ..mesh import Mesh, load_mesh
from ..parts import PartLabels

__all__ = [
    "Species",
    "SPECIES",
    "Reference",
    "reference",
    "reference_human",
    "reference_chimp",
    "chimp_to_human_ground_truth",
    "part_names",
    "chart_names",
    "data_path",
]

# the embedded reference species (one alias for every module that takes a species name)
Species = Literal["human", "chimp"]
SPECIES: tuple[str, ...] = get_args(Species)


@dataclass(frozen=True)
class Reference:
    """A reference mesh with its 32 semantic parts and 24 DensePose charts (per vertex, 1..24)."""

    mesh: Mesh
    parts: PartLabels
    charts: PartLabels

    def __iter__(self):  # allows ``mesh, parts, charts = reference_human()``
        return iter((self.mesh, self.parts, self.charts))

    @property
    def chart_ids(self) -> np.ndarray:
        """(V,) int: DensePose chart id (1..24) of each vertex."""
        return self.charts.labels + 1


def data_path(name: str) -> Path:
    """Path of a file shipped in ``densemap/data``."""
    return Path(str(resources.files(__name__).joinpath(name)))


@lru_cache(maxsize=None)
def part_names() -> tuple[str, ...]:
    """The 32 semantic part names shared by both reference meshes (index = label)."""
    return tuple(json.loads(data_path("parts.json").read_text()))


@lru_cache(maxsize=None)
def chart_names() -> tuple[str, ...]:
    """The 24 DensePose chart names (index 0 = chart 1)."""
    return tuple(json.loads(data_path("charts.json").read_text()))


@lru_cache(maxsize=None)
def _load(species: str) -> Reference:
    mesh = load_mesh(data_path(f"{species}.obj"))
    mesh = Mesh(mesh.vertices, mesh.faces, name=f"reference {species}")
    parts = PartLabels(np.load(data_path(f"{species}_parts.npy")), part_names(), source=f"reference {species} parts")
    charts_raw = np.load(data_path(f"{species}_charts.npy")).astype(np.int64)
    charts = PartLabels(charts_raw - 1, chart_names(), source=f"reference {species} charts")
    return Reference(mesh, parts.check_mesh(mesh), charts.check_mesh(mesh))


def reference(species: Species) -> Reference:
    """The embedded reference mesh of ``species``: ``(mesh, parts, charts)``.

    Parameters
    ----------
    species : {"human", "chimp"}

    Returns
    -------
    Reference
        Loaded once per process and cached.

    Raises
    ------
    ValueError
        Unknown species.

    Examples
    --------
    >>> from densemap.data import reference
    >>> mesh, parts, charts = reference("chimp")
    >>> mesh.n_vertices, parts.n_parts, charts.n_parts
    (7049, 32, 24)
    """
    check_choice("species", species, SPECIES)
    return _load(species)


def reference_human() -> Reference:
    """The embedded human (MakeHuman base body, CC0): ``(mesh, parts, charts)``.

    ``charts`` holds chart ``c`` (1..24) as label ``c - 1``; see :attr:`Reference.chart_ids`.
    """
    return _load("human")


def reference_chimp() -> Reference:
    """The embedded chimpanzee-proportioned mesh: ``(mesh, parts, charts)``."""
    return _load("chimp")


@lru_cache(maxsize=None)
def chimp_to_human_ground_truth() -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth surface point on the human for each chimp vertex.

    Returns
    -------
    face : (V_chimp,) int
        Human face index.
    bary : (V_chimp, 3) float
        Barycentric coordinates in that face.
    """
    d = np.load(data_path("chimp_to_human.npz"))
    return d["face"].astype(np.int64), d["bary"].astype(np.float64)
