#!/usr/bin/env bash
# Every GPU check of issues 16 and 17 in one call on a lent GPU machine (about 8 minutes on an H200):
#   OUT=folder bash benchmarks/device_checks.sh
# 1. the CUDA tests (AMP training);
# 2. end to end on the GPU: a --smoke run with models A and B side by side (--nproc 2)
#    (benchmarks/gpu_checks.py);
# 3. benchmarks/gpu.py: eager / bf16 / channels_last / DDP / two members
#    side by side (and under MPS), images/s, peak memory, MFU, the projected VOC 1/106 run;
# 4. benchmarks/vit_memory.py: the DINOv2 ViT-B DMT step at 518 and 798, with and without activation
#    checkpointing: images/s, peak memory, the projected VOC-92 run.
# Each part has its own time limit, so a stalled part leaves the others' results; at most 8 files
# are written under $OUT.
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/dmt-device-checks}
mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"
  date -u; } > "$OUT/env.txt" 2>&1
echo "== CUDA tests"; timeout 90 python3 -m pytest -q -p no:cacheprovider -rs tests/engine/test_gpu.py > "$OUT/cuda_tests.log" 2>&1; tail -3 "$OUT/cuda_tests.log"
echo "== end to end"; timeout 150 python3 benchmarks/gpu_checks.py side_by_side > "$OUT/gpu_checks.log" 2>&1; grep -E "rc [0-9]" "$OUT/gpu_checks.log"
echo "== gpu.py"; timeout 240 python3 benchmarks/gpu.py --budget 180 --steps 10 > "$OUT/gpu.log" 2>&1; grep -E "^\[" "$OUT/gpu.log" | cut -c1-300
echo "== vit_memory"; timeout 95 python3 benchmarks/vit_memory.py --device cuda > "$OUT/vit.log" 2>&1; cat "$OUT/vit.log" | cut -c1-300
date -u >> "$OUT/env.txt"
