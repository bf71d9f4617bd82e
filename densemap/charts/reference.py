"""The chart atlases of the embedded reference meshes."""

from __future__ import annotations

from functools import lru_cache

from ..data import Species, data_path, reference
from ..errors import AtlasError
from .atlas import ChartAtlas
from .flatten import build_atlas
from .io import load_atlas

__all__ = ["reference_atlas"]


@lru_cache(maxsize=None)
def reference_atlas(species: Species) -> ChartAtlas:
    """Atlas of an embedded reference mesh (its 24 charts flattened by :func:`build_atlas`).

    Read from ``densemap/data/<species>_atlas.npz`` (written by
    ``scripts/make_example_annotations.py``) when that file matches the mesh; built
    (about a second) otherwise.

    Examples
    --------
    >>> from densemap.charts import reference_atlas
    >>> atlas = reference_atlas("chimp")
    >>> atlas.n_charts, atlas.n_faces
    (24, 14094)
    """
    ref = reference(species)
    path = data_path(f"{species}_atlas.npz")
    if path.is_file():
        try:
            return load_atlas(path, ref.mesh)
        except AtlasError:
            pass  # stale file (the mesh changed): rebuild
    return build_atlas(ref.mesh, ref.charts, name=f"reference {species} atlas")
