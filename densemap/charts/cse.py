"""A mesh in the files DensePose CSE (continuous surface embeddings) reads for a custom mesh.

The layout follows detectron2's DensePose readers, looked up in
``projects/DensePose/densepose/structures/mesh.py`` (``load_mesh_data``,
``load_mesh_auxiliary_data``, ``load_mesh_symmetry``),
``projects/DensePose/densepose/data/meshes/catalog.py`` and ``builtin.py`` (``MeshInfo``:
``data``, ``geodists``, ``symmetry``, ``texcoords`` paths) and
``projects/DensePose/densepose/modeling/cse/vertex_feature_embedder.py``
(``VertexFeatureEmbedder.load``, the Laplace-Beltrami init file). Each is a pickle:

=============================  ==============================================================
file                           content
=============================  ==============================================================
``<name>.pkl``                 ``{"vertices": (N, 3) float32, "faces": (M, 3) int64}``
``texcoords_<name>.pkl``       (N, 2) float32: one global, normalised (u, v) per vertex
``phi_<name>_<K>.pkl``         ``{"features": (N, K) float32}``: the Laplace-Beltrami
                               eigenbasis a ``vertex_feature`` embedder starts from
``geodists_<name>.pkl``        (N, N) float32 geodesic distances (optional: N^2 values)
``mesh_info.json``             the ``MeshInfo`` fields and the embedder settings to register
=============================  ==============================================================

Texture coordinates: DensePose CSE keeps one (u, v) per vertex, so each vertex takes its
lowest chart's (U, V) placed in that chart's tile of DensePose's 4 x 6 texture atlas
(:func:`~densemap.charts.export.texture_atlas_coords`), scaled to [0, 1].

With a map to a reference (``transport_basis``) the basis is the reference's, carried
through the map and made orthonormal in the new mesh's mass inner product by the
symmetric (Löwdin) orthonormalisation ``Phi (Phi^T M Phi)^(-1/2)``, the orthonormal
basis nearest to the carried one: an embedder trained on the reference then gives a new
vertex about the embedding of its matched reference point — a shared embedding across
species. Written by hand: it is a few lines of linear algebra on arrays densemap has.
"""

from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import DensemapError
from ..mesh import Mesh
from .atlas import ChartAtlas

__all__ = ["CSEExport", "cse_texcoords", "transport_basis", "export_cse", "load_cse", "run_export_cse"]

#: the feature dimension of DensePose's own Laplace-Beltrami files (phi_smpl_27554_256.pkl)
DEFAULT_K = 256


@dataclass
class CSEExport:
    """What :func:`export_cse` wrote: file paths by role, and the basis."""

    files: dict
    basis: np.ndarray
    info: dict


def cse_texcoords(atlas: ChartAtlas) -> np.ndarray:
    """(N, 2) float: each vertex's (U, V) in its lowest chart, placed in the 4 x 6 texture atlas, in [0, 1].

    Vertices in no chart get (0, 0).
    """
    from .export import TEXTURE_GRID
    from .iuv import vertex_to_iuv

    iuv = vertex_to_iuv(np.arange(atlas.n_vertices), atlas)
    ok = iuv[:, 0] > 0
    rows, cols = TEXTURE_GRID
    i = np.where(ok, iuv[:, 0], 1).astype(np.int64)
    u, v = np.nan_to_num(iuv[:, 1]), np.nan_to_num(iuv[:, 2])
    col, row = (i - 1) // rows, (i - 1) % rows
    out = np.c_[(col + u) / cols, 1.0 - (row + (1.0 - v)) / rows]
    out[~ok] = 0.0
    return np.clip(out, 0.0, 1.0)


def _mass(mesh: Mesh) -> np.ndarray:
    from ..laplacian import mesh_laplacian

    _, mass = mesh_laplacian(mesh.vertices, mesh.faces, "cotan")
    mass = mass / mass.sum()
    return np.maximum(mass, 1e-12 / mesh.n_vertices)  # as laplacian_basis: unit area, no zero mass


def transport_basis(basis_ref: np.ndarray, new_to_ref, new_mesh: Mesh) -> np.ndarray:
    """(V_new, K) the reference's basis carried through a map, orthonormal for the new mesh's mass.

    Parameters
    ----------
    basis_ref : (V_ref, K) float
    new_to_ref : VertexMap
        The reference point of each new vertex (surface points are interpolated).
    new_mesh : Mesh

    Returns
    -------
    (V_new, K) float
        ``Phi (Phi^T M Phi)^(-1/2)`` with ``Phi`` the carried basis and ``M`` the new
        mesh's lumped mass at unit area (as :func:`~densemap.mapping.basis.laplacian_basis`).

    Examples
    --------
    Through the identity map a basis comes back as it was:

    >>> import numpy as np, trimesh
    >>> from densemap import Mesh
    >>> from densemap.mapping import VertexMap, laplacian_basis
    >>> s = trimesh.creation.icosphere(subdivisions=3)
    >>> mesh = Mesh(s.vertices, s.faces)
    >>> _, phi, _ = laplacian_basis(mesh, 8, cache=False)
    >>> same = VertexMap(np.arange(mesh.n_vertices), np.zeros(mesh.n_vertices))
    >>> bool(np.allclose(transport_basis(phi, same, mesh), phi, atol=1e-8))
    True
    """
    from ..mapping.vertex_map import transfer

    phi = transfer(np.asarray(basis_ref, dtype=np.float64), new_to_ref, surface=new_to_ref.has_surface
                   and new_to_ref.corners is not None)
    if phi.shape[0] != new_mesh.n_vertices:
        raise DensemapError(f"the map gives {phi.shape[0]} rows but {new_mesh.name} has {new_mesh.n_vertices} vertices")
    gram = phi.T @ (phi * _mass(new_mesh)[:, None])
    w, u = np.linalg.eigh(0.5 * (gram + gram.T))
    if not w.min() > 1e-10 * max(w.max(), 1e-300):
        raise DensemapError(f"the carried basis is rank-deficient on {new_mesh.name} (the map covers too little of "
                            "the reference); use fewer functions")
    return phi @ (u / np.sqrt(w)) @ u.T


def _pickle(path: Path, obj) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=4)
    return path


def export_cse(mesh: Mesh, out_dir: str | os.PathLike, *, name: str, atlas: ChartAtlas | None = None, k: int = DEFAULT_K,
               basis: np.ndarray | None = None, geodists: bool = False, progress: bool = False) -> CSEExport:
    """Write a mesh's DensePose CSE files into ``out_dir`` (see the module table).

    Parameters
    ----------
    mesh : Mesh
    out_dir : path-like
    name : str
        The mesh's name in DensePose's mesh catalog (files are named after it).
    atlas : ChartAtlas, optional
        Gives the texture coordinates (no ``texcoords`` file without it).
    k : int
        Basis functions when ``basis`` is not given (the mesh's own eigenbasis).
    basis : (V, K) float, optional
        E.g. :func:`transport_basis` of a reference's.
    geodists : bool
        Also write the (N, N) geodesic distances (heat method).

    Returns
    -------
    CSEExport
    """
    from ..mapping.basis import laplacian_basis

    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise DensemapError(f"invalid CSE mesh name {name!r}: a file name without folders")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if basis is None:
        basis = laplacian_basis(mesh, min(int(k), mesh.n_vertices - 1))[1]
    basis = np.asarray(basis, dtype=np.float64)
    if basis.shape[0] != mesh.n_vertices:
        raise DensemapError(f"the basis has {basis.shape[0]} rows but {mesh.name} has {mesh.n_vertices} vertices")
    K = basis.shape[1]
    files = {"data": _pickle(out / f"{name}.pkl", {"vertices": mesh.vertices.astype(np.float32),
                                                   "faces": mesh.faces.astype(np.int64)}),
             "lbo": _pickle(out / f"phi_{name}_{K}.pkl", {"features": basis.astype(np.float32)})}
    if atlas is not None:
        atlas.check_mesh(mesh)
        files["texcoords"] = _pickle(out / f"texcoords_{name}.pkl", cse_texcoords(atlas).astype(np.float32))
    if geodists:
        from ..geodesics import GeodesicSolver

        d = GeodesicSolver(mesh).distances(np.arange(mesh.n_vertices), progress=progress).astype(np.float32)
        files["geodists"] = _pickle(out / f"geodists_{name}.pkl", 0.5 * (d + d.T))
    info = {"mesh_info": {"name": name, "data": files["data"].name,
                          "geodists": files["geodists"].name if "geodists" in files else None, "symmetry": None,
                          "texcoords": files["texcoords"].name if "texcoords" in files else None},
            "embedder": {"TYPE": "vertex_feature", "NUM_VERTICES": mesh.n_vertices, "FEATURE_DIM": K,
                         "INIT_FILE": files["lbo"].name}}
    with atomic_path(out / "mesh_info.json") as tmp:
        tmp.write_text(json.dumps(info, indent=1) + "\n")
    files["info"] = out / "mesh_info.json"
    return CSEExport(files, basis, info)


def load_cse(out_dir: str | os.PathLike, name: str) -> dict:
    """Read the files back as DensePose does (pickles of arrays), for checks: ``vertices``, ``faces``, ``features``, ..."""
    out = Path(out_dir)
    info = json.loads((out / "mesh_info.json").read_text())

    def load(p):
        with open(out / p, "rb") as fh:
            return pickle.load(fh)  # our own files, written by export_cse

    data = load(info["mesh_info"]["data"])
    res = {"vertices": data["vertices"], "faces": data["faces"], "features": load(info["embedder"]["INIT_FILE"])["features"]}
    for key in ("texcoords", "geodists"):
        if info["mesh_info"][key]:
            res[key] = load(info["mesh_info"][key])
    return res


def run_export_cse(mesh, out_dir, *, name: str | None = None, atlas=None, alignment=None, reference=None,
                   k: int = DEFAULT_K, geodists: bool = False, progress: bool = False) -> CSEExport:
    """What ``densemap export-cse`` does: load, pick the basis, :func:`export_cse`.

    Parameters
    ----------
    mesh : path-like or {"human", "chimp"}
        An embedded mesh comes with its atlas (texture coordinates).
    atlas : path-like, optional
        An atlas file for the texture coordinates.
    alignment, reference : optional
        An alignment file holding the map from ``mesh`` onto ``reference`` (``human``,
        ``chimp`` or a mesh file): the basis is then the reference's first ``k``
        eigenfunctions carried through it (:func:`transport_basis`); else the mesh's own.
    """
    from ..mapping.basis import laplacian_basis
    from .make import _mesh, load_reference_atlas, map_to_reference

    new, embedded = _mesh(mesh)
    name = name or (f"{mesh}_{new.n_vertices}" if embedded is not None else f"{Path(str(mesh)).stem}_{new.n_vertices}")
    at = load_reference_atlas(atlas, mesh=new) if atlas is not None else (
        load_reference_atlas(str(mesh)) if embedded is not None else None)
    basis = None
    if (alignment is None) != (reference is None):
        raise DensemapError("a transported basis needs both the alignment (--map) and the reference mesh (--ref)")
    if alignment is not None:
        ref, _ = _mesh(reference)
        vmap = map_to_reference(alignment, new, ref)
        basis = transport_basis(laplacian_basis(ref, min(int(k), ref.n_vertices - 1))[1], vmap, new)
    return export_cse(new, out_dir, name=name, atlas=at, k=k, basis=basis, geodists=geodists, progress=progress)
