#!/bin/bash
# Runs one exercise on MPI across the hosts of an LSF job.
#
# Build first, on the login node (this script builds nothing):
#   cargo build --release -p exercise-4 --features mpi
# Then submit it from the workspace root on standard input (`bsub < script`, the form in which
# bsub reads the #BSUB lines below); so the exercise and the rank count are variables, which
# bsub passes on with the rest of your environment:
#   bsub < mpi/lsf-exercise.sh                                   # exercise-4, 4 ranks on 2 hosts
#   EXERCISE=exercise-3 RANKS=3 bsub < mpi/lsf-exercise.sh
#   EXERCISE=exercise-4 ARGS="--algorithm tree-reduce" bsub < mpi/lsf-exercise.sh
#   EXERCISE=exercise-5 bsub -n 2 -R "span[ptile=1]" < mpi/lsf-exercise.sh   # one rank per host
# If your Open MPI was built without LSF support (`ompi_info | grep lsf` prints nothing), add
# LSF_HOSTFILE=1: mpirun then takes the hosts from the file LSF writes, $LSB_DJOB_HOSTFILE.
#
#BSUB -J mp-exercise
#BSUB -n 4
#BSUB -R "span[ptile=2]"
#BSUB -W 0:10
#BSUB -o mp-exercise.%J.out

set -euo pipefail

exercise="${EXERCISE:-exercise-4}"
ranks="${RANKS:-${LSB_DJOB_NUMPROC:-4}}"
read -r -a program_args <<< "${ARGS:-}"

# The job starts in the directory you submitted from; the binary's path is relative to it.
cd "${LS_SUBCWD:-.}"
binary="target/release/$exercise"
if [[ ! -x "$binary" ]]; then
    echo "no $binary: build it first, on the login node:" >&2
    echo "  cargo build --release -p $exercise --features mpi" >&2
    exit 1
fi

# If your site uses modules, load the same MPI you built with, for example:
# module load openmpi

hosts=()
if [[ "${LSF_HOSTFILE:-0}" == "1" ]]; then
    hosts=(--hostfile "${LSB_DJOB_HOSTFILE:?LSF did not set LSB_DJOB_HOSTFILE}")
fi

echo "job ${LSB_JOBID:-?} on ${LSB_HOSTS:-?}: $exercise with $ranks ranks"
set -x
# (The ${a[@]+...} form keeps an empty list valid under `set -u` in older bash.)
mpirun -n "$ranks" ${hosts[@]+"${hosts[@]}"} "$binary" ${program_args[@]+"${program_args[@]}"}
