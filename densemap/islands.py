"""Stray islands of a part label: found and merged into what surrounds them.

A hand labelling (or a label transfer) often leaves a few vertices of one part inside
another: a patch of "left hand" on the chest. For the alignment these islands are worse
than a boundary drawn a few rings off: the same-part matching sends each of them to the
other mesh's real left hand, half a body away. :func:`merge_islands` finds, for every part,
its connected pieces (vertices joined by mesh edges within the part) and gives every piece
under a quarter of the part's largest (:data:`ISLAND_MAX_SHARE`) the label that surrounds it. A part whose pieces are
of comparable size (two regions labelled on purpose) is left alone, and no part loses its
largest piece, so no part disappears.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .mesh import Mesh
from .parts import PartLabels

__all__ = ["IslandReport", "merge_islands", "ISLAND_MAX_SHARE"]

# a piece with fewer than this share of the vertices of its part's largest piece is an
# island (a small part, a palm of 100 vertices, can hold a stray patch of 7)
ISLAND_MAX_SHARE = 0.25


@dataclass
class IslandReport:
    """What :func:`merge_islands` changed: islands and vertices relabelled, per part name."""

    islands: int = 0
    vertices: int = 0
    per_part: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"islands": self.islands, "vertices": self.vertices, "per_part": dict(self.per_part)}


def merge_islands(mesh: Mesh, parts: PartLabels, *, max_share: float = ISLAND_MAX_SHARE) -> tuple[PartLabels, IslandReport]:
    """``parts`` with every island merged into the part around it.

    Parameters
    ----------
    mesh : Mesh
    parts : PartLabels
        Unlabelled vertices (-1) are left as they are and do not join pieces.
    max_share : float
        A connected piece of a part is an island when it has fewer than this share of
        the vertices of the part's largest piece.

    Returns
    -------
    (PartLabels, IslandReport)
        The labels (the same object when nothing changed) and what changed.

    Examples
    --------
    >>> import numpy as np
    >>> from densemap.data import reference
    >>> chimp = reference("chimp")
    >>> lab = chimp.parts.labels.copy()
    >>> chest = np.flatnonzero(lab == chimp.parts.index("chest"))
    >>> v = chest[len(chest) // 2]
    >>> patch = np.r_[v, chimp.mesh.adjacency[v].indices]  # a one-ring patch on the chest ...
    >>> lab[patch] = chimp.parts.index("hand_palm_left")  # ... labelled as the left palm
    >>> fixed, report = merge_islands(chimp.mesh, PartLabels(lab, chimp.parts.names))
    >>> report.islands, report.vertices == len(patch), bool((fixed.labels == chimp.parts.labels).all())
    (1, True, True)
    """
    if not 0 < max_share < 1:
        raise ValueError(f"max_share must be in (0, 1), got {max_share!r}")
    parts = parts.check_mesh(mesh)
    lab = parts.labels
    e = mesh.edges
    e = e[(lab[e[:, 0]] == lab[e[:, 1]]) & (lab[e[:, 0]] >= 0)]  # the edges inside a part
    n = mesh.n_vertices
    _, piece = connected_components(sp.coo_matrix((np.ones(len(e), np.int8), (e[:, 0], e[:, 1])), shape=(n, n)),
                                    directed=False)
    size = np.bincount(piece)
    part_of_piece = np.full(len(size), -1, np.int64)
    part_of_piece[piece] = lab
    ok = part_of_piece >= 0
    largest = np.zeros(parts.n_parts, np.int64)
    np.maximum.at(largest, part_of_piece[ok], size[ok])
    island = np.zeros(len(size), bool)
    island[ok] = size[ok] < max_share * largest[part_of_piece[ok]]
    if not island.any():
        return parts, IslandReport()
    report = IslandReport(int(island.sum()), int(island[piece].sum()))
    for p in part_of_piece[island]:
        name = parts.names[p]
        report.per_part[name] = report.per_part.get(name, 0) + 1
    # fill the islands from their rims inwards: each vertex takes the label most of its
    # already labelled neighbours carry (an island inside an island ends up in the outer part)
    out = lab.copy()
    todo = island[piece]
    out[todo] = -2
    nbr = mesh.adjacency
    while todo.any():
        rows = np.flatnonzero(todo)
        sub = nbr[rows]
        vals = out[sub.indices]
        keep = vals >= 0
        if not keep.any():  # an island with no labelled neighbour at all: its own label back
            out[rows] = lab[rows]
            break
        r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))[keep]
        votes = sp.coo_matrix((np.ones(int(keep.sum())), (r, vals[keep])), shape=(len(rows), parts.n_parts)).toarray()
        has = votes.sum(1) > 0
        out[rows[has]] = votes[has].argmax(1)
        todo[rows[has]] = False
    return PartLabels(out, parts.names, source=f"{parts.source} (islands merged)"), report
