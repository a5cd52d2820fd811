#!/usr/bin/env bash
# The one prepared command for a session that is lent a GPU (the device tool's `run`, about 9
# minutes of its 15). It measures the training step on the GPU, then runs the suite (the
# paper-replica pair over 3 seeds for 30 epochs, then as much depth × γ grid as fits) and packs
# what the app needs into $OUT (the device tool returns at most 8 files of 16 MiB):
#   $OUT/bench.txt, $OUT/suite.log, $OUT/suite.json, $OUT/published.tar.gz
# Unpack here with:  tar -xzf <files_at>/published.tar.gz -C pretrained
# Before calling it: the working tree must be under 64 MiB, so move any committed
# pretrained/*.checkpoint.safetensors (CPU replication checkpoints) into an ignored folder first.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
BUDGET=${BUDGET:-6}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/bench.txt"
timeout 120 python3 bench/train_speed.py --device cuda --steps 100 --paper-steps 60 2>&1 | tee -a "$OUT/bench.txt"
python3 -m core suite gpu --out /tmp/suite --budget-minutes "$BUDGET" --copy-to /tmp/published \
  --copy-weights seed0 2>&1 | tee "$OUT/suite.log"
cp /tmp/suite/suite.json "$OUT/" 2>/dev/null
# phase-grid weights stay behind (size); the pair's seed-1 weights (fp16, ~5 MB each) travel
tar -czf "$OUT/published.tar.gz" -C /tmp/published --exclude='suite-phase*/*/weights.safetensors' .
ls -la "$OUT"
