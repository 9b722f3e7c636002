"""Soak test of resumption: a small run killed again and again ends exactly like an uninterrupted one.

``make soak`` (not part of CI: it takes minutes). One uninterrupted run of a tiny digits demo is
the reference. The same command is then started on another run directory and, in each round, sent
SIGKILL or SIGTERM (chosen at random) at a random moment, then started again; after the last round
it runs to its end. The final ``results.json`` (wall times aside) and every stage's model tensors
must equal the reference's, and so must the model files' bytes.

    python benchmarks/soak.py [--rounds 8] [--seed 0] [--out runs/soak]

Prints the rounds, the kills survived (by signal) and the mismatches (expected 0); exits 1 on a
mismatch or a run that failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors import safe_open

# a tiny run with every kind of stage work: baseline, two phases (labelling, thresholds), evaluation
CONFIG = ["baseline.epochs=20", "phases.ratios=[0.5, 1.0]", "phases.epochs=4", "phases.batch_pseudo=32",
          "oracle.enabled=false", "checkpoint_min_seconds=0", "eval.batch_size=256", "data.num_workers=0"]
EXIT_TERMINATED = 75  # dmt's status after a SIGTERM it checkpointed (dmt.engine.signals)


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "dmt", "demo", "--out", str(out), *CONFIG]


def environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def results(path: Path) -> dict:
    data = json.loads((path / "results.json").read_text())
    for s in data["stages"]:
        s.pop("wall_time_s", None)  # the only field that depends on the clock
    return data


def tensors(path: Path) -> dict[str, object]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def compare(ref: Path, out: Path) -> list[str]:
    """What differs between two finished run directories (empty: nothing)."""
    problems = []
    if results(ref) != results(out):
        problems.append("results.json")
    for model in sorted(ref.glob("stages/*/model.safetensors")):
        other = out / model.relative_to(ref)
        if not other.exists():
            problems.append(f"{other} missing")
            continue
        a, b = tensors(model), tensors(other)
        if a.keys() != b.keys() or any(not a[k].equal(b[k]) for k in a):
            problems.append(f"{other.relative_to(out)} tensors")
        if hashlib.sha256(model.read_bytes()).digest() != hashlib.sha256(other.read_bytes()).digest():
            problems.append(f"{other.relative_to(out)} bytes")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="interruptions at most (bounded run time)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times and signals")
    parser.add_argument("--out", default="runs/soak", help="folder for the two run directories (emptied)")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    base = Path(args.out)
    shutil.rmtree(base, ignore_errors=True)
    ref, out = base / "uninterrupted", base / "interrupted"

    started = time.monotonic()
    done = subprocess.run(command(ref), env=environment(), capture_output=True, text=True)
    if done.returncode != 0:
        print(f"reference run failed ({done.returncode}):\n{done.stderr[-2000:]}", file=sys.stderr)
        return 1
    length = time.monotonic() - started
    print(f"reference run: {length:.1f} s")

    survived = {"SIGKILL": 0, "SIGTERM": 0}
    failures = []
    rounds = 0
    for r in range(args.rounds):
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
        delay = rng.uniform(1.0, 0.6 * length)  # short enough that several rounds land mid-run
        proc = subprocess.Popen(command(out), env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
        _, err = proc.communicate()
        rounds += 1
        code = proc.returncode
        if code == 0:
            print(f"round {r + 1}: the run finished before its {sig.name} ({delay:.1f} s)")
            break
        # SIGTERM: checkpointed stop (75), or killed before the handler was installed (-15)
        expected = (-signal.SIGKILL,) if sig == signal.SIGKILL else (EXIT_TERMINATED, -signal.SIGTERM)
        if code not in expected:
            failures.append(f"round {r + 1}: exit {code} after {sig.name}: {err.strip().splitlines()[-1:]}")
        else:
            survived[sig.name] += 1
        stages = len(json.loads((out / "results.json").read_text())["stages"]) if (out / "results.json").exists() else 0
        print(f"round {r + 1}: {sig.name} after {delay:.1f} s -> exit {code}; {stages} stages finished")

    final = subprocess.run(command(out), env=environment(), capture_output=True, text=True)
    if final.returncode != 0:
        failures.append(f"final run: exit {final.returncode}: {final.stderr[-2000:]}")
    mismatches = compare(ref, out) if final.returncode == 0 else ["no final results"]
    print(f"rounds {rounds}, kills survived {sum(survived.values())} "
          f"(SIGKILL {survived['SIGKILL']}, SIGTERM {survived['SIGTERM']}), mismatches {len(mismatches)}"
          + (f": {', '.join(mismatches)}" if mismatches else ""))
    for f in failures:
        print(f, file=sys.stderr)
    return 1 if mismatches or failures else 0


if __name__ == "__main__":
    sys.exit(main())
