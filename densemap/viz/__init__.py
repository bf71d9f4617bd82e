"""Pictures: off-screen renders of meshes, parts and colour transfers, and their colours.

============  ==================================================================
module        what it holds
============  ==================================================================
``pictures``  :func:`render_parts`, :func:`render_meshes`, :func:`render_transfer`
``picture``   :class:`Picture` (what they return: shown inline in a notebook),
              :func:`write_png`
``fallback``  the matplotlib drawing used without an off-screen OpenGL backend
``palette``   part colours (a left/right pair shares a hue), colour fields,
              reading ids back from pixels; numpy only
``gl``        :func:`check_offscreen_gl`: find an OpenGL backend VTK can use
              without segfaulting (probed in a child process)
``viewer``    the interactive viewer: one self-contained HTML page of two meshes
              and their maps (three.js vendored in ``static/three``)
``browser``   load a page in headless Chromium: its DOM and a screenshot
============  ==================================================================

Importing this package does not import pyvista or VTK.
"""

from .gl import check_offscreen_gl
from .palette import (
    BACKGROUND_COLOR,
    PLAIN_COLOR,
    UNLABELLED_COLOR,
    color_field,
    ids_from_pixels,
    part_colors,
    part_palette,
)
from .picture import Picture, write_png
from .pictures import VIEWS, render_meshes, render_parts, render_transfer

__all__ = [
    "check_offscreen_gl",
    "render_parts",
    "render_meshes",
    "render_transfer",
    "write_png",
    "Picture",
    "VIEWS",
    "color_field",
    "part_palette",
    "part_colors",
    "ids_from_pixels",
    "UNLABELLED_COLOR",
    "BACKGROUND_COLOR",
    "PLAIN_COLOR",
]
