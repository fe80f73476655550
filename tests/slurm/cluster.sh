# shellcheck shell=bash
# cluster.sh — a one-node Slurm cluster on this machine, for tests (sourced).
#
#   slurm_cluster_missing          what of slurm-wlm and munge is not installed
#                                  (nothing when all is there)
#   slurm_cluster_start DIR        munged, slurmctld and slurmd, all state, spool,
#                                  sockets and logs under DIR; exports SLURM_CONF.
#                                  Returns 1 (with the daemons' logs on stderr)
#                                  when the node does not come up.
#   slurm_cluster_stop DIR         cancel every job, stop the three daemons
#
# The cluster: this host (hostname -s) at 127.0.0.1 with the CPUs slurmd -C
# finds and 1000 MB, two fake GPUs (gres gpu:2 on /dev/null and /dev/zero:
# Slurm sets CUDA_VISIBLE_DEVICES for them like for real ones), one
# partition, select/cons_tres, proctrack/linuxproc and task/none (no cgroups:
# runs in a container without systemd), JobRequeue=1, free ports picked at
# start (several clusters can run side by side). Daemons run as the calling
# user (root in CI). By hand:
#
#   . tests/slurm/cluster.sh && slurm_cluster_start /tmp/slurm-test
#   sbatch ...; squeue; ...
#   slurm_cluster_stop /tmp/slurm-test

slurm_cluster_missing() {
  local c missing=()
  for c in slurmctld slurmd slurmstepd sbatch srun scontrol squeue scancel sinfo munged munge; do
    command -v "$c" >/dev/null 2>&1 || missing+=("$c")
  done
  echo "${missing[*]}"
}

# _slurm_free_ports N: N TCP ports free on this host now.
_slurm_free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# _slurm_munge DIR: a key and a munged serving DIR/munge/sock.
_slurm_munge() {
  local d=$1
  # munged wants its key private and its socket folder reachable by all
  mkdir -p "$d/munge-key" "$d/munge" && chmod 700 "$d/munge-key" && chmod 755 "$d" "$d/munge" || return 1
  if command -v mungekey >/dev/null 2>&1; then
    mungekey --create --keyfile="$d/munge-key/munge.key" || return 1
  else
    dd if=/dev/urandom of="$d/munge-key/munge.key" bs=1024 count=1 status=none || return 1
    chmod 600 "$d/munge-key/munge.key"
  fi
  munged --socket="$d/munge/sock" --key-file="$d/munge-key/munge.key" \
    --pid-file="$d/munge/munged.pid" --seed-file="$d/munge-key/seed" \
    --log-file="$d/log/munged.log" || return 1
  munge --socket="$d/munge/sock" -n | unmunge --socket="$d/munge/sock" >/dev/null
}

# _slurm_conf DIR: DIR/slurm.conf and DIR/gres.conf.
_slurm_conf() {
  local d=$1 host node ports
  host=$(hostname -s)
  # the node line as slurmd sees this machine, less its memory
  node=$(slurmd -C | sed -n "s/^NodeName=\([^ ]*\) \(.*\) RealMemory=[0-9]*/\2/p" | head -n 1)
  [ -n "$node" ] || node="CPUs=$(nproc)"
  read -r -a ports < <(_slurm_free_ports 2)
  cat >"$d/slurm.conf" <<EOF
ClusterName=simatest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$d/munge/sock
CredType=cred/munge
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
JobRequeue=1
ReturnToService=2
MinJobAge=3600
KillWait=10
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 $node RealMemory=1000 Gres=gpu:2 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  printf 'Name=gpu File=/dev/null\nName=gpu File=/dev/zero\n' >"$d/gres.conf"
}

slurm_cluster_start() {
  local d=$1 i
  mkdir -p "$d/state" "$d/spool" "$d/log" || return 1
  if ! _slurm_munge "$d"; then
    echo "slurm_cluster_start: munged did not start:" >&2
    cat "$d/log/munged.log" >&2
    return 1
  fi
  _slurm_conf "$d" || return 1
  export SLURM_CONF=$d/slurm.conf
  if ! slurmctld -f "$SLURM_CONF" || ! slurmd -f "$SLURM_CONF"; then
    echo "slurm_cluster_start: slurmctld or slurmd did not start" >&2
    tail -n 20 "$d"/log/slurm*.log >&2
    return 1
  fi
  for ((i = 0; i < 300; i++)); do
    [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && return 0
    sleep 0.1
  done
  echo "slurm_cluster_start: the node did not become idle: $(sinfo 2>&1)" >&2
  tail -n 20 "$d"/log/slurm*.log >&2
  return 1
}

# _slurm_stop_pid FILE: end the process whose id FILE holds, waiting up to 10 s.
_slurm_stop_pid() {
  local pid i
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
}

slurm_cluster_stop() {
  local d=$1
  [ -f "$d/slurm.conf" ] || return 0
  local i
  SLURM_CONF=$d/slurm.conf scancel --quiet --user="$(id -un)" 2>/dev/null
  for ((i = 0; i < 150; i++)); do   # let the jobs end before their slurmd does
    [ -z "$(SLURM_CONF=$d/slurm.conf squeue -h -t RUNNING,COMPLETING 2>/dev/null)" ] && break
    sleep 0.1
  done
  _slurm_stop_pid "$d/slurmd.pid"
  _slurm_stop_pid "$d/slurmctld.pid"
  _slurm_stop_pid "$d/munge/munged.pid"
}
