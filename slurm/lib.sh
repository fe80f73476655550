# shellcheck shell=bash
# lib.sh — the part every sima batch script shares (sourced, not run).
#
#   sima_args N USAGE "$@"   exit 2 with USAGE unless N positional arguments
#                            are there (and none is -h/--help)
#   sima_run TOOL ARGS...    run $SIMA_BIN/TOOL under srun (with the options
#                            in $SIMA_SRUN_OPTS), forward Slurm's warning
#                            signal, requeue the job on exit 3, and exit
#                            with the tool's status
#
# The tools are found in $SIMA_BIN, default $SIMA_HOME/build/bin; SIMA_HOME
# is the source tree this file is in (the batch scripts locate it, see
# sima-gen.sbatch). Under Slurm a batch script runs from a copy in the
# spool folder, so the scripts cannot always find the tree from their own
# path: export SIMA_HOME, or submit from the tree's root.

# This file's folder's parent is the tree.
SIMA_HOME=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export SIMA_HOME
SIMA_BIN=${SIMA_BIN:-$SIMA_HOME/build/bin}

# sima_args N USAGE "$@": check the count of positional (required) arguments.
sima_args() {
  local need=$1 usage=$2 a
  shift 2
  if [ "$#" -lt "$need" ]; then
    echo "usage: $usage" >&2
    exit 2
  fi
  # the required arguments are files and folders, never options
  for a in "${@:1:$need}"; do
    case $a in
      -h | --help) echo "usage: $usage" >&2; exit 2 ;;
      -*) echo "usage: $usage" >&2; echo "(option '$a' where a path belongs)" >&2; exit 2 ;;
    esac
  done
}

# sima_run TOOL ARGS...: run the tool on every task of the job and exit with
# its status. Slurm sends the warning signal (--signal=B:USR1@...) to this
# shell only; it is passed on to srun, which delivers it to the tasks. On
# exit status 3 the tool has committed its work and stopped early: the job
# is requeued, and the requeued job continues where it stopped.
sima_run() {
  local tool=$1 exe=$SIMA_BIN/$1 pid rc
  shift
  if [ ! -x "$exe" ]; then
    echo "$tool: $exe: no such program (build the tree, or set SIMA_HOME or SIMA_BIN)" >&2
    exit 1
  fi
  export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
  # srun of Slurm 22.05 and later no longer takes --cpus-per-task from the
  # job: without this each task would get one core
  [ -n "${SLURM_CPUS_PER_TASK:-}" ] && export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK
  local srun_opts=()
  read -r -a srun_opts <<<"${SIMA_SRUN_OPTS:-}"   # e.g. --mpi=pmix
  echo "$tool: job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname)}: $exe $*"
  trap 'kill -USR1 "$pid" 2>/dev/null' USR1
  srun --kill-on-bad-exit=1 "${srun_opts[@]}" "$exe" "$@" &
  pid=$!
  wait "$pid"
  rc=$?
  # wait returns early when the trap fires: wait again for the real exit code
  while kill -0 "$pid" 2>/dev/null; do
    wait "$pid"
    rc=$?
  done
  trap - USR1
  if [ "$rc" -eq 3 ]; then
    sima_requeue "$tool"
  fi
  exit "$rc"
}

# sima_requeue TOOL: put this job back in the queue after an interruption.
sima_requeue() {
  if [ -z "${SLURM_JOB_ID:-}" ]; then
    echo "$1 was interrupted after committing its work; not a Slurm job: rerun the same command" >&2
    return
  fi
  echo "$1 was interrupted after committing its work; requeueing job $SLURM_JOB_ID"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    echo "$1: scontrol requeue $SLURM_JOB_ID failed: resubmit the same command to finish" >&2
  fi
}
