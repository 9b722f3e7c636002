#!/usr/bin/env bash
# The GPU checks of issue 27 in one call on a lent GPU machine, in this order, within 8 minutes
# (the per-part timeouts below sum to 470 s; the environment lines take a few seconds):
#   OUT=folder bash benchmarks/device_checks.sh
# 1. the GPU tests (tests/engine/test_gpu.py; train.cuda_graph no longer exists: no captured-step test);
# 2. benchmarks/run_parts.py, the parts of a DeepLab-v2 VOC 1/106 DMT run at the paper's shapes on a
#    fabricated VOC tree, two members side by side and the pair under MPS (where
#    nvidia-cuda-mps-control exists; each member alone, --modes solo, is left out for time):
#    training, labelling and evaluation images/s, data-loader images/s (the preset's workers and
#    the machine's cores), checkpoint write seconds, peak memory per process; then the whole voc-106-dmt run projected from those parts beside the step-only figure;
# 3. the DINOv2-B + DINOv2-S and DINOv2-B + DINOv3-B pairs side by side at 518, batch 8, bf16:
#    images/s and peak memory per process, the projected VOC-92 run;
# 4. train.compile=reduce-overhead against eager for the DeepLab-v2 step and the ViT-B step.
# The issue 16/17 checks (benchmarks/gpu_checks.py side_by_side, benchmarks/gpu.py,
# benchmarks/vit_memory.py) no longer fit in the 8 minutes and are not run here; each still runs alone.
# Each part has its own time limit, so a stalled part leaves the others' results (run_parts.json is
# rewritten after every part); at most 6 files are written under $OUT.
# Check the script on a CPU first (tiny shapes, about a minute): DRY=1 OUT=folder bash benchmarks/device_checks.sh
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/dmt-device-checks}
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import os, torch, timm; print('torch', torch.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available(), 'cores', os.cpu_count())"
  command -v nvidia-cuda-mps-control || echo "no nvidia-cuda-mps-control"
  date -u; } > "$OUT/env.txt" 2>&1
echo "== 1. GPU tests"
timeout 40 $PY -m pytest -q -p no:cacheprovider -rs tests/engine/test_gpu.py > "$OUT/cuda_tests.log" 2>&1; tail -3 "$OUT/cuda_tests.log"
echo "== 2. DeepLab-v2 VOC 1/106 parts, members side by side without and with MPS, and the projection"
timeout 135 $PY benchmarks/run_parts.py ${DRY:+--dry-run} --out "$OUT" --modes pair,pair_mps --mode-timeout 60 \
  --parts train_pair,label,eval,loader,checkpoint,projection > "$OUT/parts_seg.log" 2>&1; grep -E "^\[|deeplab|projection" "$OUT/parts_seg.log" | cut -c1-300
echo "== 3. DINO pairs at 518, batch 8, bf16"
timeout 100 $PY benchmarks/run_parts.py ${DRY:+--dry-run} --out "$OUT" --part-timeout 45 --parts dino_pairs > "$OUT/parts_dino.log" 2>&1; grep -E "dino pair" "$OUT/parts_dino.log" | cut -c1-300
echo "== 4. train.compile=reduce-overhead against eager"
timeout 195 $PY benchmarks/run_parts.py ${DRY:+--dry-run} --out "$OUT" --part-timeout 93 --parts compile > "$OUT/parts_compile.log" 2>&1; grep -E "^compile|^error" "$OUT/parts_compile.log" | cut -c1-300
echo "== the table of every part"; $PY benchmarks/parts_report.py "$OUT/run_parts.json" | cut -c1-300
date -u >> "$OUT/env.txt"
