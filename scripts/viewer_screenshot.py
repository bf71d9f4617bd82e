#!/usr/bin/env python
"""A picture of the interactive viewer, as the tests take it (headless Chromium, docs/img/viewer.png).

    densemap align -o densemap-align --view
    python scripts/viewer_screenshot.py densemap-align -o docs/img/viewer.png --part hand_palm_left --mode parts

Writes ``ALIGN_DIR/view.html`` when it is missing, clicks A's vertex (``--vertex``, or the
front-most vertex of ``--part``) through the page's own handlers, and saves the window.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from densemap.mapping.view import load_view_inputs, view_alignment
from densemap.viz.browser import load_page


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("align_dir", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/img/viewer.png"))
    ap.add_argument("--vertex", type=int, default=None, help="A's vertex to click")
    ap.add_argument("--part", default="hand_palm_left", help="else the front-most vertex of this part of A")
    ap.add_argument("--mode", default="parts")
    ap.add_argument("--size", default="1200x700")
    args = ap.parse_args()
    page = args.align_dir / "view.html"
    if not page.is_file():
        view_alignment(args.align_dir, page)
    vertex = args.vertex
    if vertex is None:
        inputs, _ = load_view_inputs(args.align_dir)
        ids = np.flatnonzero(inputs.parts_a.labels == list(inputs.parts_a.names).index(args.part))
        vertex = int(ids[np.argmax(inputs.mesh_a.vertices[ids, 2])])
    w, h = (int(x) for x in args.size.split("x"))
    got = load_page(page, fragment=f"pick=a:{vertex}&mode={args.mode}", screenshot=args.out, size=(w, h))
    print(json.loads(got.element_text("densemap-result")), "->", args.out)


if __name__ == "__main__":
    main()
