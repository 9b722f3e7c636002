"""`make bench`: the benchmark suite of `dmt bench` (see src/dmt/bench/), table + JSON.

    python benchmarks/run.py [--quick] [--out FILE.json] [--only ITEM ...]

is `dmt bench` with the same options; the JSON goes to benchmarks/results.json unless --out
says otherwise. Speed targets live here, never in the tests. The GPU measurements are
benchmarks/gpu.py.
"""

from __future__ import annotations

import sys

from dmt.cli.main import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args += ["--out", "benchmarks/results.json"]
    sys.exit(main(["bench", *args]))
