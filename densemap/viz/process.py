"""Pictures drawn by a child process while the caller computes: :class:`PictureProcess`.

``densemap align`` spends about 2 s of its time on its two pictures, most of it importing
pyvista and VTK and rendering in software, on one core, while the alignment itself
leaves the machine's other cores idle for much of its run (docs/benchmarks.md). A
:class:`PictureProcess` starts a fresh interpreter (``spawn``: nothing of the caller's
threads or torch state is inherited), finds the OpenGL backend and imports pyvista there at
once, and then draws each picture it is handed with the functions of
:mod:`densemap.viz.pictures`, while the caller goes on.

The meshes it is handed are sent as plain copies (vertices, faces, name: no cached
Laplacians or solvers). A picture that cannot be drawn raises
:class:`~densemap.errors.GLBackendError` from :meth:`PictureJob.result`, also when the
child process itself died (VTK can crash rather than raise).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..errors import GLBackendError
from ..mesh import Mesh

__all__ = ["PictureProcess", "PictureJob", "plain_mesh"]

_FUNCTIONS = ("render_meshes", "render_parts", "render_transfer")


def plain_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` without its cached properties (what a picture needs, cheap to send)."""
    return Mesh(mesh.vertices, mesh.faces, name=mesh.name)


def _warm_up() -> None:  # in the child: what every first picture pays, done before it is asked for
    from .gl import check_offscreen_gl

    try:
        check_offscreen_gl()
    except GLBackendError:
        return  # said when a picture is asked for
    from .pictures import _pyvista

    _pyvista()


def _draw(function: str, args: tuple, path: str, kwargs: dict) -> tuple[str, float]:  # in the child
    t0 = time.perf_counter()
    from . import pictures
    from .gl import check_offscreen_gl

    check_offscreen_gl()  # no matplotlib fallback: a caller that wants one draws in-process
    pic = getattr(pictures, function)(*args, path=path, fallback=False, **kwargs)
    return str(pic.path), time.perf_counter() - t0


class PictureJob:
    """One picture being drawn: :meth:`result` waits for it."""

    def __init__(self, future: Future, path: Path):
        self._future = future
        self.path = path

    def result(self) -> tuple[Path, float]:
        """(the PNG written, the child's seconds drawing it).

        Raises
        ------
        GLBackendError
            No off-screen OpenGL backend, or the child process died.
        """
        try:
            path, seconds = self._future.result()
        except BrokenProcessPool:
            raise GLBackendError(f"the picture process died while drawing {self.path.name} "
                                 "(VTK crashed; see densemap.viz.check_offscreen_gl)") from None
        return Path(path), seconds


class PictureProcess:
    """A child process that draws pictures with :mod:`densemap.viz.pictures` in the background.

    Use as a context manager (or call :meth:`close`): leaving it waits for the pictures
    asked for and stops the child.

    Example (tests/test_viz.py runs it)::

        with PictureProcess() as pictures:
            job = pictures.submit("render_parts", plain_mesh(mesh), parts, path="parts.png")
            ...  # compute meanwhile
            path, seconds = job.result()
    """

    def __init__(self):
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._pool.submit(_warm_up)

    def submit(self, function: str, *args, path, **kwargs) -> PictureJob:
        """Draw ``densemap.viz.pictures.<function>(*args, path=path, **kwargs)`` in the child.

        ``path`` is where the PNG is written (the functions' own ``path`` argument).
        """
        if function not in _FUNCTIONS:
            raise ValueError(f"function must be one of {_FUNCTIONS}, got {function!r}")
        return PictureJob(self._pool.submit(_draw, function, args, str(path), kwargs), Path(path))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "PictureProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
