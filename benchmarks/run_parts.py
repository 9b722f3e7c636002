"""A whole DMT run measured by its parts on one GPU, members side by side (issue 27).

    PYTHONPATH=src python benchmarks/run_parts.py                      # every part, on the GPU machine
    PYTHONPATH=src python benchmarks/run_parts.py --parts dino_pairs   # some parts only
    PYTHONPATH=src python benchmarks/run_parts.py --dry-run            # CPU, tiny shapes: proves the script

Parts (``--parts``, comma-separated; each in its own processes, try/except and time limit):

* ``train_pair``, ``label``, ``eval``, ``loader``, ``checkpoint``: the parts of a DeepLab-v2 VOC 1/106
  DMT run (voc-106-dmt) at the paper's shapes on a fabricated VOC tree of 375 x 500 photos, timed by
  ``benchmarks/parts_member.py`` with the library's own code: training images/s (7 + 1 crops of
  321), labelling images/s over whole images padded to 505, evaluation images/s, data-loader
  images/s (JPEG decode, v2 transforms, pseudo labels read back) with the preset's workers and with
  the machine's cores, checkpoint and model-file write seconds; each alone (``solo``), two members
  side by side (``pair``: two processes on the one GPU at once) and, where
  ``nvidia-cuda-mps-control`` exists, the pair under MPS (``pair_mps``); peak memory per process;
* ``projection``: the whole voc-106-dmt run from those rates (``parts_plan.project``: training or
  data loading, whichever is slower (the loader at the better of its two worker counts),
  labelling, evaluation, checkpoints) beside the step-only figure, for each mode measured;
* ``dino_pairs``: DINOv2-B + DINOv2-S and DINOv2-B + DINOv3-B side by side at 518, batch 8, bf16
  (random weights): images/s and peak memory of each process, the projected VOC-92 run (its
  labelling and evaluation estimated at 3x the training rate: not measured here);
* ``compile``: ``train.compile=reduce-overhead`` against eager for the DeepLab-v2 and ViT-B steps.

Every finished part is merged into ``$OUT/run_parts.json`` (``--out``) at once, so a timeout keeps
the others (and several calls with different ``--parts`` fill one file); a table ends the output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parts_common import SEG_PRESET, VIT3_PRESET, VIT_PRESET, fabricate_voc, shapes  # noqa: E402
from parts_plan import VOC_TRAIN_AUG, VOC_VAL, project, protocol_labelled, run_plan  # noqa: E402
from parts_report import table  # noqa: E402

from dmt.atomic import write_text  # noqa: E402

MEMBER = str(Path(__file__).resolve().parent / "parts_member.py")
SEG_PARTS = ("train_pair", "label", "eval", "loader", "checkpoint")
ALL = (*SEG_PARTS, "projection", "dino_pairs", "compile")
PAIRS = {"dinov2_b+s": ("dinov2_vitb14_dpt", "dinov2_vits14_dpt", VIT_PRESET),
         "dinov2_b+dinov3_b": ("dinov2_vitb14_dpt", "dinov3_vitb16_dpt", VIT3_PRESET)}


class Results:
    """The JSON file of every finished part, rewritten (atomically) after each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}
        self.data.setdefault("errors", {})

    def put(self, key: str, value) -> None:
        self.data[key] = value
        self.data["updated_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        write_text(self.path, json.dumps(self.data, indent=1))


def mps_available(dry_run: bool) -> bool:
    import torch

    return not dry_run and torch.cuda.is_available() and shutil.which("nvidia-cuda-mps-control") is not None


@contextmanager
def mps(on: bool):
    """The MPS daemon for the block (when ``on``), stopped again afterwards."""
    if on:
        subprocess.run(["nvidia-cuda-mps-control", "-d"], check=True)
    try:
        yield
    finally:
        if on:
            subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True)


def members(commands: list[list[str]], limit_s: float, log: Path) -> list[list[dict]]:
    """Runs the member processes at once; each one's JSON lines (those printed before a timeout too)."""
    barrier = tempfile.mkdtemp(prefix="dmt-barrier-")
    outs = [log.with_name(f"{log.stem}.{i}.out") for i in range(len(commands))]
    procs = []
    for i, (cmd, out) in enumerate(zip(commands, outs)):
        with open(out, "w") as f, open(log, "a") as err:
            procs.append(subprocess.Popen([sys.executable, MEMBER, *cmd, "--rank", str(i), "--members",
                                           str(len(commands)), "--barrier", barrier,
                                           # inside this script's temporary folder: a killed member's
                                           # files go with it
                                           "--work", str(log.parent)], stdout=f, stderr=err))
    end = time.monotonic() + limit_s
    try:
        for p in procs:
            try:
                p.wait(timeout=max(end - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
    finally:  # a timeout, or this script stopped (SIGTERM): no member may hold the GPU after its part
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(barrier, ignore_errors=True)
    lines = [[json.loads(x) for x in o.read_text().splitlines() if x.startswith("{")] for o in outs]
    for o in outs:
        o.unlink()
    return lines


def seg_modes(args, res: Results, parts: list[str], tmp: Path) -> None:
    data = fabricate_voc(tmp / "voc", shapes(args.dry_run))
    modes = [("solo", 1, False), ("pair", 2, False)] + ([("pair_mps", 2, True)] if mps_available(args.dry_run) else [])
    for mode, n, use_mps in [m for m in modes if m[0] in args.modes.split(",")]:
        cmd = ["seg", "--data", str(data), "--parts", ",".join(parts), *(["--dry-run"] if args.dry_run else [])]
        try:
            with mps(use_mps):
                lines = members([cmd] * n, args.mode_timeout, tmp / f"seg_{mode}.log")
        except Exception as exc:
            res.data["errors"][f"seg/{mode}"] = f"{type(exc).__name__}: {exc}"
            continue
        out = {part: [next((x for x in m if x["part"] == part), {"error": "timeout or crash"}) for m in lines]
               for part in parts}
        for rows in out.values():
            rates = [r.get("images_per_s") for r in rows]
            if all(rates):
                rows.append({"summed_images_per_s": round(sum(rates), 2)})
        res.put(f"seg_{mode}", out)
        print(f"[{time.monotonic() - T0:6.1f}s] seg {mode}: done", flush=True)


def member_rates(rows: dict, i: int) -> dict[str, float]:
    def get(part, key="images_per_s"):
        r = rows.get(part, [])
        return r[i].get(key) if i < len(r) and isinstance(r[i], dict) else None
    return {"train": get("train_pair"), "label": get("label"), "eval": get("eval"),
            "loader": get("loader", "best_images_per_s"), "state_write_s": get("checkpoint", "state_write_s"),
            "model_write_s": get("checkpoint", "model_write_s")}


def projections(res: Results) -> None:
    labelled = protocol_labelled(VOC_TRAIN_AUG, 106)
    plan = run_plan(SEG_PRESET, labelled, VOC_TRAIN_AUG - labelled, VOC_VAL)
    out = {}
    for mode in ("solo", "pair", "pair_mps"):
        rows = res.data.get(f"seg_{mode}")
        if rows:
            n = 1 if mode == "solo" else 2
            rates = [member_rates(rows, i) for i in range(n)] * (2 if mode == "solo" else 1)
            out[f"{mode} ({'members one after the other' if mode == 'solo' else 'members side by side'})"] = \
                project(plan, rates, side_by_side=mode != "solo")
    res.put("projection_voc_106_dmt", out or {"error": "no measured part to project from"})


def dino_pairs(args, res: Results, tmp: Path) -> None:
    out = {}
    for key, (a, b, preset) in PAIRS.items():
        cmds = [["vit", "--model", m, *(["--dry-run"] if args.dry_run else [])] for m in (a, b)]
        rows = [next(iter(m), {"error": "timeout or crash"}) for m in members(cmds, args.part_timeout,
                                                                            tmp / f"vit_{key}.log")]
        entry = {"members": rows}
        if all(r.get("images_per_s") for r in rows):
            plan = run_plan(preset, 92, VOC_TRAIN_AUG - 92, VOC_VAL)  # the published 92-label split
            # labelling and evaluation are estimated at 3x each member's training rate (a forward pass only)
            rates = [{"train": r["images_per_s"], "label": 3 * r["images_per_s"], "eval": 3 * r["images_per_s"]}
                     for r in rows]
            entry["projection_voc92"] = project(plan, rates, side_by_side=True)
            entry["summed_images_per_s"] = round(sum(r["images_per_s"] for r in rows), 2)
        out[key] = entry
        res.put("dino_pairs", out)


def compile_part(args, res: Results, tmp: Path) -> None:
    out = {}
    for model in ("deeplab", "vitb"):
        cmd = ["compile", "--model", model, *(["--dry-run"] if args.dry_run else [])]
        out[model] = members([cmd], args.part_timeout, tmp / f"compile_{model}.log")[0] or [{"error": "timeout"}]
        res.put("compile", out)


T0 = time.monotonic()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default=",".join(ALL), help=f"comma-separated, of: {', '.join(ALL)}")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes and models: check the script")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/dmt-run-parts"), help="folder of run_parts.json")
    p.add_argument("--modes", default="solo,pair,pair_mps",
                   help="of the DeepLab-v2 parts: solo, pair, pair_mps (MPS only where nvidia-cuda-mps-control exists)")
    p.add_argument("--mode-timeout", type=float, default=90.0, help="seconds for one of solo / pair / pair_mps")
    p.add_argument("--part-timeout", type=float, default=60.0, help="seconds for one DINO pair or compile model")
    args = p.parse_args()
    # an outer `timeout` stops this script with SIGTERM: unwind, so the members are killed and MPS is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parts = [q.strip() for q in args.parts.split(",") if q.strip()]
    unknown = set(parts) - set(ALL)
    if unknown:
        sys.exit(f"error: unknown part(s) {', '.join(sorted(unknown))}; known: {', '.join(ALL)}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    res = Results(Path(args.out) / "run_parts.json")
    import torch

    res.put("device", "cpu (dry run)" if args.dry_run or not torch.cuda.is_available()
            else torch.cuda.get_device_name())
    res.put("dry_run", args.dry_run)
    with tempfile.TemporaryDirectory(prefix="dmt-run-parts-") as tmp:
        steps = [("seg", lambda: seg_modes(args, res, [q for q in parts if q in SEG_PARTS], Path(tmp)),
                  any(q in SEG_PARTS for q in parts)),
                 ("projection", lambda: projections(res), "projection" in parts),
                 ("dino_pairs", lambda: dino_pairs(args, res, Path(tmp)), "dino_pairs" in parts),
                 ("compile", lambda: compile_part(args, res, Path(tmp)), "compile" in parts)]
        for name, fn, wanted in steps:
            if not wanted:
                continue
            try:
                fn()
            except Exception as exc:  # one failed part must not cost the others
                res.data["errors"][name] = f"{type(exc).__name__}: {exc}"
                res.put("errors", res.data["errors"])
            print(f"[{time.monotonic() - T0:6.1f}s] {name}: done", flush=True)
        for log in sorted(Path(tmp).glob("*.log")):  # the members' stderr, for a failed part's traceback
            text = log.read_text()
            if "Traceback" in text:
                print(f"--- {log.name}\n{text[-2000:]}", file=sys.stderr)
    print(table(res.data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
