"""Find an off-screen OpenGL backend that VTK can render with: :func:`check_offscreen_gl`.

VTK *crashes* (segfaults) instead of raising when no OpenGL backend can be created, so
each candidate backend (EGL, then OSMesa, then GLX with a display) is probed by a tiny
render in a child process; the first that works is selected for this process by setting
``VTK_DEFAULT_OPENGL_WINDOW``, and :class:`~densemap.errors.GLBackendError` names the
system packages to install when none does. Nothing here imports VTK or pyvista.
"""

from __future__ import annotations

import ctypes.util
import functools
import importlib.util
import os
import re
import subprocess
import sys
import threading

from ..errors import GLBackendError

__all__ = ["check_offscreen_gl", "load_triton_first"]

_ENV = "VTK_DEFAULT_OPENGL_WINDOW"
# backend name -> (VTK render window class, shared library find_library looks for)
_BACKENDS = {
    "egl": ("vtkEGLRenderWindow", "EGL"),
    "osmesa": ("vtkOSOpenGLRenderWindow", "OSMesa"),
    "glx": ("vtkXOpenGLRenderWindow", "GL"),
}
_PROBE_TIMEOUT_S = 60.0
# Render a white unlit sphere on black into a 16x16 off-screen window; exit 0 only if the
# requested window class was created and the centre pixel was drawn.
_PROBE_CODE = """
import sys
import vtkmodules.vtkRenderingOpenGL2
from vtkmodules.vtkFiltersSources import vtkSphereSource
from vtkmodules.vtkRenderingCore import (vtkActor, vtkPolyDataMapper, vtkRenderWindow,
                                         vtkRenderer, vtkWindowToImageFilter)
w = vtkRenderWindow()
w.SetOffScreenRendering(1)
w.SetSize(16, 16)
r = vtkRenderer()
r.SetBackground(0, 0, 0)
w.AddRenderer(r)
s = vtkSphereSource()
m = vtkPolyDataMapper()
m.SetInputConnection(s.GetOutputPort())
a = vtkActor()
a.SetMapper(m)
a.GetProperty().SetColor(1, 1, 1)
a.GetProperty().LightingOff()
r.AddActor(a)
w.Render()
f = vtkWindowToImageFilter()
f.SetInput(w)
f.Update()
px = f.GetOutput().GetPointData().GetScalars().GetTuple(8 * 16 + 8)
print(w.GetClassName())
sys.exit(0 if w.GetClassName() == sys.argv[1] and max(px) > 0 else 3)
"""

_INSTALL_HINT = (
    "Install an off-screen OpenGL backend. On Debian/Ubuntu: "
    "`apt-get install libegl1 libgl1-mesa-dri` for EGL (software rendering through Mesa; "
    "with an NVIDIA GPU its driver's EGL works too), or `apt-get install libosmesa6` for OSMesa. "
    f"To force a backend, set {_ENV} to vtkEGLRenderWindow or vtkOSOpenGLRenderWindow."
)


def _probe(backend: str) -> str | None:
    """Try one backend in a child process; ``None`` if it renders, else why not."""
    cls, lib = _BACKENDS[backend]
    if ctypes.util.find_library(lib) is None:
        return f"lib{lib} not found"
    env = dict(os.environ, **{_ENV: cls})
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE_CODE, cls],
            env=env,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"test render timed out after {_PROBE_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"cannot start {sys.executable} ({exc.strerror})"
    if proc.returncode == 0:
        return None
    if proc.returncode < 0:
        why = f"test render crashed (signal {-proc.returncode})"
    elif proc.returncode == 3:
        got = proc.stdout.strip()
        why = f"VTK could not create a {cls} (it fell back to {got})" if got != cls else "test render drew nothing"
    else:
        why = f"test render failed (exit status {proc.returncode})"
    lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr).splitlines() if ln.strip()]
    if lines:
        why += ": " + re.sub(r"^.*?\b(WARN|ERR|INFO)\|\s*", "", lines[-1]).strip()
    return why


def _candidates() -> list[str]:
    forced = os.environ.get(_ENV, "").strip()
    if forced:
        named = [b for b, (cls, _) in _BACKENDS.items() if cls == forced]
        return named or [forced]
    out = ["egl", "osmesa"]
    if os.environ.get("DISPLAY"):
        out.append("glx")
    return out


_probe_lock = threading.Lock()  # one probe at a time when threads ask at once


def _probe_locked() -> tuple[str | None, tuple[tuple[str, str], ...]]:
    with _probe_lock:
        return _probe_all()


@functools.cache
def _probe_all() -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """(working backend or None, ((backend, why it failed), ...)); cached per process."""
    failures = []
    for backend in _candidates():
        if backend not in _BACKENDS:
            known = [cls for cls, _ in _BACKENDS.values()]
            failures.append((backend, f"unknown {_ENV} value; expected one of {known}"))
            continue
        why = _probe(backend)
        if why is None:
            return backend, tuple(failures)
        failures.append((backend, why))
    return None, tuple(failures)


def check_offscreen_gl() -> str:
    """Find an off-screen OpenGL backend that VTK can render with, and select it.

    Each candidate (``VTK_DEFAULT_OPENGL_WINDOW`` if set, else EGL then OSMesa,
    then GLX when ``DISPLAY`` is set) is first looked up as a shared library and
    then tried by a tiny render in a child process, since VTK segfaults rather
    than raising when a backend is missing. The first that works is selected for
    this process by setting ``VTK_DEFAULT_OPENGL_WINDOW``, which VTK's
    render-window factory reads when pyvista creates a window. The probe runs
    once per process.

    Returns
    -------
    str
        ``"egl"``, ``"osmesa"`` or ``"glx"``.

    Raises
    ------
    GLBackendError
        No backend renders; the message says why each failed and which system
        packages to install.
    """
    backend, failures = _probe_locked()
    if backend is None:
        tried = "; ".join(f"{b}: {why}" for b, why in failures) or "nothing to try"
        raise GLBackendError(f"no off-screen OpenGL backend works for VTK (tried {tried}). {_INSTALL_HINT}")
    os.environ[_ENV] = _BACKENDS[backend][0]
    return backend


@functools.cache
def load_triton_first() -> bool:
    """Load triton's native library (when triton is installed) before VTK's OpenGL does.

    Mesa's software OpenGL (llvmpipe) loads its own LLVM. torch's CUDA wheels pull in
    triton, whose ``libtriton.so`` carries another LLVM; loaded *after* Mesa's, its static
    initialisers bind to Mesa's LLVM symbols and the process segfaults (in
    ``_GLOBAL__sub_I_PassBuilder.cpp``), e.g. on ``import torchvision`` after an in-process
    picture. Loaded first, each keeps its own, and both work. So this loads the library
    (``ctypes``, private symbols, ~0.05 s; not the ``triton`` package) once per process
    before pyvista is imported; Python's later import of the same file reuses it.
    Written by hand: neither VTK, pyvista nor triton guards against the clash.

    Returns
    -------
    bool
        Whether the library was loaded here (False: triton is not installed, or it could not be loaded).
    """
    try:
        spec = importlib.util.find_spec("triton")
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    for folder in spec.submodule_search_locations or []:
        lib = os.path.join(folder, "_C", "libtriton.so")
        if os.path.exists(lib):
            try:
                ctypes.CDLL(lib, mode=getattr(os, "RTLD_LOCAL", 0))
            except OSError:
                return False
            return True
    return False
