#!/usr/bin/env bash
# The checks that need a CUDA device, in one call, for the day a GPU host is lent
# (`make gpu-check`, or tools/gpu_check.sh [OUT]). Every figure goes into OUT
# (default reports/gpu-check):
#   bench.md, bench.csv   the bench's CUDA section: paper input (32 clips × 8 × 256×128, ResNet-50),
#                         AMP, full ASGL vs appearance only, clips/s and their ratio
#   train.log, train_log.csv, metrics.json
#                         the paper profile (ResNet-50, 256×128, batch 8×4, AMP) trained for
#                         $EPOCHS epochs on the benchmark-size synthetic set, then evaluated
#   summary.txt           the device, the versions and the wall time of every step
# Without CUDA it refuses in one line (exit 2) and runs nothing. GPU_CHECK_SMOKE=1 runs the same
# steps on the CPU at toy sizes, which is how the tests check the script itself.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$repo/reports/gpu-check}" && cd "${1:-$repo/reports/gpu-check}" && pwd)
epochs=${EPOCHS:-3}
smoke=${GPU_CHECK_SMOKE:-0}
work=${GPU_CHECK_WORK:-$repo/cache/gpu-check}

# The project's own environment when it has one, else the host's python3 (a GPU image's holds a
# CUDA build of torch); the code runs from the checkout either way, no install needed.
python=${PYTHON:-}
if [ -z "$python" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then python=$repo/.venv/bin/python; else python=python3; fi
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
cli() { "$python" -m stages.cli "$@"; }

if [ "$smoke" != 1 ] && ! "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "gpu-check: no CUDA device here ($python: $("$python" -c 'import torch; print("torch", torch.__version__, "sees no GPU")' 2>/dev/null || echo 'no torch')) — run it on a GPU host" >&2
  exit 2
fi
missing=$("$python" -c '
import importlib.util as u
need = "numpy torch h5py cv2 joblib click pandas tqdm matplotlib sklearn".split()
print(" ".join(n for n in need if u.find_spec(n) is None))')
if [ -n "$missing" ]; then
  echo "gpu-check: $python lacks $missing — install them (or carry their wheels) first" >&2
  exit 2
fi
# Without MediaPipe (a GPU image rarely has it) the set's exact joints stand in for its skeletons.
pose=mediapipe
"$python" -c 'import mediapipe' 2>/dev/null || pose=groundtruth
[ "$smoke" = 1 ] && pose=groundtruth  # seconds instead of minutes: the smoke run checks plumbing

train_profile=paper
if [ "$smoke" = 1 ]; then  # toy sizes and the demo network: the steps and files, not the speed
  synth_sets=(--set synth.identities=4 --set synth.frames=8 --set synth.cameras=2 --set synth.check_tracklets=0)
  train_profile=demo
  train_sets=(--set train.height=64 --set train.width=32 --set train.ids_per_batch=2
              --set train.clips_per_id=2 --set eval.batch_size=4 --device cpu)
  epochs=1
else
  synth_sets=()
  train_sets=(--device cuda --set train.amp=true)
fi

summary=$out/summary.txt
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
timed() {  # timed NAME COMMAND...: run it, note its wall time; a failure stops the script
  local name=$1 start=$SECONDS
  shift
  "$@"
  note "$name: $((SECONDS - start)) s"
}

note "gpu-check $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname); smoke=$smoke; pose source $pose; $epochs epoch(s)"
"$python" -c '
import torch, platform
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"device {i}: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs")' | tee -a "$summary"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee -a "$summary" || true

timed "bench, CUDA section" cli bench --profile paper --section cuda --out "$out"

root=$work/synthetic-benchmark
cache=$work/skeletons/synthetic-benchmark-$pose.h5
if [ ! -f "$root/synth_summary.json" ]; then
  timed "synth (benchmark set)" cli synth --profile benchmark --out "$root" --overwrite "${synth_sets[@]}"
fi
timed "preprocess ($pose)" cli preprocess --profile benchmark --root "$root" --cache "$cache" --pose-source "$pose"
rm -rf "$work/runs/gpu-check-paper"
timed "train + evaluate, $train_profile profile, $epochs epoch(s)" cli train --profile "$train_profile" --root "$root" \
  --cache "$cache" --run gpu-check-paper --epochs "$epochs" --set paths.runs_dir="$work/runs" \
  "${train_sets[@]}" 2>&1 | tee "$out/train.log"
cp "$work/runs/gpu-check-paper/train_log.csv" "$work/runs/gpu-check-paper/metrics.json" "$out/"
note "clips/s per epoch (train_log.csv): $(tail -n +2 "$out/train_log.csv" | cut -d, -f7 | paste -sd' ')"
note "gpu-check: figures in $out"
