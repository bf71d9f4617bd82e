"""Pictures drawn by a child process while the caller computes: :class:`PictureProcess`.

``densemap align`` spent about 2 s of its run on its two pictures, most of it importing
pyvista and VTK and rendering in software on one core, while the alignment leaves a core
idle for much of its run (docs/benchmarks.md). A :class:`PictureProcess` starts a fresh
interpreter (``python -m densemap.viz.process``: nothing of the caller's threads, torch
state or ``__main__`` is inherited or re-run, unlike :mod:`multiprocessing`), which finds
the OpenGL backend and imports pyvista at once, then draws each picture it is sent with
the functions of :mod:`densemap.viz.pictures`, in order, while the caller goes on.

Jobs travel as pickle files in a private temporary folder (the pipe carries only their
names, so sending never waits for the child); each answer is one JSON line on a pipe
of its own (anything the libraries print goes to stderr). Meshes are best sent as
:func:`plain_mesh` copies (no cached Laplacians or solvers). A picture that cannot be
drawn raises :class:`~densemap.errors.GLBackendError` from :meth:`PictureJob.result`,
also when the child died (VTK can crash rather than raise).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import GLBackendError
from ..mesh import Mesh

__all__ = ["PictureProcess", "PictureJob", "plain_mesh"]

_FUNCTIONS = ("render_meshes", "render_parts", "render_transfer")


def plain_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` without its cached properties (what a picture needs, cheap to send)."""
    return Mesh(mesh.vertices, mesh.faces, name=mesh.name)


class PictureJob:
    """One picture being drawn: :meth:`result` waits for it."""

    def __init__(self, owner: "PictureProcess", index: int, path: Path):
        self._owner, self._index, self.path = owner, index, path

    def result(self) -> tuple[Path, float]:
        """(the PNG written, the child's seconds drawing it).

        Raises
        ------
        GLBackendError
            No off-screen OpenGL backend, or the child process died.
        """
        answer = self._owner._answer(self._index)
        if "error" in answer:
            raise GLBackendError(answer["error"])
        return Path(answer["path"]), float(answer["seconds"])


class PictureProcess:
    """A child process that draws pictures with :mod:`densemap.viz.pictures` in the background.

    Use as a context manager (or call :meth:`close`): leaving it waits for the pictures
    asked for and stops the child.

    Example (tests/test_viz_process.py runs it)::

        with PictureProcess() as pictures:
            job = pictures.submit("render_parts", plain_mesh(mesh), parts, path="parts.png")
            ...  # compute meanwhile
            path, seconds = job.result()
    """

    def __init__(self):
        self._tmp = Path(tempfile.mkdtemp(prefix="densemap-picture-jobs-"))
        self._answers: list[dict] = []
        self._sent = 0
        self._proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True, bufsize=1)

    def submit(self, function: str, *args, path, **kwargs) -> PictureJob:
        """Draw ``densemap.viz.pictures.<function>(*args, path=path, **kwargs)`` in the child.

        ``path`` is where the PNG is written (the functions' own ``path`` argument).
        """
        if function not in _FUNCTIONS:
            raise ValueError(f"function must be one of {_FUNCTIONS}, got {function!r}")
        job = self._tmp / f"job{self._sent}.pickle"
        with open(job, "wb") as fh:
            pickle.dump((function, args, str(path), kwargs), fh, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._proc.stdin.write(f"{job}\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child died: said by the job's result
        self._sent += 1
        return PictureJob(self, self._sent - 1, Path(path))

    def _answer(self, index: int) -> dict:
        while len(self._answers) <= index:
            line = self._proc.stdout.readline()
            if not line:  # the child died; every job left gets the same answer
                status = self._proc.wait()
                why = f"signal {-status}" if status < 0 else f"exit status {status}"
                self._answers.append({"error": f"the picture process died ({why}); VTK can crash without an "
                                               "OpenGL backend (see densemap.viz.check_offscreen_gl)"})
                continue
            self._answers.append(json.loads(line))
        return self._answers[index]

    def close(self) -> None:
        """Wait for the pictures asked for, stop the child and remove the job files."""
        try:
            if self._proc.stdin and not self._proc.stdin.closed:
                self._proc.stdin.close()  # the child exits once it has drawn what it was sent
            self._proc.wait(timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        finally:
            if self._proc.stdout:
                self._proc.stdout.close()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "PictureProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve() -> None:
    """The child: warm up, then draw every job named on stdin, one JSON answer line each."""
    try:  # the caller's work comes first: this process takes what the caller leaves idle
        os.nice(10)
    except (AttributeError, OSError):
        pass
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever VTK or pyvista print goes to stderr, not into the answers
    sys.stdout = sys.stderr
    from . import pictures
    from .gl import check_offscreen_gl

    try:  # what every first picture pays, done before it is asked for
        check_offscreen_gl()
        pictures._pyvista()
    except GLBackendError:
        pass  # said when a picture is asked for
    for line in sys.stdin:
        t0 = time.perf_counter()
        try:
            with open(line.strip(), "rb") as fh:
                function, args, path, kwargs = pickle.load(fh)
            check_offscreen_gl()  # no matplotlib fallback: a caller that wants one draws in-process
            pic = getattr(pictures, function)(*args, path=path, fallback=False, **kwargs)
            answer = {"path": str(pic.path), "seconds": time.perf_counter() - t0}
        except GLBackendError as exc:
            answer = {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - reported to the caller, which decides
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        answers.write(json.dumps(answer) + "\n")
    # every picture is written and answered: skip the interpreter's teardown (VTK's and
    # pyvista's take ~0.3 s), which the caller would otherwise wait for in close()
    answers.close()
    os._exit(0)


if __name__ == "__main__":
    _serve()
