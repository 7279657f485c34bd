#!/bin/bash
# The full matrix as a Slurm job array of 8 shards; merge with the dependent job below.
#   sbatch docs/slurm/bench-array.sh
#   sbatch --dependency=afterok:<array job id> --wrap ".venv/bin/dnnbench merge results/full-{1..8} --out results/full"
#SBATCH --job-name=dnnbench-full
#SBATCH --array=1-8
#SBATCH --cpus-per-task=2
#SBATCH --mem=24G
#SBATCH --time=04:00:00
set -euo pipefail
cd "$SLURM_SUBMIT_DIR"
make bench MATRIX=full ARGS="--shard ${SLURM_ARRAY_TASK_ID}/8" RESULTS="results/full-${SLURM_ARRAY_TASK_ID}"
