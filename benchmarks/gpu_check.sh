#!/usr/bin/env bash
# The one GPU check of issue #10, for one call on the GPU machine, after the wheel procedure of
# ../shared/device/ (ray, optuna and their needs installed into /tmp/site):
#
#   bash .whl-b/install-wheels.sh || exit 1; export PYTHONPATH=/tmp/site; bash benchmarks/gpu_check.sh "$OUT"
#
# Steps, each under its own timeout and all within GPU_CHECK_BUDGET seconds (default 480, so the wheel install fits in the same 600 s call), none
# stopping the ones after it when it fails:
#   0. env        what the machine has (python, torch, CUDA device, importable packages) -> env.json
#   1. pytest     pytest -m gpu (tests/gpu)                          -> pytest-gpu.txt, pytest-gpu.xml
#   2. epochs     benchmarks/epoch_speed.py, all 14 models, CUDA, baby scale
#                                                                    -> epoch_speed_baby_gpu.{json,md,txt}
#   3. study      benchmarks/study_speed.py --gpus 1,0.25 (FREEDOM on demo)
#                                                                    -> study_speed_gpu.{json,md,txt}
# Everything goes to the folder named by the first argument, else $OUT, else ./gpu-check. A step that
# cannot run here (no CUDA, no Ray) is reported as skipped with the reason; the script itself always
# exits 0 and writes steps.json and summary.md (each step's status, exit code and seconds).
set -u
out=${1:-${OUT:-gpu-check}}
mkdir -p "$out" && out=$(cd "$out" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"  # mgtune is not installed there: use this tree
export MGTUNE_BENCH_DATA=${MGTUNE_BENCH_DATA:-/tmp/mgtune-bench}  # survives between calls while warm
py=${PYTHON:-python3}
budget=${GPU_CHECK_BUDGET:-480}
start=$(date +%s)
steps=()

note() { echo "[gpu_check $(($(date +%s) - start))s] $*"; }

# run_step NAME TIMEOUT LOGFILE CMD...: runs CMD with at most TIMEOUT seconds (less if the budget is short)
run_step() {
  local name=$1 limit=$2 log=$3; shift 3
  local left=$((budget - ($(date +%s) - start) - 5))
  if [ "$left" -lt 20 ]; then
    steps+=("{\"step\": \"$name\", \"status\": \"skipped\", \"reason\": \"budget of ${budget}s used up\"}")
    note "$name: skipped (budget used up)"; return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  note "$name: starting (timeout ${limit}s): $*"
  local t0=$(date +%s) rc=0
  timeout --kill-after=10 "$limit" "$@" > "$out/$log" 2>&1 || rc=$?
  local secs=$(($(date +%s) - t0)) status=ok
  [ "$rc" -ne 0 ] && status=failed
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && status=timed_out
  steps+=("{\"step\": \"$name\", \"status\": \"$status\", \"rc\": $rc, \"seconds\": $secs, \"log\": \"$log\"}")
  note "$name: $status (rc $rc, ${secs}s); last lines:"; tail -n 15 "$out/$log"
}

skip_step() {
  steps+=("{\"step\": \"$1\", \"status\": \"skipped\", \"reason\": \"$2\"}")
  note "$1: skipped ($2)"
}

# 0. the machine
timeout 60 "$py" - > "$out/env.json" 2> "$out/env.err" <<'EOF'
import importlib.util, json, platform, sys
env = {"python": sys.version.split()[0], "platform": platform.platform()}
try:
    import torch
    env["torch"] = torch.__version__
    env["cuda"] = torch.cuda.is_available()
    if env["cuda"]:
        p = torch.cuda.get_device_properties(0)
        env.update(device=p.name, device_gib=round(p.total_memory / 2**30, 1), device_count=torch.cuda.device_count(),
                   cuda_version=torch.version.cuda)
except Exception as exc:  # report, never stop the check
    env["torch_error"] = repr(exc)
env["importable"] = {m: importlib.util.find_spec(m) is not None
                     for m in ("pytest", "ray", "optuna", "pandas", "scipy", "yaml", "tensorboard", "tensorboardX",
                               "torch_geometric")}
print(json.dumps(env, indent=2))
EOF
cat "$out/env.json"
has_cuda=$("$py" -c "import json,sys; print(int(json.load(open(sys.argv[1])).get('cuda', False)))" "$out/env.json" 2>/dev/null || echo 0)
has_ray=$("$py" -c "import json,sys; print(int(json.load(open(sys.argv[1]))['importable']['ray']))" "$out/env.json" 2>/dev/null || echo 0)

# 1. the GPU tests (they skip themselves without CUDA; the study test also without Ray)
run_step pytest "${GPU_CHECK_PYTEST_S:-150}" pytest-gpu.txt \
  "$py" -m pytest -q -m gpu tests/gpu -p no:cacheprovider -rs --durations=10 --junitxml="$out/pytest-gpu.xml"

# 2. training epochs and evaluation of every model at baby scale
if [ "$has_cuda" = 1 ]; then
  run_step epochs "${GPU_CHECK_EPOCHS_S:-170}" epoch_speed_baby_gpu.txt \
    "$py" benchmarks/epoch_speed.py --models all --device cuda --repeats 2 --no-baseline --model-timeout 45 \
    --data-dir "$MGTUNE_BENCH_DATA" --json "$out/epoch_speed_baby_gpu.json" --markdown "$out/epoch_speed_baby_gpu.md"
else
  skip_step epochs "no CUDA device"
fi

# 3. trials per hour at 1 and 0.25 GPU per trial
if [ "$has_cuda" = 1 ] && [ "$has_ray" = 1 ]; then
  run_step study "${GPU_CHECK_STUDY_S:-160}" study_speed_gpu.txt \
    "$py" benchmarks/study_speed.py --gpus 1,0.25 --dataset demo --data-dir "$MGTUNE_BENCH_DATA" --trials 8 \
    --max-epochs 2 --json "$out/study_speed_gpu.json" --markdown "$out/study_speed_gpu.md"
elif [ "$has_cuda" != 1 ]; then
  skip_step study "no CUDA device"
else
  skip_step study "ray not importable (install the wheels, then export PYTHONPATH=/tmp/site)"
fi

# the record of the steps, then one markdown page with every figure
(IFS=,; echo "[${steps[*]}]") > "$out/steps.json"
{
  echo "# GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(($(date +%s) - start)) s"
  echo; echo '```json'; cat "$out/env.json"; echo '```'
  echo; echo "## Steps"; echo '```json'; cat "$out/steps.json"; echo '```'
  echo; echo "## pytest -m gpu"; echo '```'; tail -n 25 "$out/pytest-gpu.txt" 2>/dev/null; echo '```'
  echo; echo "## Epochs (benchmarks/epoch_speed.py, baby scale)"
  cat "$out/epoch_speed_baby_gpu.md" 2>/dev/null || echo "(no table)"
  echo; echo "## Study (benchmarks/study_speed.py --gpus 1,0.25)"
  cat "$out/study_speed_gpu.md" 2>/dev/null || echo "(no table)"
} > "$out/summary.md"
note "done; figures in $out (summary.md, steps.json)"
exit 0
