#!/usr/bin/env bash
# glue5 on one GPU with fractional GPUs: wall time and GPU utilisation of a slice sized to finish in under 10 minutes.
#
#   bash benchmarks/device_glue5.sh                        # RTE, MRPC, CoLA and WNLI, seed 0, every method (24 runs)
#   TASKS=sst2,mrpc,rte,cola,wnli SEEDS=0,1,2,3,4 bash benchmarks/device_glue5.sh     # the whole suite (hours)
#
# Needs: the package installed with its cluster extra (`pip install -e ".[cluster]"`: Ray), a CUDA build of torch,
# the GLUE folder ($CMI_TOOLKIT_GLUE_DIR) and nvidia-smi. Four runs share the GPU (--gpus_per_run 0.25). The records go
# to a results folder of their own (RESULTS_DIR, default a fresh temporary folder), never into results/, so a
# measurement does not mix with the committed CPU evidence. Prints the batch summary, the wall time, the GPU's name
# and its mean and peak utilisation and memory, sampled once a second while the batch runs.
# Status: written and checked on the CPU side only (no GPU was lent to the session that wrote it); its first real
# numbers will come from the first session that is lent one.
set -euo pipefail
TASKS=${TASKS:-rte,mrpc,cola,wnli}
SEEDS=${SEEDS:-0}
GPUS_PER_RUN=${GPUS_PER_RUN:-0.25}
CPUS_PER_RUN=${CPUS_PER_RUN:-2}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d -t glue5-device-XXXX)}
SAMPLES=$(mktemp -t gpu-samples-XXXX)

command -v nvidia-smi >/dev/null || { echo "device_glue5: nvidia-smi not found: this script measures a GPU" >&2; exit 2; }
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { echo "device_glue5: torch sees no GPU (a CPU build of torch?)" >&2; exit 2; }
GPU=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -n1)
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -l 1 >"$SAMPLES" &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

start=$(date +%s)
cmi-toolkit reproduce --suite glue5 --tasks "$TASKS" --seeds "$SEEDS" --engine ray \
    --gpus_per_run "$GPUS_PER_RUN" --cpus_per_run "$CPUS_PER_RUN" --results_dir "$RESULTS_DIR" \
    --figures_dir "$RESULTS_DIR/figures" --report false
wall=$(( $(date +%s) - start ))
kill $SAMPLER 2>/dev/null || true

python3 - "$SAMPLES" "$wall" "$GPU" "$TASKS" "$SEEDS" "$GPUS_PER_RUN" "$RESULTS_DIR" <<'PY'
import sys
path, wall, gpu, tasks, seeds, share, results = sys.argv[1:]
rows = [line.split(",") for line in open(path) if line.count(",") == 1]
util = [float(u) for u, _ in rows]
mem = [float(m) for _, m in rows]
runs = sum(1 for _ in __import__("pathlib").Path(results, "runs").glob("*.json"))
print(f"| GPU | tasks | seeds | GPUs per run | runs recorded | wall (s) | runs per hour | GPU util mean / peak (%) | "
      f"memory peak (MiB) |\n|---|---|---|---|---|---|---|---|---|\n"
      f"| {gpu} | {tasks} | {seeds} | {share} | {runs} | {wall} | {3600 * runs / max(int(wall), 1):.0f} | "
      f"{sum(util) / max(len(util), 1):.0f} / {max(util, default=0):.0f} | {max(mem, default=0):.0f} |")
PY
