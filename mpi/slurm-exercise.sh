#!/bin/bash
# Runs one exercise on MPI across the nodes of a Slurm job.
#
# Build first, on the login node (this script builds nothing):
#   cargo build --release -p exercise-4 --features mpi
# Then submit from the workspace root:
#   sbatch mpi/slurm-exercise.sh exercise-4             # as many ranks as tasks: 2 nodes x 2 = 4
#   sbatch mpi/slurm-exercise.sh exercise-3 3           # fewer ranks than tasks
#   sbatch mpi/slurm-exercise.sh exercise-4 4 -- --algorithm tree-reduce   # flags for the program
#   sbatch --ntasks-per-node=1 mpi/slurm-exercise.sh exercise-5   # 2 ranks, one per node
# Variables work too (sbatch passes your environment on): EXERCISE, RANKS, and LAUNCHER=srun to
# start the ranks with `srun --mpi=pmix` instead of mpirun (where the site supports it:
# `srun --mpi=list` shows what it has).
#
#SBATCH --job-name=mp-exercise
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=2
#SBATCH --time=00:10:00
#SBATCH --output=%x-%j.out

set -euo pipefail

# Arguments: [exercise [ranks]] [-- program flags]
exercise="${EXERCISE:-exercise-4}"
ranks="${RANKS:-}"
if [[ $# -gt 0 && "$1" != "--" ]]; then
    exercise="$1"
    shift
fi
if [[ $# -gt 0 && "$1" != "--" ]]; then
    ranks="$1"
    shift
fi
if [[ $# -gt 0 && "$1" == "--" ]]; then
    shift
fi
ranks="${ranks:-${SLURM_NTASKS:?not inside a Slurm job: submit it with sbatch}}"

# The job starts in the directory you submitted from; the binary's path is relative to it.
cd "${SLURM_SUBMIT_DIR:-.}"
binary="target/release/$exercise"
if [[ ! -x "$binary" ]]; then
    echo "no $binary: build it first, on the login node:" >&2
    echo "  cargo build --release -p $exercise --features mpi" >&2
    exit 1
fi

# If your site uses modules, load the same MPI you built with, for example:
# module load openmpi

echo "job $SLURM_JOB_ID on $SLURM_JOB_NODELIST: $exercise with $ranks ranks"
if [[ "${LAUNCHER:-mpirun}" == "srun" ]]; then
    set -x
    srun --mpi=pmix -n "$ranks" "$binary" "$@"
else
    # Inside the allocation, Open MPI's mpirun asks Slurm for the hosts: no hostfile needed.
    set -x
    mpirun -n "$ranks" "$binary" "$@"
fi
