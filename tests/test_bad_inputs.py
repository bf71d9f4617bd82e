"""The fuzz suite of bad inputs through the command line: meshes, parts, alignments, annotations, outputs.

Every case builds a broken input (or an unusable output location) in a fresh folder and runs
one command; :func:`badinput_kit.check_refused` asserts one ``Error:`` line naming the
problem, a non-zero exit, no traceback, inputs unchanged and nothing written. The torch
commands (checkpoints, training data) are in ``test_bad_inputs_models.py``. Cases that must
*succeed* (an STL, a 1e150-scale mesh, ``--repair``) are at the end.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from densemap.mesh import Mesh, save_mesh
from densemap.parts import PartLabels

from conftest import octant_parts

from badinput_kit import (Case, charted_obj, check_refused, coco, grouped_obj, identity_alignment, invoke, png,
                          png_header_only, rewrite_npz, snapshot, sphere, split_face_at_midpoint, with_extra_face)

CASES = {}


def case(f):
    CASES[f.__name__] = f
    return f


def _obj(d: Path, text: str, name: str = "m.obj") -> Path:
    p = d / name
    p.write_text(text)
    return p


TRI = "v 0 0 0\nv 1 0 0\nv 0 1 0\n"


# ----------------------------------------------------------------------------- OBJ and other mesh files
@case
def obj_face_index_zero(d):
    return Case(["info", _obj(d, TRI + "f 0 1 2\n")], r"m\.obj:4: .*vertex index 0 is invalid \(OBJ indices start at 1\)")


@case
def obj_index_past_the_end(d):
    return Case(["info", _obj(d, TRI + "f 1 2 3\nf 1 2 4\n")],
                r"m\.obj:5: .*vertex index 4 is out of range: the file defines 3 vertices")


@case
def obj_negative_index_out_of_range(d):
    return Case(["info", _obj(d, TRI + "f -1 -2 -9\n")], r"m\.obj:4: .*vertex index -9 is out of range")


@case
def obj_huge_index(d):
    return Case(["info", _obj(d, TRI + "f 1 2 " + "9" * 30 + "\n")], r"m\.obj:4: .*index 9+ is too large")


@case
def obj_bare_vt(d):
    return Case(["info", _obj(d, TRI + "vt\nf 1 2 3\n")], r"m\.obj:4: .*a texture coordinate needs at least u")


@case
def obj_texture_index_out_of_range(d):
    return Case(["info", _obj(d, TRI + "vt 0 0\nf 1/1 2/2 3/1\n")], r"m\.obj:5: .*texture index 2 is out of range")


@case
def obj_overflowing_coordinate(d):
    return Case(["info", _obj(d, "v 1e400 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")], r"m\.obj:1: .*'1e400' is not finite")


@case
def obj_nan_coordinate(d):
    return Case(["info", _obj(d, "v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")], r"m\.obj:2: .*'nan' is not finite")


@case
def obj_unparsable_number(d):
    return Case(["info", _obj(d, "v 0 0 0\nv 1 0 x\n")], r"m\.obj:2: cannot use 'v' line")


@case
def obj_binary_garbage(d):
    p = d / "m.obj"
    p.write_bytes(bytes(range(256)) * 8)
    return Case(["info", p], r"m\.obj: a binary file, not OBJ text")


@case
def obj_empty(d):
    return Case(["info", _obj(d, "")], r"m\.obj: no vertices found")


@case
def mesh_missing(d):
    return Case(["info", d / "nope.obj"], r"nope\.obj: no such file")


@case
def mesh_is_a_folder(d):
    (d / "x.obj").mkdir()
    return Case(["info", d / "x.obj"], r"x\.obj' is a directory", code=2)  # click's own Path(dir_okay=False)


@case
def mesh_named_pipe(d):
    os.mkfifo(d / "p.obj")
    return Case(["info", d / "p.obj"], r"p\.obj: is a named pipe \(FIFO\), not a regular file")


@case
def mesh_symlink_loop(d):
    os.symlink(d / "b.obj", d / "a.obj")
    os.symlink(d / "a.obj", d / "b.obj")
    return Case(["info", d / "a.obj"], r"a\.obj: cannot read the mesh file \(a symbolic link loop\)")


@case
def mesh_broken_symlink(d):
    os.symlink(d / "gone.obj", d / "a.obj")
    return Case(["info", d / "a.obj"], r"a\.obj: a symbolic link to a missing file")


@case
def mesh_unknown_suffix(d):
    return Case(["info", _obj(d, TRI, "m.xyz")], r"m\.xyz: unsupported mesh format '\.xyz'")


@case
def ply_garbage(d):
    p = d / "m.ply"
    p.write_bytes(b"\x00\x01garbage" * 10)
    return Case(["info", p], r"m\.ply: cannot read mesh file")


@case
def ply_header_declares_a_trillion_vertices(d):
    p = d / "m.ply"
    p.write_text("ply\nformat ascii 1.0\nelement vertex 1000000000000\nproperty float x\nproperty float y\n"
                 "property float z\nend_header\n0 0 0\n")
    return Case(["info", p], r"m\.ply: the PLY header declares 1000000000000 vertex elements but the file has only")


@case
def stl_garbage(d):
    p = d / "m.stl"
    p.write_bytes(b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 zzz\n")
    return Case(["info", p], r"m\.stl: ")


# ----------------------------------------------------------------------------- geometry that breaks the geodesics
def _align(d, a: Mesh, b: Mesh, *extra):
    pa, pb = grouped_obj(d / "a.obj", a), grouped_obj(d / "b.obj", b)
    return ["align", pa, pb, "-o", d / "out", "--sources", "4", "--no-render", "--no-refine", *extra]


@case
def align_zero_area_face(d):
    s = sphere(2)
    return Case(_align(d, s, with_extra_face(s, [0, 0, 1])), r"b\.obj: 1 faces have zero area, first face \d+ "
                r"\(vertices 0, 0, 1\).*pass --repair")


@case
def align_sliver_face(d):
    return Case(_align(d, sphere(2), split_face_at_midpoint(sphere(2))), r"b\.obj: 1 sliver faces .*first face \d+")


@case
def align_duplicate_face(d):
    s = sphere(2)
    return Case(_align(d, s, with_extra_face(s, s.faces[5])), r"b\.obj: 1 duplicate faces, first face \d+ \(vertices .*\) repeats an earlier face")


@case
def align_nonmanifold_edge(d):
    s = sphere(2)
    fin = with_extra_face(s, [s.faces[0, 0], s.faces[0, 1], s.n_vertices], [[3.0, 3.0, 3.0]])
    return Case(_align(d, s, fin), r"b\.obj: 1 non-manifold edges \(in more than two faces\), first")


@case
def align_vertex_in_no_face(d):
    s = sphere(2)
    return Case(_align(d, s, Mesh(np.r_[s.vertices, [[5.0, 5, 5]]], s.faces)), r"b\.obj: 1 vertices are in no face, "
                r"first vertex 162")


@case
def align_two_components(d):
    s = sphere(2)
    two = Mesh(np.r_[s.vertices, s.vertices + 3], np.r_[s.faces, s.faces + s.n_vertices])
    parts = octant_parts(s)
    two_parts = PartLabels(np.r_[parts.labels, parts.labels], parts.names)
    pa, pb = grouped_obj(d / "a.obj", s), grouped_obj(d / "b.obj", two, two_parts)
    return Case(["align", pa, pb, "-o", d / "out", "--no-render"], r"b\.obj: the mesh has 2 connected components")


@pytest.mark.parametrize("value, match", [("0", "sources per part must be a positive integer, got 0"),
                                          ("-3", "sources per part must be a positive integer"),
                                          ("abc", "expected 'all' or an integer, got 'abc'")])
def test_align_bad_sources(tmp_path, value, match):
    args = _align(tmp_path, sphere(2), sphere(2))
    args[args.index("--sources") + 1] = value
    check_refused(Case(args, match, code=2 if value == "abc" else 1), tmp_path)


# ----------------------------------------------------------------------------- part files
def _parts_case(d, name, content, **kw):
    s = sphere(1)
    mesh = save_mesh(s, d / "m.ply")
    p = d / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, np.ndarray):
        np.save(p, content, allow_pickle=True)
    else:
        p.write_text(content)
    return ["align", mesh, mesh, "--parts-a", p, "--parts-b", p, "-o", d / "out", "--no-render"]


@case
def parts_label_2_to_the_40(d):
    lab = "\n".join(["0"] * 41 + [str(2**40)])
    return Case(_parts_case(d, "p.txt", lab), r"p\.txt: labels\[41\] = 1099511627776 is out of range; expected -1 "
                r"\(unlabelled\) or 0\.\.41")


@case
def parts_float_labels_times_1e20(d):
    return Case(_parts_case(d, "p.npy", np.r_[np.zeros(41), 1e20]), r"p\.npy: labels\[41\] = 1e\+20 is out of range")


@case
def parts_nan_label(d):
    return Case(_parts_case(d, "p.npy", np.r_[np.zeros(41), np.nan]), r"p\.npy: labels\[41\] = nan is not an integer")


@case
def parts_pickled_object_array(d):
    return Case(_parts_case(d, "p.npy", np.array([object()] * 42)), r"p\.npy: cannot read labels .*pickle")


@case
def parts_truncated_npy(d):
    args = _parts_case(d, "p.npy", np.zeros(42, np.int64))
    (d / "p.npy").write_bytes((d / "p.npy").read_bytes()[:100])
    return Case(args, r"p\.npy: cannot read labels")


@case
def parts_wrong_count(d):
    return Case(_parts_case(d, "p.txt", "0\n1\n"), r"p\.txt: 2 labels but mesh .* has 42 vertices")


@case
def parts_txt_not_a_number(d):
    return Case(_parts_case(d, "p.txt", "0\n1\nleft\n"), r"p\.txt:3: 'left' is not an integer label")


@case
def parts_json_ragged(d):
    return Case(_parts_case(d, "p.json", json.dumps({"a": [[0, 1], [2]]})), r"p\.json: part 'a' entry 0 is '\[0, 1\]'")


@case
def parts_json_10_to_the_400(d):
    return Case(_parts_case(d, "p.json", '{"a": [0, 1' + "0" * 400 + "]}"), r"p\.json: part 'a' lists vertex id "
                r"\d+\.\.\. \(401 digits\), beyond any mesh")


@case
def parts_json_deeply_nested(d):
    return Case(_parts_case(d, "p.json", "[" * 100000 + "]" * 100000), r"p\.json: JSON nested too deeply to read")


@case
def parts_json_binary(d):
    return Case(_parts_case(d, "p.json", b"\xff\xfe\x00\x81 garbage"), r"p\.json: not UTF-8 text \(byte 0xff at offset 0\)")


@case
def parts_json_invalid(d):
    return Case(_parts_case(d, "p.json", '{"a": [0, 1,'), r"p\.json: invalid JSON at line 1 column \d+")


@case
def parts_json_bool_ids(d):
    return Case(_parts_case(d, "p.json", json.dumps({"a": [True, 1]})), r"p\.json: part 'a' entry 0 is 'True'")


@case
def parts_json_vertex_out_of_range(d):
    return Case(_parts_case(d, "p.json", json.dumps({"a": [0, 99]})), r"p\.json: part 'a' lists vertex 99 but mesh")


@case
def parts_json_not_an_object(d):
    return Case(_parts_case(d, "p.json", "[1, 2]"), r"p\.json: expected a JSON object \{part name: \[vertex ids\]\}")


@case
def parts_binary_names_sidecar(d):
    args = _parts_case(d, "p.npy", np.zeros(42, np.int64))
    (d / "p.names.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return Case(args, r"p\.names\.json: not UTF-8 text")


@case
def parts_names_not_strings(d):
    args = _parts_case(d, "p.npy", np.zeros(42, np.int64))
    (d / "p.names.json").write_text("[1]")
    return Case(args, r"p\.names\.json: names\[0\] = '1' is not a string")


# ----------------------------------------------------------------------------- output locations (align)
def _align_ok_args(d, out):
    pa = grouped_obj(d / "a.obj", sphere(2))
    return ["align", pa, pa, "-o", out, "--sources", "4", "--no-render", "--no-refine"]


@case
def align_out_is_a_file(d):
    (d / "out").write_text("not a folder")
    return Case(_align_ok_args(d, d / "out"), r"Invalid value for '-o' / '--out': Directory .*out' is a file", code=2)


@case
def align_out_under_a_file(d):
    (d / "f").write_text("x")
    return Case(_align_ok_args(d, d / "f" / "out"), r"-o .*f/out: .*/f is a file, not a folder")


@case
def align_out_symlink_loop(d):
    os.symlink(d / "l2", d / "l1")
    os.symlink(d / "l1", d / "l2")
    return Case(_align_ok_args(d, d / "l1"), r"-o .*l1: a symbolic link loop")


@case
def align_out_holds_an_input(d):
    (d / "out").mkdir()
    s = sphere(2)
    pa = save_mesh(s, d / "a.ply")
    np.save(d / "out" / "descriptors_a.npy", (s.vertices[:, 0] > 0).astype(np.int64))
    return Case(["align", pa, pa, "--parts-a", d / "out" / "descriptors_a.npy", "--parts-b",
                 d / "out" / "descriptors_a.npy", "-o", d / "out", "--no-render"],
                r"-o .*out/descriptors_a\.npy is the input --parts-a .*refusing to overwrite the input file")


@case
def align_out_is_a_device(d):
    return Case(_align_ok_args(d, "/dev/null"), r"-o /dev/null: is a file; expected a folder")


def _chattr(path: Path, flag: str) -> bool:
    return shutil.which("chattr") is not None and subprocess.run(["chattr", flag, str(path)],
                                                                 capture_output=True).returncode == 0


def test_align_out_in_an_immutable_folder(tmp_path):
    (tmp_path / "locked").mkdir()
    if not _chattr(tmp_path / "locked", "+i"):
        pytest.skip("chattr +i is not permitted here")
    try:
        check_refused(Case(_align_ok_args(tmp_path, tmp_path / "locked" / "out"),
                           r"-o .*locked/out: cannot write in .*locked \(operation not permitted"), tmp_path)
    finally:
        _chattr(tmp_path / "locked", "-i")


def _mount_tmpfs(where: Path, options: str) -> bool:
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("options, match", [("ro,size=1m", r"cannot write in .* \(read-only file system\)"),
                                            ("size=64k", r"MiB free in .*, the outputs need about")])
def test_align_out_on_a_read_only_or_full_file_system(tmp_path, options, match):
    fs = tmp_path / "fs"
    if not _mount_tmpfs(fs, options):
        pytest.skip("cannot mount a tmpfs here")
    try:
        check_refused(Case(_align_ok_args(tmp_path, fs / "out"), match), tmp_path)
    finally:
        subprocess.run(["umount", str(fs)], capture_output=True)


# ----------------------------------------------------------------------------- convert-annotations
def _convert(d, *extra, ann=None, **fields):
    mesh = charted_obj(d / "m.obj")
    src = ann or coco(d / "in.json", **fields)
    return ["convert-annotations", src, "--src-mesh", mesh, "--dst-mesh", mesh, *extra]


@case
def convert_out_is_the_map(d):
    from densemap.mesh import load_mesh

    args = _convert(d)
    m = identity_alignment(d / "map.npz", load_mesh(d / "m.obj"))
    return Case([*args, "--map", m, "-o", m], r"-o .*map\.npz is the input --map")


@case
def convert_report_is_the_output(d):
    return Case([*_convert(d), "-o", d / "out.json", "--report", d / "out.json"],
                r"-o and --report are the same file")


@case
def convert_report_is_the_map(d):
    from densemap.mesh import load_mesh

    args = _convert(d)
    m = identity_alignment(d / "map.npz", load_mesh(d / "m.obj"))
    return Case([*args, "--map", m, "-o", d / "out.json", "--report", m], r"--report .*map\.npz is the input --map")


@case
def convert_out_is_the_input_through_a_hard_link(d):
    args = _convert(d)
    os.link(d / "in.json", d / "link.json")
    return Case([*args, "-o", d / "link.json"], r"-o .*link\.json is the input IN_JSON")


@case
def convert_out_is_the_input_through_a_symlink(d):
    args = _convert(d)
    os.symlink(d / "in.json", d / "sym.json")
    return Case([*args, "-o", d / "sym.json"], r"-o .*sym\.json is the input IN_JSON")


@case
def convert_out_is_a_named_pipe(d):
    os.mkfifo(d / "fifo.json")
    return Case([*_convert(d), "-o", d / "fifo.json"], r"-o .*fifo\.json: is a named pipe")


@case
def convert_binary_json(d):
    (d / "in.json").write_bytes(b"\x1f\x8b\x08\x00 not json at all \xff")
    return Case([*_convert(d, ann=d / "in.json"), "-o", d / "o.json"], r"in\.json: not UTF-8 text \(byte 0x8b at offset 1\)")


@case
def convert_deeply_nested_json(d):
    (d / "in.json").write_text('{"annotations": ' + "[" * 100000 + "]" * 100000 + "}")
    return Case([*_convert(d, ann=d / "in.json"), "-o", d / "o.json"], r"in\.json: JSON nested too deeply")


@case
def convert_number_10_to_the_400(d):
    args = _convert(d)
    data = json.loads((d / "in.json").read_text())
    data["annotations"][0]["dp_U"][0] = 1
    (d / "in.json").write_text(json.dumps(data).replace('"dp_U": [1,', '"dp_U": [1' + "0" * 400 + ",", 1))
    return Case([*args, "-o", d / "o.json", "--strict"], r"in\.json: annotation id 7 \(annotations\[0\]\) point 0: dp_U is "
                r"not a number: 1000+")


@case
def convert_annotations_not_a_list(d):
    (d / "in.json").write_text('{"annotations": {"a": 1}}')
    return Case([*_convert(d, ann=d / "in.json"), "-o", d / "o.json"], r"in\.json: 'annotations' must be a list")


@case
def convert_in_the_wrong_direction(d):
    args = _convert(d, dp_vertex=[0, 1, 2, 3, 4], ref_model="densemap_human")
    return Case([*args, "-o", d / "o.json"], r"no point converted: all 5 points .*ref_model 'densemap_human'.*source "
                r"mesh is 'm'.*wrong direction")


def _bad_map(d, **arrays):
    from densemap.mesh import load_mesh

    args = _convert(d)
    m = identity_alignment(d / "map.npz", load_mesh(d / "m.obj"))
    fields = {}
    with np.load(m) as z:
        for k, f in arrays.items():
            fields[k] = f(z[k].copy())
    rewrite_npz(m, **fields)
    return [*args, "--map", m, "-o", d / "o.json"]


def _set_row(a, row, value):
    a[row] = value
    return a


@case
def convert_map_barycentrics_off_the_simplex(d):
    return Case(_bad_map(d, **{"a_to_b.bary": lambda b: _set_row(b, 3, [2.0, -1.0, 0.0])}),
                r"map\.npz: a_to_b\.bary\[3\] = \[2\.0, -1\.0, 0\.0\] is not on the simplex")


@case
def convert_map_index_out_of_range(d):
    return Case(_bad_map(d, **{"a_to_b.indices": lambda b: _set_row(b, 2, 10**6)}),
                r"map\.npz: cannot read alignment .*indices\[2\] = 1000000 but the target has 42 vertices")


@case
def convert_map_nan_barycentric(d):
    return Case(_bad_map(d, **{"b_to_a.bary": lambda b: _set_row(b, 0, np.nan)}), r"b_to_a\.bary\[0\] = \[nan, nan, nan\]")


@case
def convert_map_truncated(d):
    from densemap.mesh import load_mesh

    args = _convert(d)
    m = identity_alignment(d / "map.npz", load_mesh(d / "m.obj"))
    m.write_bytes(m.read_bytes()[:300])
    return Case([*args, "--map", m, "-o", d / "o.json"], r"map\.npz: cannot read alignment")


@case
def convert_map_of_other_meshes(d):
    args = _convert(d)
    identity_alignment(d / "map.npz", sphere(2))
    return Case([*args, "--map", d / "map.npz", "-o", d / "o.json"], r"map\.npz: the map is between meshes with sha1")


@case
def convert_atlas_garbage(d):
    (d / "atlas.npz").write_bytes(b"PK\x03\x04 garbage")
    mesh = save_mesh(sphere(1), d / "m.ply")
    return Case(["convert-annotations", coco(d / "in.json"), "--src-mesh", mesh, "--dst-mesh", mesh, "--src-atlas",
                 d / "atlas.npz", "--dst-atlas", d / "atlas.npz", "-o", d / "o.json"], r"atlas\.npz: cannot read atlas")


# ----------------------------------------------------------------------------- show-annotations
def _show(d, *, image=True, **fields):
    src = coco(d / "ann.json", **fields)
    if image:
        (d / "images").mkdir(exist_ok=True)
        png(d / "images" / "a.png")
    return ["show-annotations", src, "-o", d / "o.png"]


@case
def show_bbox_1e12(d):
    return Case(_show(d, bbox=[0.0, 0.0, 1e12, 1e12]), r"ann\.json: annotation id 7 \(image 1\): bbox .*1e\+12.* outside "
                r"the 64 x 48 image")


@case
def show_negative_bbox(d):
    return Case(_show(d, bbox=[10.0, 10.0, -5.0, 20.0]), r"annotation id 7 \(image 1\): bbox .* negative width or height")


@case
def show_bbox_not_four_numbers(d):
    return Case(_show(d, bbox=[1, 2, "three"]), r"annotation id 7 \(image 1\): bbox must be 4 finite numbers")


@case
def show_invalid_rle(d):
    return Case(_show(d, segmentation={"size": [48, 64], "counts": "\x7f\x7f garbage that is not an RLE"}),
                r"annotation id 7 \(image 1\): segmentation is not a valid RLE")


@case
def show_rle_of_another_size(d):
    from densemap.annotation.coco import encode_rle

    return Case(_show(d, segmentation=encode_rle(np.ones((10, 10), np.uint8))),
                r"annotation id 7 \(image 1\): segmentation is 10 x 10 but the image is 64 x 48")


@case
def show_nan_points(d):
    return Case(_show(d, dp_x=[float("nan")] * 5), r"annotation id 7 \(image 1\): dp_x is not a number")


@case
def show_image_not_an_image(d):
    args = _show(d, image=False)
    (d / "images").mkdir()
    (d / "images" / "a.png").write_text("this is text")
    return Case(args, r"a\.png: not an image file")


@case
def show_png_declaring_12000_by_12000(d):
    args = _show(d, image=False)
    (d / "images").mkdir()
    png_header_only(d / "images" / "a.png", 12000, 12000)
    return Case(args, r"a\.png: 12000 x 12000 pixels \(144\.0 megapixels\) is more than")


@case
def show_huge_image_size_without_the_file(d):
    return Case(_show(d, image=False, image_size=(10**6, 10**6)), r"ann\.json: image 1 is 1000000 x 1000000 pixels")


@case
def show_out_is_the_input(d):
    args = _show(d)
    args[-1] = d / "ann.json"
    return Case(args, r"-o .*ann\.json is the input ANNOTATIONS")


@case
def show_binary_json(d):
    (d / "ann.json").write_bytes(b"\x00\x01\x02")
    return Case(["show-annotations", d / "ann.json", "-o", d / "o.png"], r"ann\.json: not UTF-8 text|invalid JSON")


# ----------------------------------------------------------------------------- synth
@case
def synth_negative_seed(d):
    return Case(["synth", "--species", "chimp", "--images", "1", "--out", d / "s", "--seed", "-1"],
                r"Invalid value for '--seed': -1 is not in the range x>=0", code=2)


@case
def synth_out_is_a_file(d):
    (d / "s").write_text("x")
    return Case(["synth", "--species", "chimp", "--images", "1", "--out", d / "s"], r"is a file", code=2)


@case
def synth_out_under_a_file(d):
    (d / "f").write_text("x")
    return Case(["synth", "--species", "chimp", "--images", "1", "--out", d / "f" / "s"], r"/f is a file, not a folder")


# ----------------------------------------------------------------------------- the runner
@pytest.mark.parametrize("name", sorted(CASES))
def test_refused(tmp_path, name):
    c = CASES[name](tmp_path)
    check_refused(c, tmp_path)


# ----------------------------------------------------------------------------- faults during the work
def _two_runs(tmp_path, monkeypatch, fault):
    """A finished run in OUT, then a second run into OUT that ``fault`` breaks; returns OUT's files before."""
    args = _align_ok_args(tmp_path, tmp_path / "out")
    r = invoke(["-q", *args])
    assert r.exit_code == 0, r.output
    before = snapshot(tmp_path / "out")
    fault(monkeypatch)
    r = invoke(["-q", *args])
    lines = [ln for ln in ((r.stdout or "") + (r.stderr or "")).splitlines() if ln.strip()]
    assert r.exit_code != 0 and "Traceback" not in r.output and len(lines) == 1, r.output
    assert snapshot(tmp_path / "out") == before  # the previous run's set, intact
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporaries left
    return lines[0]


def test_align_full_disk_mid_write_keeps_the_previous_run(tmp_path, monkeypatch):
    def fault(mp):
        import densemap.mapping.outputs as outputs

        def full(path, array):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        mp.setattr(outputs, "_save_npy", full)

    line = _two_runs(tmp_path, monkeypatch, fault)
    assert "descriptors_a.npy: no space left on device" in line


def test_align_interrupted_keeps_the_previous_run(tmp_path, monkeypatch):
    def fault(mp):
        import densemap.mapping.outputs as outputs

        def interrupt(*a, **k):
            raise KeyboardInterrupt
        mp.setattr(outputs, "_save_npy", interrupt)

    assert _two_runs(tmp_path, monkeypatch, fault) == "Aborted!"


def test_verbose_adds_the_traceback(tmp_path):
    p = _obj(tmp_path, TRI + "f 0 1 2\n")
    r = invoke(["-v", "info", p])
    assert r.exit_code == 1 and "Traceback" in r.stderr and r.stderr.strip().splitlines()[-1].startswith("Error: ")


# ----------------------------------------------------------------------------- what must work
def test_stl_is_welded_and_aligns(tmp_path):
    s = sphere(2)
    save_mesh(s, tmp_path / "s.stl")
    np.save(tmp_path / "p.npy", (s.vertices[:, 0] > 0).astype(np.int64))
    from densemap.mesh import load_mesh

    m = load_mesh(tmp_path / "s.stl")
    assert m.n_vertices == s.n_vertices and m.n_components == 1
    np.testing.assert_allclose(np.sort(m.vertices, axis=0), np.sort(s.vertices, axis=0), atol=1e-6)


def test_obj_with_a_byte_order_mark_keeps_its_first_vertex(tmp_path):
    from densemap.mesh import load_mesh

    p = tmp_path / "bom.obj"
    p.write_bytes(b"\xef\xbb\xbf" + (TRI + "f 1 2 3\n").encode())
    m = load_mesh(p)
    assert m.n_vertices == 3 and m.faces.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("scale", [1e-150, 1e-6, 1e6, 1e150])
def test_align_works_at_any_scale(tmp_path, scale):
    a, b = sphere(2), sphere(2, scale)
    r = invoke(["-q", *_align(tmp_path, a, b)])
    assert r.exit_code == 0, r.output
    from densemap.mapping import load_alignment

    al = load_alignment(tmp_path / "out" / "alignment.npz")
    assert (al.a_to_b.indices == np.arange(a.n_vertices)).mean() > 0.95


def test_align_repair_keeps_the_file_vertex_ids(tmp_path):
    from densemap.mapping import load_alignment
    from densemap.mesh import load_mesh

    s = sphere(2)
    bad = split_face_at_midpoint(s)
    bad = Mesh(np.r_[bad.vertices, [s.vertices[3]]], np.r_[bad.faces, [[bad.n_vertices, 4, 5]]])  # + a duplicate vertex
    r = invoke(["-q", *_align(tmp_path, s, bad, "--repair")])
    assert r.exit_code == 0, r.output
    assert "prepared: B: 1 vertices welded" in r.stdout
    al = load_alignment(tmp_path / "out" / "alignment.npz", load_mesh(tmp_path / "a.obj"), load_mesh(tmp_path / "b.obj"))
    assert len(al.b_to_a) == bad.n_vertices and al.a_to_b.indices.max() < bad.n_vertices
    assert (al.a_to_b.indices[: s.n_vertices] == np.arange(s.n_vertices)).mean() > 0.95


def test_quiet_info_prints_the_results_and_json_is_strict(tmp_path):
    p = save_mesh(sphere(1, 1e200), tmp_path / "big.obj")  # its area overflows to inf
    r = invoke(["-q", "info", p])
    assert r.exit_code == 0 and "vertices" in r.stdout and r.stderr == ""
    r = invoke(["-q", "info", p, "--json"])
    assert r.exit_code == 0
    json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"{c} in --json output"))


@pytest.mark.parametrize("exc, line", [
    (OSError(errno.ENOSPC, "No space left on device", "out/a.npy"), "out/a.npy: no space left on device"),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/x"), "/mnt/x: read-only file system"),
    (PermissionError(errno.EACCES, "Permission denied", "f.json"), "f.json: permission denied"),
    (OSError(errno.ELOOP, "Too many levels of symbolic links", "l"), "l: a symbolic link loop"),
    (FileNotFoundError(errno.ENOENT, "No such file", "gone.obj"), "gone.obj: no such file or folder"),
    (UnicodeDecodeError("utf-8", b"a\xff", 1, 2, "bad"), "cannot decode text: byte 0xff at offset 1 is not utf-8"),
    (RecursionError("maximum recursion depth exceeded"), "the input is nested too deeply to read"),
    (OverflowError("int too large to convert to float"), "a number in the input is too large (int too large"),
    (MemoryError(), "out of memory (an allocation failed)"),
    (ValueError("Caught AnnotationError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                "last):\n  File x\nAnnotationError: a.json: image 1: bad"), "AnnotationError: a.json: image 1: bad"),
    (ValueError("two\nlines"), "two; lines"),
    (KeyError("k"), "internal error: KeyError: 'k' (a densemap bug: run with -v"),
])
def test_error_line_says_what_each_failure_means(exc, line):
    from densemap.cli.options import error_line

    assert error_line(exc).startswith(line) and "\n" not in error_line(exc)
