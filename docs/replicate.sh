#!/usr/bin/env bash
# Start, or continue after any interruption, the faithful-width replication runs of the authors'
# logged training (preset paper-replica: d_model 400, their key-mod-9 split, 759,375 sequences,
# lr 1e-5 -> 2e-4 over 10 epochs, cosine planned to 200, stopped at epoch 25). See docs/replication.md.
#
#   bash docs/replicate.sh 0.8 1        # γ 0.8, seed 1 (one CPU thread; ~8 h here on one AVX2 core)
#   bash docs/replicate.sh 0.5 1
#
# Each run writes pretrained/paper-replica_L2_g<γ>_s<seed>.checkpoint.safetensors every 5 minutes
# and at each epoch end; running the same command again resumes from it. When the 25 epochs are
# done the run folder appears in pretrained/ (fp16 weights) and the checkpoint is removed.
# THREADS (default 1) sets torch's CPU threads; DEVICE (default auto) the device.
# EPOCHS=30 stops at epoch 30 instead of 25 on the same schedule (warm-up 10, cosine planned to
# 200); given when resuming, it carries the checkpointed run on to that stop.
# PRECISION=bf16 trains under bf16 autocast (validated against fp32 in docs/calibration.md,
# "bf16 against fp32"; ~2x faster on a CPU with AVX-512 bf16, ~12x slower on one without) into
# pretrained/paper-replica_bf16_L2_g<γ>_s<seed>.
set -euo pipefail
cd "$(dirname "$0")/.."
gamma=${1:?usage: replicate.sh GAMMA SEED}
seed=${2:?usage: replicate.sh GAMMA SEED}
precision=${PRECISION:-fp32}
case "$precision" in
  fp32) out=pretrained/paper-replica_L2_g${gamma}_s${seed} ;;
  bf16|tf32) out=pretrained/paper-replica_${precision}_L2_g${gamma}_s${seed} ;;
  *) echo "PRECISION must be fp32, tf32 or bf16" >&2; exit 2 ;;
esac
common=(--threads "${THREADS:-1}" --checkpoint-every 5 --half --quiet)
stop=()
if [ -n "${EPOCHS:-}" ]; then stop=(--epochs "$EPOCHS"); fi
if [ -d "$out" ]; then
  echo "$out is done"; exit 0
elif [ -f "$out.checkpoint.safetensors" ]; then
  exec python3 -m core train --resume "$out" "${stop[@]}" "${common[@]}"
else
  exec python3 -m core train --preset paper-replica --gamma "$gamma" --seed "$seed" --device "${DEVICE:-auto}" \
    --set train.precision="$precision" --out "$out" "${stop[@]}" --set train.warmup_epochs=10 \
    --set train.decay_epochs=200 "${common[@]}"
fi
