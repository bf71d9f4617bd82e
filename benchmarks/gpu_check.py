"""One-shot check of densemap's CUDA paths: one table with every section's figures.

Usage::

    python benchmarks/gpu_check.py                        # on a CUDA machine: under 8 minutes
    DEVICE=cpu nice -n 19 python benchmarks/gpu_check.py  # the same code paths on the CPU, sizes shrunk

Sections: the GPU (``nvidia-smi``, torch, cholespy's device checks, float64/float32 matmul
rates), ``pytest -m cuda``, heat geodesics on a sphere and both embedded meshes for
dense/sparse x float64/float32 (time, peak memory, error against CPU float64), all-sources
part descriptors at ~7k and ~28k vertices, an 8-step AMP training on images without
DensePose points, a CPU -> device resume, 512 and 4096 px rasterisation against the CPU,
and a 20k x 20k descriptor matching against scipy's KD-tree.

Each section runs in its own process with a time limit, so a crash (a segfault in a CUDA
extension, say) or a hang costs that section only: it shows as a ``FAILED: reason`` row
and the rest of the table still comes. ``DEVICE`` picks the device (default: cuda when
torch sees one, else cpu); on the CPU the sizes shrink (the output says which) so the
whole run stays under ~5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# seconds for the whole run (the CPU's is generous: a shared 2-core machine can be 3x slower)
BUDGET = {"cuda": 470.0, "cpu": 900.0}
# per section: (time limit in seconds on CUDA, on the CPU)
LIMITS = {"gpu": (60, 120), "pytest": (150, 240), "geodesics": (120, 180), "descriptors": (120, 180),
          "train_amp": (90, 240), "resume": (90, 240), "raster": (60, 180), "matching": (60, 120)}
COLUMNS = ("section", "case", "time (s)", "CPU (s)", "speed-up", "peak mem (MB)", "error / agreement", "note")


# ----------------------------------------------------------------------------- child side
def _device():
    import torch

    name = os.environ.get("DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def emit(case: str, *, t=None, cpu=None, mem=None, err=None, note: str = "") -> None:
    """One table row, printed for the parent (``ROW {json}``)."""
    row = {"case": case, "t": t, "cpu": cpu, "mem": mem, "err": err, "note": note}
    print("ROW " + json.dumps(row), flush=True)


def failed(case: str, exc: BaseException) -> None:
    line = f"{type(exc).__name__}: {exc}".splitlines()[0][:240]
    emit(case, note=f"FAILED: {line}")
    traceback.print_exc(file=sys.stderr)


class Clock:
    """Wall time of a block, synchronised with the device; peak memory of the block."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import resource

        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mem = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:  # this section's process peak so far
            self.mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.t = time.perf_counter() - self.t0
        return False


def sec_gpu(dev, small):
    import ctypes.util

    import torch

    try:
        q = "index,name,driver_version,memory.total,memory.used,utilization.gpu,temperature.gpu"
        r = subprocess.run(["nvidia-smi", f"--query-gpu={q}", "--format=csv,noheader"], capture_output=True,
                           text=True, timeout=30)
        for line in (r.stdout or r.stderr).strip().splitlines():
            emit("nvidia-smi", note=line.strip())
    except FileNotFoundError:
        emit("nvidia-smi", note="not found (no NVIDIA driver on this machine)")
    cuda = torch.cuda.is_available()
    info = f"torch {torch.__version__}, CUDA runtime {torch.version.cuda}, cuda available: {cuda}"
    if cuda:
        p = torch.cuda.get_device_properties(dev)
        info += f"; {p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}"
    emit("torch", note=info + f"; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}")
    from densemap import _factor

    from importlib.metadata import PackageNotFoundError, version

    try:
        chv = version("cholespy")  # the module's own __version__ is stale
    except PackageNotFoundError:
        chv = "not installed"
    lib = _factor._libcuda_loadable()
    why = _factor._cholespy_refusal(dev) if dev.type == "cuda" else "not on CUDA"
    emit("cholespy", note=f"cholespy {chv}; dlopen('libcuda.so'): {'ok' if lib else 'fails'} "
                          f"(ldconfig knows {ctypes.util.find_library('cuda')}); "
                          f"sparse CUDA solves: {why or 'allowed'}")
    if cuda:  # consumer GPUs run float64 at 1/32-1/64 of float32
        rates = {}
        for dt in (torch.float32, torch.float64):
            a = torch.randn(4096, 4096, device=dev, dtype=dt)
            a @ a
            with Clock(dev) as c:
                for _ in range(5):
                    a @ a
            rates[dt] = 5 * 2 * 4096**3 / c.t / 1e12
        emit("matmul TFLOP/s", note=f"float32 {rates[torch.float32]:.1f}, float64 {rates[torch.float64]:.1f} "
                                    f"(tf32 allowed: {torch.backends.cuda.matmul.allow_tf32})")


def sec_pytest(dev, small):
    t0 = time.perf_counter()
    # only the files with CUDA cases: collecting the whole suite costs minutes on a small machine
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_*.py")
                   if "mark.cuda" in p.read_text() or "DEVICES" in p.read_text())
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", "-rfE", *files]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "DEVICE": dev.type})
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    summary = next((x.strip("= ") for x in reversed(lines) if " in " in x and ("passed" in x or "skipped" in x
                                                                                or "failed" in x or "error" in x)), "")
    bad = [x for x in lines if x.startswith(("FAILED", "ERROR"))]
    note = summary or f"pytest exit {r.returncode}: {(r.stdout + r.stderr).strip().splitlines()[-1:]}"
    if r.returncode not in (0, 5):
        note = "FAILED: " + note
    if dev.type != "cuda":
        note += " (no GPU: the cuda cases skip; their CPU twins run in the default suite)"
    emit("pytest -m cuda", t=time.perf_counter() - t0, note=note)
    for x in bad[:12]:
        emit("pytest -m cuda", note="FAILED: " + x[:240])


def _meshes(small):
    import trimesh

    from densemap.data import reference
    from densemap.mesh import Mesh

    s = trimesh.creation.icosphere(subdivisions=4 if small else 5)
    return [(f"sphere {len(s.vertices)}", Mesh(s.vertices, s.faces)), ("chimp 7049", reference("chimp").mesh),
            ("human 13380", reference("human").mesh)]


def sec_geodesics(dev, small):
    import warnings

    import torch

    from densemap.geodesics import GeodesicSolver

    for name, mesh in _meshes(small):
        src = np.linspace(0, mesh.n_vertices - 1, 64 if small else 256).astype(np.int64)
        with Clock(torch.device("cpu")) as c:
            ref = GeodesicSolver(mesh).distances(src)
        t_ref = c.t
        emit(f"{name}: CPU float64 sparse (reference)", t=t_ref, note=f"{len(src)} sources, factor included")
        for dense in (True, False):
            for dt in (torch.float64, torch.float32):
                case = f"{name}: {'dense' if dense else 'sparse'} {str(dt)[6:]}"
                if small and dense and mesh.n_vertices > 3000:
                    emit(case, note="skipped on the CPU (dense factors of this size take ~1 min on 2 cores)")
                    continue
                try:
                    with warnings.catch_warnings(record=True) as w, Clock(dev) as c:
                        warnings.simplefilter("always")
                        solver = GeodesicSolver(mesh, device=dev, dense=dense, dtype=dt)
                        t_factor = time.perf_counter() - c.t0
                        d = solver.distances(src)
                    err = float(np.abs(d - ref).max() / ref.max())
                    warn = "; ".join(sorted({str(x.message)[:120] for x in w if "cholespy" in str(x.message)}))
                    emit(case, t=c.t, cpu=t_ref, mem=c.mem, err=f"{err:.1e} of max distance",
                         note=f"factor {t_factor:.2f} s" + (f"; {warn}" if warn else ""))
                except Exception as exc:  # noqa: BLE001 - every case reports its own failure
                    failed(case, exc)


def _labelled(mesh, parts, subdivide: bool):
    from densemap.mesh import Mesh
    from densemap.parts import PartLabels

    if not subdivide:
        return mesh, parts
    import trimesh
    from scipy.spatial import cKDTree

    v, f = trimesh.remesh.subdivide(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    nn = cKDTree(mesh.vertices).query(v)[1]
    return Mesh(v, f), PartLabels(parts.labels[nn], parts.names, source="nearest original vertex")


def sec_descriptors(dev, small):
    from densemap.data import reference
    from densemap.descriptors import part_descriptors

    chimp = reference("chimp")
    cpu_7k = None
    for sub in (False, True):
        mesh, parts = _labelled(chimp.mesh, chimp.parts, sub)
        name = f"chimp{' 1-to-4' if sub else ''} {mesh.n_vertices}"
        sources = 16 if (small and sub) else "all"
        case = f"{name}: {'all sources' if sources == 'all' else '16 sources per part'}"
        try:
            import warnings

            with warnings.catch_warnings(record=True) as w, Clock(dev) as c:
                warnings.simplefilter("always")
                d = part_descriptors(mesh, parts, sources=sources, device=dev)
            cpu = err = None
            note = "shrunk on the CPU (all sources ~3 min on 2 cores)" if sources != "all" else ""
            note += "".join(f"; {m}" for m in sorted({str(x.message)[:120] for x in w if "cholespy" in str(x.message)}))
            if not sub and dev.type == "cuda":
                import torch

                with Clock(torch.device("cpu")) as cc:
                    ref = part_descriptors(mesh, parts, sources="all")
                cpu_7k = cpu = cc.t
                err = f"{np.abs(d - ref).max() / np.abs(ref).max():.1e} vs CPU"
            elif sub and cpu_7k is not None:
                note = f"CPU not run (~{cpu_7k * (mesh.n_vertices / 7049) ** 2:.0f} s by the 7k time x V^2)"
            emit(case, t=c.t, cpu=cpu, mem=c.mem, err=err, note=note)
        except Exception as exc:  # noqa: BLE001
            failed(case, exc)


def _tiny_coco(root: Path, n: int = 6, size: int = 128) -> Path:
    """Images with one bright person-sized box each: boxes and masks, no DensePose points."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        img = np.full((size, size, 3), 30, np.uint8)
        x, y, w, h = 16 + 8 * i, 12, 44, 90
        img[y : y + h, x : x + w] = [200, 120, 60]
        Image.fromarray(img).save(root / "images" / f"{i:03d}.png")
        m = np.zeros((size, size), np.uint8)
        m[y : y + h, x : x + w] = 1
        seg = mask_utils.encode(np.asfortranarray(m))
        seg["counts"] = seg["counts"].decode("ascii")
        images.append({"id": i + 1, "file_name": f"{i:03d}.png", "width": size, "height": size})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
                     "area": float(w * h), "segmentation": seg})
    js = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    (root / "annotations.json").write_text(json.dumps(js))
    return root


SMALL_MODEL = ["backbone=resnet18", "head=deeplab", "box_head_dim=64", "mask_head_convs=1", "mask_head_channels=32",
               "head_convs=2", "head_channels=32", "heatmap_size=56", "min_size=96", "max_size=128",
               "rpn_batch_size_per_image=32", "box_batch_size_per_image=32", "dp_max_rois_per_image=8", "workers=0",
               "batch_size=2", "log_every=1", "checkpoint_every=1000", "warmup_iters=2", "optimizer=adamw",
               "lr=0.001", "amp=true"]


class _Warnings:
    """Counts the trainer's log warnings (e.g. non-finite gradient norms)."""

    def __enter__(self):
        import logging

        self.records = []
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = self.records.append
        logging.getLogger("densemap_models").addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        import logging

        logging.getLogger("densemap_models").removeHandler(self.handler)
        return False

    def summary(self) -> str:
        msgs = [r.getMessage() for r in self.records]
        nonfinite = sum("finite" in m for m in msgs)
        eg = f", e.g. '{msgs[0][:100]}'" if msgs else ""
        return f"{len(msgs)} log warnings ({nonfinite} about non-finite values){eg}"


def _train(config, data, out, device, **kw):
    from densemap_models.train import train

    return train(config, data=data, out=out, max_minutes=None, device=device, progress=False, **kw)


def _losses_ok(res) -> str:
    import math

    vals = {k: v for k, v in (res.last_losses or {}).items() if k.startswith("loss")}
    bad = [k for k, v in vals.items() if not math.isfinite(float(v))]
    return f"non-finite: {bad}" if bad else f"{len(vals)} losses finite"


def sec_train_amp(dev, small):
    from densemap_models.config import load_config

    steps = 4 if small else 8
    case = f"{steps} steps, AMP, deeplab head, no DensePose points"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = _tiny_coco(Path(tmp) / "data")
            cfg = load_config(None, SMALL_MODEL + [f"max_iter={steps}"])
            with _Warnings() as w, Clock(dev) as c:
                res = _train(cfg, data, Path(tmp) / "run", str(dev))
            ok = res.step == steps and res.finished
            amp = "AMP on" if dev.type == "cuda" else "AMP is CUDA-only: float32 on the CPU, 4 steps instead of 8"
            emit(case, t=c.t, mem=c.mem, err=f"step {res.step}, {_losses_ok(res)}",
                 note=("" if ok else "FAILED: did not finish; ") + f"{amp}; {c.t / steps:.2f} s/step; {w.summary()}")
    except Exception as exc:  # noqa: BLE001
        failed(case, exc)


def sec_resume(dev, small):
    import torch

    from densemap_models.config import load_config

    half = 2 if small else 4
    case = f"{half} steps on the CPU, resumed on {dev.type} to {2 * half}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data, out = _tiny_coco(Path(tmp) / "data"), Path(tmp) / "run"
            with Clock(torch.device("cpu")) as c0:
                first = _train(load_config(None, SMALL_MODEL + [f"max_iter={half}"]), data, out, "cpu")
            with _Warnings() as w, Clock(dev) as c:
                cfg = load_config(None, SMALL_MODEL + [f"max_iter={2 * half}"])
                res = _train(cfg, data, out, str(dev), resume=True)
            ok = first.step == half and res.step == 2 * half and res.finished
            emit(case, t=c.t, cpu=c0.t, mem=c.mem, err=f"steps {first.step} -> {res.step}, {_losses_ok(res)}",
                 note=("" if ok else f"FAILED: did not reach step {2 * half}; ") + w.summary())
    except Exception as exc:  # noqa: BLE001
        failed(case, exc)


def sec_raster(dev, small):
    import torch

    from densemap.data import reference
    from densemap.synth.raster import look_at, rasterize

    m = reference("human").mesh
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    c, ext = (v.max(0) + v.min(0)) / 2, np.ptp(v, axis=0).max()
    vt, ft = torch.tensor(v, device=dev), torch.tensor(f, device=dev)
    for px in (512, 2048 if small else 4096):
        case = f"human {len(f)} faces, {px} x {px} px"
        try:
            cam = look_at(c + np.array([0.0, 0.0, 2.5 * ext]), c, focal=2.25 * px, width=px, height=px)
            rasterize(vt, ft, look_at(c + np.array([0.0, 0.0, 2.5 * ext]), c, focal=200, width=64, height=64))
            with Clock(dev) as k:
                got = rasterize(vt, ft, cam)
            face = got.face.cpu().numpy()
            if dev.type == "cpu":
                emit(case, t=k.t, mem=k.mem, note=f"{(face >= 0).mean():.1%} of pixels covered"
                                                  + ("; 2048 instead of 4096 on the CPU" if px > 512 else ""))
                continue
            with Clock(torch.device("cpu")) as kc:
                ref = rasterize(v, f, cam)
            same = face == ref.face
            both = same & (ref.face >= 0)
            db = float(np.abs(got.bary.cpu().numpy()[both] - ref.bary[both]).max()) if both.any() else 0.0
            emit(case, t=k.t, cpu=kc.t, mem=k.mem, err=f"{same.mean():.6f} same face; bary {db:.0e}")
        except Exception as exc:  # noqa: BLE001
            failed(case, exc)


def sec_matching(dev, small):
    from scipy.spatial import cKDTree

    from densemap.mapping import match_descriptors

    n = 5000 if small else 20000
    case = f"{n} x {n}, 32-D random (KD-tree's worst case)"
    try:
        rng = np.random.default_rng(0)
        a, b = rng.normal(size=(n, 32)), rng.normal(size=(n, 32))
        import torch

        with Clock(torch.device("cpu")) as kc:
            ref = cKDTree(b).query(a, k=1, workers=-1)[1]
        match_descriptors(a[:100], b, device=dev, backend="torch")  # warm-up
        with Clock(dev) as k:
            got = match_descriptors(a, b, device=dev, backend="torch").indices
        emit(case, t=k.t, cpu=kc.t, mem=k.mem, err=f"{int((got == ref).sum())} / {n} same match",
             note=f"CPU = scipy cKDTree, {os.cpu_count()} workers" + ("; shrunk from 20k on the CPU" if small else ""))
    except Exception as exc:  # noqa: BLE001
        failed(case, exc)


SECTIONS = {"gpu": sec_gpu, "pytest": sec_pytest, "geodesics": sec_geodesics, "descriptors": sec_descriptors,
            "train_amp": sec_train_amp, "resume": sec_resume, "raster": sec_raster, "matching": sec_matching}


def worker(names: list[str]) -> None:
    """Child process: the sections in order, each between BEGIN and END lines."""
    import faulthandler

    import torch

    faulthandler.enable()  # a crash in an extension prints the Python stack for the FAILED row

    dev = _device()
    if dev.type == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    print(f"DEVICE {dev}", flush=True)
    for name in names:
        print(f"BEGIN {name}", flush=True)
        try:
            SECTIONS[name](dev, dev.type == "cpu")
        except Exception as exc:  # noqa: BLE001
            failed("(section)", exc)
        print(f"END {name}", flush=True)


# ----------------------------------------------------------------------------- parent side
def _fmt(x, digits=2) -> str:
    return "" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


class Runner:
    """Runs the sections in a child process and restarts it after a crash or a timeout, so
    that one section's failure (a segfault, a hang) costs that section only."""

    STARTUP = 240.0  # seconds for the child's imports (a loaded 2-core machine is slow)

    def __init__(self):
        self.rows, self.kind, self.dev = [], "cuda", os.environ.get("DEVICE", "")
        self.t_start = time.perf_counter()

    def budget_left(self) -> float:
        return BUDGET[self.kind] - (time.perf_counter() - self.t_start)

    def add(self, name: str, row: dict) -> None:
        row["section"] = name
        self.rows.append(row)
        print(f"  {name}: {row['case']}: {_fmt(row.get('t'))} s {row.get('err') or ''} {row.get('note') or ''}",
              flush=True)

    def run(self, names: list[str]) -> list[str]:
        """Run ``names`` in one child; returns the sections it did not reach."""
        import queue
        import threading

        cmd = [sys.executable, str(Path(__file__).resolve()), "--sections", ",".join(names)]
        err = tempfile.TemporaryFile("w+")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: ([lines.put(x) for x in proc.stdout], lines.put(None)), daemon=True).start()
        current, t0, deadline, done = None, time.perf_counter(), time.perf_counter() + self.STARTUP, []
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                proc.kill()
                proc.wait()
                what = current or names[0]
                over = "the run's time budget is spent" if self.budget_left() <= 1 else "its time limit"
                self.add(what, {"case": "(section)", "t": time.perf_counter() - t0,
                                "note": f"FAILED: stopped after {time.perf_counter() - t0:.0f} s ({over})"})
                done.append(what)
                break
            if line is None:  # the child ended
                proc.wait()
                if current is not None:
                    err.seek(0)
                    tail = [x for x in err.read().splitlines() if x.strip()][-1:]
                    code = proc.returncode
                    why = f"signal {-code}" if code < 0 else f"exit {code}"
                    self.add(current, {"case": "(section)", "t": time.perf_counter() - t0,
                                       "note": f"FAILED: the process died ({why}): {tail[0][:200] if tail else ''}"})
                    done.append(current)
                break
            line = line.rstrip("\n")
            if line.startswith("DEVICE "):
                self.dev = line[7:]
                self.kind = "cuda" if self.dev.startswith("cuda") else "cpu"
            elif line.startswith("BEGIN "):
                current, t0 = line[6:], time.perf_counter()
                deadline = t0 + min(LIMITS[current][self.kind == "cpu"], max(self.budget_left(), 0.0))
            elif line.startswith("END "):
                done.append(current)
                current = None
                deadline = time.perf_counter() + self.STARTUP
            elif line.startswith("ROW ") and current is not None:
                self.add(current, json.loads(line[4:]))
        err.close()
        return [n for n in names if n not in done]

    def table(self) -> None:
        print(f"\n{len(self.rows)} rows in {time.perf_counter() - self.t_start:.0f} s on {self.dev}\n")
        print("| " + " | ".join(COLUMNS) + " |")
        print("|" + "---|" * len(COLUMNS))
        for r in self.rows:
            speed = f"{r['cpu'] / r['t']:.1f}x" if r.get("cpu") and r.get("t") else ""
            cells = (r["section"], r["case"], _fmt(r.get("t")), _fmt(r.get("cpu")), speed, _fmt(r.get("mem"), 0),
                     r.get("err") or "", (r.get("note") or "").replace("|", "/"))
            print("| " + " | ".join(cells) + " |")
        failures = sum(str(r.get("note", "")).startswith("FAILED") for r in self.rows)
        print(f"\n{failures} failed rows")


def parent() -> None:
    dev = os.environ.get("DEVICE", "")
    print(f"densemap GPU check (DEVICE={dev or 'default: cuda if torch sees one'})", flush=True)
    runner, pending = Runner(), list(SECTIONS)
    while pending:
        if runner.budget_left() < 10:
            for name in pending:
                note = f"SKIPPED: the {BUDGET[runner.kind]:.0f} s budget is spent"
                runner.add(name, {"case": "(section)", "note": note})
            break
        pending = runner.run(pending)
    if runner.kind == "cpu":
        print("\nDEVICE=cpu: sizes shrunk (see the notes); peak mem = the worker process's max RSS so far")
    else:
        print("\npeak mem = torch.cuda.max_memory_allocated of the case (cholespy's own GPU buffers not counted)")
    runner.table()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sections":
        worker(sys.argv[2].split(","))
    else:
        parent()
