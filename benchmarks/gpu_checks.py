"""End-to-end checks on a CUDA machine (run once, next to benchmarks/gpu.py).

    PYTHONPATH=src python benchmarks/gpu_checks.py                          # every check
    PYTHONPATH=src python benchmarks/gpu_checks.py side_by_side eval  # those named

1. ``voc_smoke``: `dmt run voc-20-dmt --smoke` on a fabricated VOC tree: DeepLab-v2/ResNet-101 on
   CUDA with the default AMP and layout, every stage (baselines, labelling, 10 phase stages, evaluation).
2. ``voc_smoke_rerun`` and ``eval``: the same run resumed (finished stages skipped) and `dmt eval` of
   its last model on CUDA.
3. ``side_by_side``: the same smoke with `--nproc 2` on the one GPU: models A and B of each phase
   trained at once by two processes (``train.members_in_parallel: auto``, gloo between them).
Prints wall times and writes $OUT/gpu_checks.json when OUT is set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "data"))
from seg_fixtures import write_voc_tree  # noqa: E402


def dmt(*args: str) -> tuple[int, float, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "dmt", *args], env=env, capture_output=True, text=True)
    return p.returncode, time.monotonic() - t0, (p.stdout + p.stderr)[-1500:]


def main(only: list[str]) -> None:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"2007_{i:06d}" for i in range(40)]
        root = write_voc_tree(Path(tmp) / "voc", splits={"train_aug": names, "train": names[:4],
                                                         "val": ["2008_000001", "2008_000002"]})
        run = Path(tmp) / "run"
        args = ["run", "voc-20-dmt", f"data.root={root}", "--smoke", "--out", str(run)]
        checks = {"voc_smoke": args, "voc_smoke_rerun": args,
                  "eval": ["eval", str(run / "stages/phase5-a/model.safetensors"), "--data", "voc",
                           "--root", str(root), "--device", "cuda"],
                  "side_by_side": ["run", "voc-20-dmt", f"data.root={root}", "--smoke", "--nproc", "2",
                                   "--out", str(Path(tmp) / "run-side-by-side")]}
        unknown = [name for name in only if name not in checks]
        if unknown:
            sys.exit(f"error: unknown check(s) {', '.join(unknown)}; known: {', '.join(checks)}")
        for key, cmd in checks.items():
            if only and key not in only:
                continue
            rc, wall, tail = dmt(*cmd)
            out[key] = {"rc": rc, "wall_s": round(wall, 1)}
            print(f"{key}: rc {rc}, {wall:.1f} s", flush=True)
            if rc:
                print(tail)
                out[key]["tail"] = tail
            if "--out" in cmd:  # what the run says of side-by-side members and warnings
                log = Path(cmd[cmd.index("--out") + 1]) / "log.txt"
                said = [line for line in (log.read_text().splitlines() if log.exists() else [])
                        if any(w in line for w in ("side by side", "device"))
                        or ("WARNING" in line and "predicts no pixel" not in line)]
                out[key]["log"] = said[:12]
                print("\n".join(said[:12]), flush=True)
        if (run / "log.txt").exists():
            log = (run / "log.txt").read_text()
            out["device_line"] = next((line for line in log.splitlines() if "device" in line), "")
    print(json.dumps(out, indent=1))
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_checks.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
