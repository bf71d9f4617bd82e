"""Video pieces without a model: decoding and sampling (real clip, camera-trap formats, corrupt files),
the inputs and their mirrored outputs, tracking, smoothing, synthetic clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from densemap.errors import DensemapError
from densemap_models.heads import DensePoseOutput
from densemap_models.inputs import collect_inputs, output_paths, shard
from densemap_models.smoothing import WindowSmoother, align_output, box_transform, fuse_outputs
from densemap_models.tracking import Tracker
from densemap_models.video import ClipStream, Sampling, VideoError, iter_frames, open_clip

REAL = Path(__file__).parent / "fixtures" / "real"


def write_clip(path: Path, *, codec: str = "mpeg4", size=(106, 60), frames: int = 5, fps: int = 1,
               fmt: str | None = None) -> Path:
    """A small clip whose frame k is a flat grey of level 40 k (so frames can be told apart)."""
    import av

    W, H = size
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for k in range(frames):
            img = np.full((H, W, 3), 40 * k % 256, np.uint8)
            img[:, : W // 4] = 255  # a bright stripe
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


# ----------------------------------------------------------------------------- decoding
def test_real_clip_at_one_fps_gives_one_frame_per_second():
    stats = {}
    frames = list(iter_frames(REAL / "chimp.mp4", Sampling(fps=1.0), stats=stats))
    info = stats["info"]
    assert (info.width, info.height, info.n_frames, info.codec) == (320, 180, 450, "h264")
    assert len(frames) == Sampling(fps=1.0).expected(duration=info.duration, n_frames=info.n_frames) == 15
    assert [round(f.time, 3) for f in frames] == [float(k) for k in range(15)]
    assert [f.index for f in frames] == list(range(0, 450, 30))
    assert frames[0].image.shape == (180, 320, 3) and frames[0].image.dtype == np.uint8
    assert stats["decoded"] == 450


@pytest.mark.parametrize("codec, suffix, fmt", [("mpeg4", ".avi", "avi"), ("msmpeg4v2", ".asf", "asf"),
                                                ("msmpeg4", ".asf", "asf"), ("libx264", ".mkv", "matroska"),
                                                ("mpeg4", ".mov", "mov")])
def test_camera_trap_formats_decode_at_tiny_sizes(tmp_path, codec, suffix, fmt):
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"FFmpeg has no {codec} encoder here")
    path = write_clip(tmp_path / f"trap{suffix}", codec=codec, fmt=fmt)
    frames = list(iter_frames(path, Sampling(fps=1.0)))
    assert len(frames) == 5
    assert all(f.image.shape == (60, 106, 3) for f in frames)
    levels = [int(np.median(f.image[:, 60:, 0])) for f in frames]
    assert np.allclose(levels, [0, 40, 80, 120, 160], atol=12), levels  # the right frames, in order


def test_every_and_max_frames(tmp_path):
    path = write_clip(tmp_path / "c.avi", frames=10, fps=5)
    assert [f.index for f in iter_frames(path, Sampling(every=3))] == [0, 3, 6, 9]
    assert [f.index for f in iter_frames(path, Sampling(max_frames=4))] == [0, 1, 2, 3]
    assert [f.index for f in iter_frames(path, Sampling(fps=2.0))] == [0, 3, 5, 8]  # t = 0, 0.6, 1.0, 1.6 s
    assert Sampling(fps=2.0).expected(duration=2.0, n_frames=10) == 4
    with pytest.raises(ValueError, match="at most one of fps and every"):
        Sampling(fps=1.0, every=2)
    with pytest.raises(ValueError, match="every must be >= 1"):
        Sampling(every=0)


def test_corrupt_and_unreadable_clips_are_one_line_errors(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((REAL / "chimp.mp4").read_bytes()[:5000])  # the moov atom sits at the end: unreadable
    for p in (junk, cut):
        with pytest.raises(VideoError, match=rf"^{p}: cannot open the video \(.+\)$") as e:
            list(iter_frames(p))
        assert "\n" not in str(e.value)
    with ClipStream([junk, REAL / "chimp.mp4"], Sampling(fps=1.0, max_frames=2)) as events:
        kinds = [(k, Path(c).name) for k, c, _ in events]
    assert kinds == [("error", "junk.mp4"), ("start", "chimp.mp4"), ("frame", "chimp.mp4"), ("frame", "chimp.mp4"),
                     ("end", "chimp.mp4")]
    _, _, info = open_clip(REAL / "chimp.mp4")
    assert info.fps == 30.0


# ----------------------------------------------------------------------------- inputs
def test_inputs_mirror_relative_paths_and_refuse_collisions(tmp_path):
    root = tmp_path / "data"
    for rel in ("site1/000002.png", "site2/000002.png", "site2/cam/clip.avi", ".hidden/x.png", "readme.txt"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    out = root / "out"  # inside the input folder: never read back as input
    (out / "old").mkdir(parents=True)
    (out / "old" / "prev_overlay.mp4").write_bytes(b"")
    items = collect_inputs([root], out, overlay=True)
    assert [m.rel for m in items] == ["site1/000002.png", "site2/000002.png", "site2/cam/clip.avi"]
    assert output_paths(items[0], out)[0] == out / "site1" / "000002_iuv.png"
    assert output_paths(items[2], out, overlay=True) == [out / "site2/cam/clip.json", out / "site2/cam/clip_overlay.mp4"]
    # two folders: relative to their common parent
    assert [m.rel for m in collect_inputs([root / "site1", root / "site2"])][:2] == ["site1/000002.png",
                                                                                     "site2/000002.png"]
    (root / "site2" / "cam" / "clip.mp4").write_bytes(b"")
    with pytest.raises(DensemapError, match=r"outputs collide: .*clip.avi and .*clip.mp4 would both write "
                                            r"site2/cam/clip.json"):
        collect_inputs([root], out)
    with pytest.raises(DensemapError, match="not an image or video"):
        collect_inputs([root / "readme.txt"])
    with pytest.raises(DensemapError, match="no such file or folder"):
        collect_inputs([root / "nope"])
    assert shard(list(range(7)), 2, 3) == [2, 5]


# ----------------------------------------------------------------------------- tracking
def _walk(x0, t, *, y=0.0, w=20.0):
    return [x0 + 3 * t, y, x0 + 3 * t + w, y + 40]


def test_tracker_keeps_identities_through_a_short_gap_and_ends_after_a_long_one():
    tr = Tracker(iou_thresh=0.3, birth_score=0.6, max_gap=2)
    seen = []
    for t in range(14):
        boxes, scores, who = [], [], []
        if not 4 <= t <= 5:  # A: hidden for 2 frames (= max_gap): keeps its id
            boxes.append(_walk(0, t)); scores.append(0.9); who.append("A")
        if not 6 <= t <= 8:  # B: hidden for 3 frames (> max_gap): a new track
            boxes.append(_walk(200, t, y=100)); scores.append(0.8); who.append("B")
        order = np.random.default_rng(t).permutation(len(boxes))  # detection order must not matter
        ids = tr.update(np.array(boxes)[order], np.array(scores)[order])
        seen.append({who[o]: int(i) for o, i in zip(order, ids)})
    assert {s["A"] for s in seen if "A" in s} == {1}
    assert {s["B"] for s in seen[:6]} == {2} and {s["B"] for s in seen[9:]} == {3}
    assert [t.id for t in tr.tracks] == [1, 2, 3] and tr.tracks[0].length == 12


def test_tracker_hysteresis_on_scores_and_hungarian_assignment():
    tr = Tracker(iou_thresh=0.3, birth_score=0.7, max_gap=0)
    assert tr.update([[0, 0, 10, 10]], [0.5]).tolist() == [-1]  # too weak to start
    assert tr.update([[0, 0, 10, 10]], [0.8]).tolist() == [1]
    assert tr.update([[1, 0, 11, 10]], [0.5]).tolist() == [1]  # weak, but continues a track
    # two tracks, two detections: the assignment maximises the total IoU, not the first greedy pick
    tr = Tracker(iou_thresh=0.1, birth_score=0.5)
    tr.update([[0, 0, 10, 10], [6, 0, 16, 10]], [0.9, 0.9])
    ids = tr.update([[3, 0, 13, 10], [8, 0, 18, 10]], [0.9, 0.9])
    assert ids.tolist() == [1, 2]
    with pytest.raises(ValueError, match="unknown match_by 'iou'"):
        Tracker(match_by="iou")


def test_tracker_on_masks():
    from densemap.annotation.coco import encode_rle

    def rle(x0):
        m = np.zeros((30, 60), np.uint8)
        m[5:25, x0 : x0 + 10] = 1
        return encode_rle(m)

    tr = Tracker(match_by="mask", birth_score=0.5)
    box = [[0, 0, 60, 30]] * 2  # same boxes: only the masks tell the two apart
    tr.update(box, [0.9, 0.9], [rle(5), rle(40)])
    assert tr.update(box, [0.9, 0.9], [rle(42), rle(7)]).tolist() == [2, 1]


# ----------------------------------------------------------------------------- smoothing
def _roi(u, v, sigma, *, chart=3, S=8):
    """One RoI, certain of ``chart`` everywhere, with the given u, v, sigma maps (S, S) or scalars."""
    z = torch.zeros(1, 25, S, S)
    z[:, chart] = 30.0
    c = torch.zeros(1, 2, S, S)
    c[:, 1] = 30.0
    full = lambda x: torch.as_tensor(x, dtype=torch.float32).expand(S, S)[None, None].expand(1, 25, S, S).clone()
    one = torch.ones(1, 1, S, S)
    return DensePoseOutput(c, z, full(u), full(v), full(sigma), full(sigma), one, one.clone())


def test_fusion_is_the_inverse_variance_mean_and_lowers_the_variance_as_predicted():
    rng = np.random.default_rng(0)
    S, sig = 64, np.array([0.05, 0.1, 0.2, 0.1, 0.05])
    truth = 0.4
    outs = [_roi(truth + rng.normal(0, s, (S, S)), truth + rng.normal(0, s, (S, S)), s, S=S) for s in sig]
    box = [[10, 10, 74, 74]] * len(sig)
    f = fuse_outputs(outs, box, np.ones(len(sig)), center=2)
    expect_var = 1.0 / np.sum(1.0 / sig**2)
    u = f.u[0, 3].numpy()
    # S * S independent pixels: the sample variance matches the analytic one to ~ 3 / sqrt(S * S / 2)
    assert abs(u.var() / expect_var - 1) < 0.08
    assert abs(u.mean() - truth) < 4 * np.sqrt(expect_var / S**2)
    assert np.allclose(f.sigma_u[0, 3].numpy(), np.sqrt(expect_var), rtol=1e-3)
    raw_var = outs[2].u[0, 3].numpy().var()
    assert u.var() < 0.2 * raw_var  # the centre frame alone (sigma 0.2) is much noisier
    # the chart posterior survives fusion (log-probabilities with alpha = 1)
    assert (f.fine_probs()[0].argmax(0) == 3).all() and (f.coarse_probs()[0, 1] > 0.99).all()


def test_the_current_frame_keeps_its_foreground_and_background_neighbours_do_not_vote():
    """foreground="current": the fused foreground is the current frame's own, and a neighbour
    that sees background on the left half has no say about the charts or U there."""
    S = 8
    cur = _roi(0.3, 0.5, 0.1, chart=3, S=S)
    cur.coarse_segm[0, 1, :, :2] = -30.0  # the current frame: background in the two left columns
    nb = _roi(0.7, 0.5, 0.1, chart=5, S=S)
    nb.coarse_segm[0, 1, :, : S // 2] = -30.0  # the neighbour: background on the left half, chart 5 on the right
    box = [[0, 0, 8, 8]] * 2
    f = fuse_outputs([cur, nb], box, [1.0, 1.0], center=0)
    assert torch.allclose(f.coarse_probs()[0], cur.coarse_probs()[0], atol=1e-6)
    left, right = slice(2, S // 2), slice(S // 2, S)
    assert (f.fine_probs()[0].argmax(0)[:, left] == 3).all()
    assert np.allclose(f.u[0, 3, :, left].numpy(), 0.3, atol=1e-5)  # the neighbour's 0.7 does not enter
    # on the right both are foreground with equal weights: the charts tie, U is the mean there
    assert np.allclose(f.fine_probs()[0, 3, :, right].numpy(), 0.5, atol=1e-3)
    # the first design averaged the foreground too: the left half's foreground drops to ~0.5
    g = fuse_outputs([cur, nb], box, [1.0, 1.0], center=0, foreground="fused")
    assert np.allclose(g.coarse_probs()[0, 1, :, left].numpy(), 0.5, atol=1e-3)
    with pytest.raises(ValueError, match="unknown foreground 'mask'"):
        fuse_outputs([cur], box[:1], [1.0], center=0, foreground="mask")


def test_box_alignment_follows_a_moving_box():
    S = 16
    ramp = (np.arange(S) + 0.5)[None, :].repeat(S, 0) / S  # u = position across the box
    a = _roi(ramp, 0.5, 0.1, S=S)
    assert torch.allclose(box_transform([0, 0, 10, 10], [0, 0, 10, 10]), torch.eye(2, 3, dtype=torch.float64))
    m, inside = align_output(a, [0, 0, 32, 32], [16, 0, 48, 32], align="image")  # starts at the old middle
    got = m["u"][3].numpy()
    assert np.allclose(got[:, : S // 2], ramp[:, S // 2 :], atol=1e-5)  # left half = the old right half
    assert (inside.numpy()[:, : S // 2] > 0.99).all() and (inside.numpy()[:, S // 2 + 1 :] < 1e-6).all()
    # the box transform: a body that moved (and grew) with its box fuses to the same surface, not a blur
    b = _roi(ramp, 0.5, 0.1, S=S)
    f = fuse_outputs([a, b], [[0, 0, 32, 32], [20, 4, 60, 44]], [1.0, 1.0], center=1, align="box")
    assert np.allclose(f.u[0, 3].numpy(), ramp, atol=1e-5)
    g = fuse_outputs([a, b], [[0, 0, 32, 32], [20, 4, 60, 44]], [1.0, 1.0], center=1, align="image")
    assert not np.allclose(g.u[0, 3].numpy(), ramp, atol=1e-2)  # read at the same image points: blurred


def test_window_smoother_delays_by_the_radius_and_skips_untracked():
    class D:
        def __init__(self, track_id, u):
            self.track_id, self.box, self.output, self.fused = track_id, np.array([0, 0, 8, 8.0]), _roi(u, 0.5, 0.1), None

    sm = WindowSmoother(radius=1, align="box")
    frames = [[D(1, 0.2), D(-1, 0.9)], [D(1, 0.4)], [D(1, 0.6)]]
    out = [sm.push(f) for f in frames] + [sm.flush()]
    assert [len(o) for o in out] == [0, 1, 1, 1]
    first = out[1][0]
    assert first[1].fused is None  # untracked
    u = [float(frames[k][0].fused.u[0, 3, 0, 0]) for k in range(3)]
    w = np.array([1.0, 0.5])  # triangular weights, equal sigma
    assert np.allclose(u, [(0.2 * 1 + 0.4 * 0.5) / 1.5, (0.2 * 0.5 + 0.4 + 0.6 * 0.5) / 2, (0.4 * 0.5 + 0.6) / 1.5],
                       atol=1e-5), (u, w)


# ----------------------------------------------------------------------------- synthetic clips
def test_synthetic_clip_ground_truth_is_consistent():
    from densemap.synth.scene import species_assets
    from densemap.synth.video import VideoOptions, render_clip

    opt = VideoOptions(frames=3, size=160, instances=(2, 2), occluders=2, track_points=200)
    clip = render_clip("human", np.random.default_rng(3), options=opt)
    atlas = species_assets("human")["atlas"]
    nf = len(species_assets("human")["faces"])
    assert clip.point_visible.any(1).all()
    for t, (scene, anns) in enumerate(zip(clip.scenes, clip.annotations)):
        assert {a["track_id"] for a in anns} <= {1, 2}
        vis = clip.point_visible[t]
        c, r = np.floor(clip.point_xy[t, vis]).astype(int).T
        f = scene.face[r, c]
        assert (f // nf + 1 == clip.point_track[vis]).all()  # on the right body
        I, U, V = atlas.chart_coords(f % nf, scene.bary[r, c])
        same = I == clip.point_iuv[vis, 0]
        assert same.mean() > 0.85  # a pixel's hit is the point's neighbourhood: mostly the same chart ...
        duv = np.hypot(U - clip.point_iuv[vis, 1], V - clip.point_iuv[vis, 2])[same]
        assert np.median(duv) < 0.05  # ... and nearly the same (u, v)
    # motion: the bodies move between frames
    assert np.abs(clip.scenes[0].vertices[0] - clip.scenes[-1].vertices[0]).max() > 0.1


def test_cli_synth_video(tmp_path):
    import json

    from click.testing import CliRunner

    from densemap.cli.main import main

    r = CliRunner().invoke(main, ["-q", "synth", "--video", "--species", "chimp", "--images", "1", "--frames", "3",
                                  "--size", "64", "--instances", "1", "--out", str(tmp_path / "v")])
    assert r.exit_code == 0, r.output
    coco = json.loads((tmp_path / "v" / "annotations.json").read_text())
    assert [im["frame_index"] for im in coco["images"]] == [0, 1, 2]
    assert all((tmp_path / "v" / "images" / im["file_name"]).is_file() for im in coco["images"])
    assert len(list(iter_frames(tmp_path / "v" / "clips" / "clip_0000.mp4"))) == 3
    r = CliRunner().invoke(main, ["synth", "--species", "chimp", "--out", str(tmp_path / "w")])
    assert r.exit_code != 0 and "Missing option '--images'" in r.output
