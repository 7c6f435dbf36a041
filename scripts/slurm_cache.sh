#!/usr/bin/env bash
# The cache stage on a SLURM cluster: one array task per shard, then one merge job.
#
#   bash scripts/slurm_cache.sh submit [N]     # submits an N-task array (default 8) + a merge job after it
#
# Each array task runs, in this repository (a shared clone; the cache folder on a shared filesystem),
#   PYTHONPATH=src flowmimic cache --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT
# and the merge job, once every task has succeeded,
#   PYTHONPATH=src flowmimic cache-merge
# exactly as `flowmimic cache` would on one machine (tests/test_slurm.py runs these functions with
# SLURM_ARRAY_TASK_ID=0/1 set, and compares the result with one unsharded run). A failed or killed
# task is simply resubmitted: the manifest makes it redo only what it had not finished.
# Size the tasks with params.yaml: `cache.workers` = the task's CPUs, `cache.threads_per_worker` 1.
# Set FLOWMIMIC_PARAMS to use another params file; sourcing the script defines the functions only.
#SBATCH --job-name=flowmimic-cache
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=logs/cache-%A_%a.out
set -euo pipefail

cache_shard() {   # one array task: this task's shard of the sequences
    PYTHONPATH=src flowmimic cache --params "${FLOWMIMIC_PARAMS:-params.yaml}" \
        --shard "${SLURM_ARRAY_TASK_ID:?not an array task}/${SLURM_ARRAY_TASK_COUNT:?not an array task}"
}

cache_merge() {   # after every task: one index.json and manifest, as one unsharded run writes
    PYTHONPATH=src flowmimic cache-merge --params "${FLOWMIMIC_PARAMS:-params.yaml}"
}

submit() {        # the array, then the merge once all its tasks succeeded
    local n="${1:-8}" array
    mkdir -p logs
    array=$(sbatch --parsable --array="0-$((n - 1))" "$0" task)
    sbatch --dependency="afterok:${array%%;*}" --job-name=flowmimic-cache-merge --output=logs/cache-merge-%j.out \
        --wrap "bash $0 merge"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    case "${1:-task}" in
        submit) shift; submit "$@" ;;
        task) cache_shard ;;
        merge) cache_merge ;;
        *) echo "usage: $0 submit [N] | task | merge" >&2; exit 2 ;;
    esac
fi
