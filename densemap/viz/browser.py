"""Load a page in headless Chromium: its DOM once scripts have run, and a screenshot.

What the viewer's tests, and the pictures of it in the docs, use. WebGL runs on
SwiftShader (Chromium's CPU renderer), so no GPU or display is needed; Chromium's virtual
time lets the page's scripts finish before the DOM is read and the picture taken.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_path
from ..errors import DensemapError

__all__ = ["find_chromium", "load_page", "PageLoad"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable on ``PATH``, or None.

    ``DENSEMAP_CHROMIUM`` names one explicitly.
    """
    env = os.environ.get("DENSEMAP_CHROMIUM")
    if env:
        return shutil.which(env) or (env if os.access(env, os.X_OK) else None)
    return next((p for p in map(shutil.which, _NAMES) if p), None)


@dataclass(frozen=True)
class PageLoad:
    """What :func:`load_page` got: the serialised DOM and the screenshot's path (if asked)."""

    dom: str
    screenshot: Path | None

    def element_text(self, element_id: str) -> str | None:
        """The text of the element with this id in the DOM (None if absent)."""
        m = re.search(rf'<[a-z]+[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</', self.dom, re.S)
        if m is None:
            return None
        import html

        return html.unescape(m.group(1))

    def body_attribute(self, name: str) -> str | None:
        m = re.search(rf'<body[^>]*\b{re.escape(name)}="([^"]*)"', self.dom)
        return m.group(1) if m else None


def load_page(path: str | os.PathLike, *, fragment: str = "", screenshot: str | os.PathLike | None = None,
              size: tuple[int, int] = (1200, 700), budget_ms: int = 15000, timeout: float = 180.0,
              chromium: str | None = None) -> PageLoad:
    """Open a local HTML file in headless Chromium; return its DOM after the scripts ran.

    Parameters
    ----------
    path : path-like
        The page (opened as a ``file://`` URL: nothing is served).
    fragment : str
        The URL's ``#`` part (without the ``#``), e.g. ``"pick=a:10"`` for the viewer.
    screenshot : path-like, optional
        Also write a PNG of the window here.
    size : (width, height)
        The window, in CSS pixels.
    budget_ms : int
        Chromium's virtual-time budget: how long the page may run (time it spends waiting
        on nothing does not count against it).
    timeout : float
        Seconds of real time before the run is abandoned.
    chromium : str, optional
        The executable (default: :func:`find_chromium`).

    Returns
    -------
    PageLoad

    Raises
    ------
    DensemapError
        No Chromium, or Chromium failing or running past ``timeout``.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise DensemapError("no Chromium found (install the 'chromium' package, or set DENSEMAP_CHROMIUM)")
    url = Path(path).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    with tempfile.TemporaryDirectory(prefix="densemap-chromium-", ignore_cleanup_errors=True) as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--no-first-run", "--disable-dev-shm-usage",
               "--disable-background-networking", "--hide-scrollbars", "--mute-audio",
               "--use-angle=swiftshader", "--enable-unsafe-swiftshader", f"--user-data-dir={profile}",
               f"--window-size={int(size[0])},{int(size[1])}", f"--virtual-time-budget={int(budget_ms)}",
               "--dump-dom"]
        shot_tmp = Path(profile) / "screenshot.png"
        if screenshot is not None:
            cmd.append(f"--screenshot={shot_tmp}")
        try:
            run = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=timeout, cwd=profile)
        except subprocess.TimeoutExpired:
            raise DensemapError(f"{exe}: still loading {path} after {timeout:g} s") from None
        if run.returncode != 0 or "<html" not in run.stdout:
            tail = " ".join(run.stderr.strip().splitlines()[-3:])[:400]
            raise DensemapError(f"{exe} could not load {path} (exit {run.returncode}): {tail}")
        shot = None
        if screenshot is not None:
            if not shot_tmp.is_file():
                raise DensemapError(f"{exe} wrote no screenshot of {path}")
            shot = Path(screenshot)
            with atomic_path(shot) as tmp:
                shutil.copyfile(shot_tmp, tmp)
    return PageLoad(run.stdout, shot)
