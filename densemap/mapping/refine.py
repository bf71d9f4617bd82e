"""Refinement of a vertex map beyond the nearest descriptor: ZoomOut spectral upsampling.

The descriptor map is coarse: points around a limb's circumference are at nearly the
same distance from every part, so they get confused, and many source vertices collapse
onto a few targets. ZoomOut (Melzi et al., "ZoomOut: Spectral Upsampling for Efficient
Shape Correspondence", SIGGRAPH Asia 2019) alternates between a functional map in a
growing Laplacian eigenbasis and a point-to-point map by nearest neighbour in the
spectral embedding, which smooths the map while keeping it close to the initial one.

Hand-written here (the method is a few lines) rather than taken from ``geomfum`` or
``pyfmaps``: we need the nearest-neighbour step restricted to parts and with the part
descriptors appended as extra coordinates, which neither exposes, and both would add
several dependencies (scikit-learn, meshio, gsops...) for these few lines.

Conventions. Eigenbases are computed on the mesh scaled to unit area, so that
``Phi.T @ diag(mass) @ Phi = I`` and isometric shapes of different size have
comparable bases. For a map ``a_to_b`` (matrix ``Pi``, ``Pi[i, a_to_b[i]] = 1``) the
functional map ``C`` (k x k) carries coefficients of functions on B to A:
``Phi_a @ C ~ Pi @ Phi_b``, so ``C = Phi_a^+ Pi Phi_b = Phi_a.T @ diag(mass_a) @ Phi_b[a_to_b]``
(the mass-weighted pseudo-inverse), and row ``i`` of ``Phi_a @ C`` should equal
``Phi_b[a_to_b[i]]``: the new ``a_to_b`` is the nearest row of ``Phi_b``.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from .._validate import check_choice
from ..laplacian import LaplacianKind
from ..mesh import Mesh
from ..parts import PartLabels, match_parts
from .basis import EIGEN_DENSE_MAX_VERTICES, Eigensolver, clear_basis_cache, laplacian_basis, part_area_scale
from .consistent import consistent_zoomout, spectral_embeddings, spread_samples
from .matching import MatchBackend, match_descriptors, surface_points
from .vertex_map import VertexMap

__all__ = ["laplacian_basis", "zoomout", "refine_map", "refine_maps", "clear_basis_cache", "EIGEN_DENSE_MAX_VERTICES"]

Method = Literal["consistent", "zoomout"]
# the basis size the refinement grows to (refine_maps' k_final); align's polish step is sized from it
K_FINAL = 120


from .consistent import _desc_scale, _fmap, _schedule  # noqa: E402  (shared with the consistent form)


def zoomout(phi_a, mass_a, phi_b, mass_b, a_to_b, b_to_a=None, *, k_init: int = 20, step: int = 5,
            labels_a=None, labels_b=None, desc_a=None, desc_b=None, desc_weight: float = 0.0, device=None,
            backend: MatchBackend = "auto") -> tuple[np.ndarray, np.ndarray | None]:
    """ZoomOut on plain arrays: eigenbases and point maps in, refined point maps out.

    The basis grows from ``k_init`` functions to all the columns given, by ``step``;
    at each size the functional map of the current point map is computed (averaged with
    the reverse map's adjoint when ``b_to_a`` is given) and the point maps are recomputed
    by nearest neighbour in the spectral embedding.

    Parameters
    ----------
    phi_a : (V_a, K) float
        Eigenfunctions of A, orthonormal for ``mass_a``; likewise ``phi_b`` (V_b, K).
    mass_a : (V_a,) float
    mass_b : (V_b,) float
    a_to_b : (V_a,) int
        Initial B vertex of each A vertex.
    b_to_a : (V_b,) int, optional
        Initial reverse map, refined jointly.
    k_init, step : int
    labels_a, labels_b : (V,) int, optional
        Part labels: nearest neighbours only within the same part.
    desc_a, desc_b : (V, L) float, optional
        Descriptors appended to the spectral embedding, scaled to unit RMS deviation,
        times ``desc_weight * sqrt(k)``.
    desc_weight : float
    device, backend
        Where the nearest-neighbour searches run (:func:`match_descriptors`).

    Returns
    -------
    a_to_b : (V_a,) int
    b_to_a : (V_b,) int or None

    Examples
    --------
    The identity is a fixed point:

    >>> import numpy as np
    >>> from densemap.data import reference
    >>> _, phi, mass = laplacian_basis(reference("chimp").mesh, 30)
    >>> ident = np.arange(len(phi))
    >>> a, b = zoomout(phi, mass, phi, mass, ident, ident, k_init=10, step=10)
    >>> bool((a == ident).all() and (b == ident).all())
    True
    """
    a_to_b = np.asarray(a_to_b, dtype=np.int64)
    b_to_a = None if b_to_a is None else np.asarray(b_to_a, dtype=np.int64)
    k_max = min(phi_a.shape[1], phi_b.shape[1])
    use_desc = desc_weight > 0 and desc_a is not None and desc_b is not None
    s = _desc_scale(desc_a, desc_b) if use_desc else 0.0
    # brute force (one GEMM per part) beats a KD-tree in these 100+ dimensions
    nn = dict(same_part=labels_a is not None, device=device, backend="torch" if backend == "auto" else backend)

    def p2p(emb_src, emb_tgt, d_src, d_tgt, l_src, l_tgt, k):
        if use_desc:
            # descriptors weigh desc_weight times the spectral embedding (row norm ~ sqrt(k))
            w = desc_weight * s * np.sqrt(k)
            emb_src = np.hstack([emb_src, w * d_src])
            emb_tgt = np.hstack([emb_tgt, w * d_tgt])
        return match_descriptors(emb_src, emb_tgt, parts_src=l_src, parts_tgt=l_tgt, **nn).indices

    for k in _schedule(k_init, k_max, step):
        pa, pb = phi_a[:, :k], phi_b[:, :k]
        c = _fmap(pa, mass_a, pb, a_to_b)
        if b_to_a is not None:
            # the two maps' functional maps are each other's adjoints for an isometry
            c = 0.5 * (c + _fmap(pb, mass_b, pa, b_to_a).T)
            b_to_a = p2p(pb @ c.T, pa, desc_b, desc_a, labels_b, labels_a, k)
        a_to_b = p2p(pa @ c, pb, desc_a, desc_b, labels_a, labels_b, k)
    return a_to_b, b_to_a


def _refined(vmap: VertexMap, idx, d_src, d_tgt) -> VertexMap:
    dist = np.linalg.norm(d_src - d_tgt[idx], axis=1) if d_src is not None and d_tgt is not None else np.full(len(idx), np.nan)
    return VertexMap(idx, dist, source_name=vmap.source_name, target_name=vmap.target_name, n_target=vmap.n_target)


def _check_maps(mesh_a: Mesh, mesh_b: Mesh, a_to_b: VertexMap, b_to_a: VertexMap | None) -> None:
    if len(a_to_b) != mesh_a.n_vertices:
        raise ValueError(f"a_to_b has {len(a_to_b)} entries but mesh {mesh_a.name!r} has {mesh_a.n_vertices} vertices")
    if len(a_to_b) and a_to_b.indices.max() >= mesh_b.n_vertices:
        raise ValueError(f"a_to_b points at vertex {int(a_to_b.indices.max())} but mesh {mesh_b.name!r} has {mesh_b.n_vertices}")
    if b_to_a is not None and (
        len(b_to_a) != mesh_b.n_vertices or (len(b_to_a) and b_to_a.indices.max() >= mesh_a.n_vertices)
    ):
        raise ValueError(f"b_to_a must map the {mesh_b.n_vertices} vertices of {mesh_b.name!r} to the {mesh_a.n_vertices} of {mesh_a.name!r}")


def _check_descriptors(mesh_a: Mesh, mesh_b: Mesh, desc_a, desc_b):
    if (desc_a is None) != (desc_b is None):
        raise ValueError("desc_a and desc_b must be given together")
    if desc_a is None:
        return None, None
    desc_a, desc_b = np.asarray(desc_a, dtype=np.float64), np.asarray(desc_b, dtype=np.float64)
    if len(desc_a) != mesh_a.n_vertices or len(desc_b) != mesh_b.n_vertices or desc_a.shape[1:] != desc_b.shape[1:]:
        raise ValueError(f"descriptors of shapes {desc_a.shape} and {desc_b.shape} do not fit meshes of "
                         f"{mesh_a.n_vertices} and {mesh_b.n_vertices} vertices")
    return desc_a, desc_b


def refine_maps(
    mesh_a: Mesh,
    mesh_b: Mesh,
    a_to_b: VertexMap,
    b_to_a: VertexMap | None = None,
    *,
    method: Method = "consistent",
    k_init: int = 20,
    k_final: int = K_FINAL,
    step: int = 5,
    bijective_weight: float = 1.0,
    same_part: bool = False,
    parts_a: PartLabels | None = None,
    parts_b: PartLabels | None = None,
    desc_a=None,
    desc_b=None,
    desc_weight: float = 0.0,
    laplacian: LaplacianKind = "cotan",
    eigensolver: Eigensolver = "auto",
    max_samples: int | None = 4000,
    agree: bool = True,
    label_penalty: float = 0.0,
    assign: bool = False,
    balance: float = 1.0,
    polish: int | None = None,
    polish_parts: bool = True,
    area_match: bool = True,
    surface: bool = False,
    device=None,
    backend: MatchBackend = "auto",
    progress: bool = False,
) -> tuple[VertexMap, VertexMap | None]:
    """Refine a vertex map from A to B (and jointly its reverse) in Laplacian eigenbases.

    Parameters
    ----------
    mesh_a, mesh_b : Mesh
    a_to_b : VertexMap
        The initial map (e.g. the descriptor map).
    b_to_a : VertexMap, optional
        The initial reverse map; when given both are refined together (one functional
        map per step, the mean of the two directions' estimates).
    method : {"consistent", "zoomout"}
        ``"consistent"`` (:func:`~densemap.mapping.consistent.consistent_zoomout`): both
        maps, each pulled toward the other's inverse by a bijectivity term (Ren et al.
        2021); ``"zoomout"``: the paper's ZoomOut (Melzi et al. 2019, :func:`zoomout`).
    k_init, k_final, step : int
        The eigenbasis grows from ``k_init`` to ``k_final`` functions by ``step``
        (capped at ``V - 1``).
    bijective_weight : float
        Weight of the bijectivity term (``"consistent"`` only; 0 = ZoomOut per direction).
    same_part : bool
        Nearest neighbours only within the same part (needs ``parts_a``, ``parts_b``),
        so the refined map keeps the descriptor map's semantics.
    desc_a, desc_b : (V_a, L), (V_b, L) float, optional
        Part descriptors, appended to the spectral embedding in the nearest-neighbour
        step; also used to report ``distances``.
    desc_weight : float
        0 = no descriptors; 1 = descriptors weigh as much as the spectral coordinates.
    laplacian : {"cotan", "robust"}
    eigensolver : str
        See :func:`~densemap.mapping.basis.laplacian_basis`.
    max_samples : int or None
        ``"consistent"``: iterate on about this many spread vertices per mesh (0.8-1.25x;
        a mesh with no more vertices uses all), then compute the full-resolution maps once
        from the final functional maps (None: every vertex).
    label_penalty : float
        ``"consistent"`` with ``same_part``: the final step may match into adjacent parts
        at this penalty (see :func:`~densemap.mapping.consistent.consistent_zoomout`);
        0 keeps every match in its own part.
    assign : bool
        ``"consistent"``: one-to-one assignments in the final step for the parts where
        the source is the sparser mesh (see :func:`~densemap.mapping.consistent.consistent_zoomout`).
    balance : float
        ``"consistent"``: in the final step no target vertex takes more than ``balance``
        times its area's share of the matches, unless the only candidates with room are
        far worse (default 1; 0: plain nearest neighbours; see
        :func:`~densemap.mapping.consistent.consistent_zoomout`). It lowers the error and
        the many-to-one collapse with clean and coarse labels (docs/alignment.md). A
        ``label_penalty`` above 0 turns it off.
    polish : int, optional
        ``"consistent"``: after the final step, one more full-resolution step in this many
        eigenfunctions (more than ``k_final``), from the final maps (see
        :func:`~densemap.mapping.consistent.consistent_zoomout`; None: off). The
        eigenbases are then computed to ``polish`` functions.
    polish_parts : bool
        ``"consistent"`` with ``polish``: False lets the polish step match across parts,
        for rough labels (see :func:`~densemap.mapping.consistent.consistent_zoomout`).
    agree : bool
        ``"consistent"``: one functional map for both directions (see
        :func:`~densemap.mapping.consistent.consistent_zoomout`).
    area_match : bool
        ``"consistent"`` with ``parts_a`` and ``parts_b``: compute B's eigenbasis with
        its vertex areas scaled so that each part has A's share of the area
        (:func:`~densemap.mapping.basis.part_area_scale`, a conformal change of B's
        metric). A's basis is unchanged, so a template's cached basis serves every animal.
        It lowers the error on every pair whose proportions differ (docs/alignment.md,
        "Area-matched bases"), but needs careful labels: rough ones give wrong areas
        (:class:`~densemap.mapping.pipeline.Aligner` turns it off for labels it takes
        for rough). False is the plain basis; ``"zoomout"`` never uses it.
    surface : bool
        ``"consistent"``: also give each map surface points, the closest point in the
        final embedding within the matched vertex's cell (the part of its one-ring
        where it keeps the largest barycentric weight, so the point stays in its part).
    device, backend
        Where the nearest-neighbour searches run (see :func:`match_descriptors`).
    progress : bool
        tqdm bars over the refinement steps.

    Returns
    -------
    a_to_b : VertexMap
        The refined map; ``distances`` are the descriptor distances of the new matches
        (NaN without descriptors).
    b_to_a : VertexMap or None
        The refined reverse map when ``b_to_a`` was given.
    """
    check_choice("method", method, get_args(Method))
    _check_maps(mesh_a, mesh_b, a_to_b, b_to_a)
    if not 1 <= k_init <= k_final:
        raise ValueError(f"need 1 <= k_init <= k_final, got k_init={k_init}, k_final={k_final}")
    labels_a = labels_b = None
    if same_part:
        if parts_a is None or parts_b is None:
            raise ValueError("same_part=True needs parts_a and parts_b")
        parts_b = match_parts(parts_a.check_mesh(mesh_a), parts_b.check_mesh(mesh_b))
        labels_a, labels_b = parts_a.labels, parts_b.labels
    desc_a, desc_b = _check_descriptors(mesh_a, mesh_b, desc_a, desc_b)
    if not balance >= 0:
        raise ValueError(f"balance must be >= 0 (0: off), got {balance}")
    if desc_weight < 0 or bijective_weight < 0:
        raise ValueError(f"desc_weight and bijective_weight must be >= 0, got {desc_weight}, {bijective_weight}")
    k_max = min(k_final, mesh_a.n_vertices - 1, mesh_b.n_vertices - 1)
    k_basis = k_max
    if method == "consistent" and polish is not None:
        if polish <= k_final:
            raise ValueError(f"polish must be more eigenfunctions than k_final={k_final}, got {polish}")
        k_basis = min(int(polish), mesh_a.n_vertices - 1, mesh_b.n_vertices - 1)
        polish = k_basis if k_basis > k_max else None  # a mesh too small for more: no polish
    from tqdm.auto import tqdm

    scales = [None, None]
    if method == "consistent" and area_match and parts_a is not None and parts_b is not None:
        pb = parts_b if same_part else match_parts(parts_a.check_mesh(mesh_a), parts_b.check_mesh(mesh_b))
        f = part_area_scale(mesh_a, parts_a.labels, mesh_b, pb.labels)
        # parts already in proportion (a remesh, a posed copy): the plain basis, cached once
        scales[1] = None if np.abs(f - 1.0).max() <= 1e-9 else f
    bases = [laplacian_basis(m, k_basis, laplacian=laplacian, eigensolver=eigensolver, mass_scale=f)
             for m, f in tqdm(list(zip((mesh_a, mesh_b), scales)), desc="Laplacian eigenbases", unit="mesh",
                              disable=not progress, leave=False)]
    (_, phi_a, mass_a), (_, phi_b, mass_b) = bases
    if method == "zoomout":
        ia, ib = zoomout(
            phi_a, mass_a, phi_b, mass_b, a_to_b.indices, None if b_to_a is None else b_to_a.indices,
            k_init=k_init, step=step, labels_a=labels_a, labels_b=labels_b, desc_a=desc_a, desc_b=desc_b,
            desc_weight=float(desc_weight), device=device, backend=backend,
        )
        out_a = _refined(a_to_b, ia, desc_a, desc_b)
        return out_a, None if b_to_a is None else _refined(b_to_a, ib, desc_b, desc_a)
    samples = [None, None]
    if max_samples is not None:
        for i, (mesh, mass, lab) in enumerate(((mesh_a, mass_a, labels_a), (mesh_b, mass_b, labels_b))):
            if mesh.n_vertices > max_samples:
                samples[i] = spread_samples(mesh.vertices, mass, int(max_samples), lab)
    neighbours = None
    if same_part and label_penalty > 0:
        from ..parts import part_adjacency

        g = part_adjacency(mesh_a, parts_a)
        neighbours = {k: np.array([k] + [parts_a.index(m) for m in g.neighbors(n)]) for k, n in enumerate(parts_a.names)}
    ib = None if b_to_a is None else b_to_a.indices
    res = consistent_zoomout(phi_a, mass_a, phi_b, mass_b, a_to_b.indices, ib, k_init=k_init, step=step,
                             bijective_weight=float(bijective_weight), labels_a=labels_a, labels_b=labels_b,
                             desc_a=desc_a, desc_b=desc_b, desc_weight=float(desc_weight), samples_a=samples[0],
                             samples_b=samples[1], agree=bool(agree), neighbours=neighbours,
                             label_penalty=float(label_penalty), assign=bool(assign), balance=float(balance),
                             k_final=k_max, polish=polish, polish_parts=bool(polish_parts), device=device,
                             progress=progress)
    out_a = _refined(a_to_b, res.a_to_b, desc_a, desc_b)
    rev = b_to_a if b_to_a is not None else VertexMap(res.b_to_a, np.zeros(len(res.b_to_a)), source_name=a_to_b.target_name,
                                                     target_name=a_to_b.source_name, n_target=mesh_a.n_vertices)
    out_b = _refined(rev, res.b_to_a, desc_b, desc_a)
    if surface:
        w, ds = res.weights
        k_last = res.c_ab.shape[0]  # k_max, or the polish step's size
        pa, pb = phi_a[:, :k_last], phi_b[:, :k_last]
        for which in ("a", "b"):
            src, tgt = (pa, pb) if which == "a" else (pb, pa)
            c_st, c_ts = (res.c_ab, res.c_ba) if which == "a" else (res.c_ba, res.c_ab)
            d_s, d_t = (desc_a, desc_b) if which == "a" else (desc_b, desc_a)
            # the functional map's image and the descriptors (the bijectivity block only
            # re-weighs the same evidence, at twice the cost)
            q, t = spectral_embeddings(src, tgt, c_st, c_ts, 0.0, d_s, d_t, ds)
            vmap, target = (out_a, mesh_b) if which == "a" else (out_b, mesh_a)
            f, bary, _ = surface_points(q, t, target, vmap.indices, within="cell")
            corners = np.where(f[:, None] >= 0, target.faces[np.maximum(f, 0)], vmap.indices[:, None])
            vmap = vmap.with_surface(f, bary, corners)
            out_a, out_b = (vmap, out_b) if which == "a" else (out_a, vmap)
    return out_a, out_b if b_to_a is not None else None


def refine_map(mesh_a: Mesh, mesh_b: Mesh, a_to_b: VertexMap, b_to_a: VertexMap | None = None, **options) -> VertexMap:
    """The refined ``a_to_b`` of :func:`refine_maps` (same parameters), without the reverse map."""
    return refine_maps(mesh_a, mesh_b, a_to_b, b_to_a, **options)[0]
