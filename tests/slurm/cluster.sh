#!/usr/bin/env bash
# A real, throw-away SLURM cluster of several compute nodes on this machine, for tests.
#
#   tests/slurm/cluster.sh install                    # only install the packages (if needed)
#   tests/slurm/cluster.sh start STATE_DIR            # install (if needed), configure, start
#   tests/slurm/cluster.sh stop  STATE_DIR            # stop exactly the daemons `start` started
#   tests/slurm/cluster.sh status STATE_DIR           # sinfo/squeue/sacct of that cluster
#   tests/slurm/cluster.sh kill-node STATE_DIR NODE   # lose a node: SIGKILL its slurmd and
#                                                     # every process of its jobs
#
# Each compute node is a slurmd of its own (`slurmd -N NAME`: the packaged slurmd runs
# several on one host when each has its own port, spool directory, PID and log file,
# which slurm.conf gives per node with %n).  KMLP_SLURM_NODES nodes (default 2) of
# KMLP_SLURM_CPUS_PER_NODE CPUs each (default: this machine's CPUs shared out, at least 1).
# A lost node is noticed within SlurmdTimeout (10 s here; minutes on production clusters).
#
# Everything lives under STATE_DIR: configs, MUNGE key and socket, MariaDB data
# directory, SLURM spool/state/logs and the PID list.  Nothing system-wide is
# configured or started, so it does not touch (or need) /etc/slurm, /etc/munge,
# /var/lib/mysql or a service manager.  Ports are picked free at start.
# Clients use the cluster after `source STATE_DIR/env` (sets SLURM_CONF).
# Like a production cluster it enforces associations: besides the default partition
# "debug" it has a partition "study" (every node) and a partition "single" (the first node
# only) that only the account "kmlp-project" may use, and the user who starts it (root) is
# in that account (`start` prints the names).
#
# Daemons: munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd, each started
# directly in the foreground mode of the daemon, detached with setsid, its PID
# recorded in STATE_DIR/pids as "NAME PID".  `stop` signals only those PIDs
# (after checking /proc/PID/comm still is NAME), in reverse order.
#
# Needs root (slurmd must be root; everything runs as root to keep the state
# directory simple).  Debian 12 packages, installed with apt-get if missing:
# munge slurmctld slurmd slurm-client slurmdbd mariadb-server.
#
# Environment knobs:
#   KMLP_SLURM_KEEP_ON_FAILURE=1  leave daemons running when `start` fails
#   KMLP_SLURM_TIMEOUT=SECONDS    per-step wait timeout (default 60)
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
# command -> package that brings it
declare -A NEEDED_CMDS=(
  [munged]=munge [munge]=munge
  [slurmctld]=slurmctld [slurmd]=slurmd [slurmdbd]=slurmdbd
  [sbatch]=slurm-client [sinfo]=slurm-client [sacct]=slurm-client
  [sacctmgr]=slurm-client [scontrol]=slurm-client
  [mariadbd]=mariadb-server [mariadb-install-db]=mariadb-server
  [mariadb]=mariadb-server [mariadb-admin]=mariadb-server
)
CLUSTER_NAME=kmlp
# The partition the tests submit to (not the default one) and the only account that
# may use it; the user running the cluster (root) gets an association with it.
STUDY_PARTITION=study
SINGLE_PARTITION=single
STUDY_ACCOUNT=kmlp-project
N_NODES=${KMLP_SLURM_NODES:-2}
TIMEOUT=${KMLP_SLURM_TIMEOUT:-60}

log() { printf '[cluster.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
  echo "usage: $0 install  |  $0 {start|stop|status} STATE_DIR  |  $0 kill-node STATE_DIR NODE" >&2
  exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- packages --
install_packages() {
  local missing=() c
  for c in "${!NEEDED_CMDS[@]}"; do
    command -v "$c" >/dev/null 2>&1 || missing+=("${NEEDED_CMDS[$c]}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "packages missing (${missing[*]}) and not root to install them"
  local t0; t0=$(now)
  log "installing Debian packages: ${PACKAGES[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' maintainer scripts from starting system daemons
  # (munge, mariadb, slurm*) that we would then not own: a policy-rc.d that
  # denies every start, only if none exists, removed afterwards.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    added_policy=1
  fi
  local rc=0
  # Update the package lists only when apt does not know the packages yet.
  if ! apt-cache show slurmctld mariadb-server >/dev/null 2>&1 \
     || [ -z "$(apt-cache policy slurmctld | awk '/Candidate:/ {print $2}' | grep -v none)" ]; then
    log "apt-get update (package lists do not know slurmctld yet)"
    apt-get update -q >&2 || rc=$?
  fi
  if [ $rc -eq 0 ]; then
    apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${PACKAGES[@]}" >&2 || rc=$?
    if [ $rc -ne 0 ]; then
      # stale lists (404 on a superseded version): update once and retry
      log "apt-get install failed (rc=$rc); apt-get update and retry"
      rc=0
      apt-get update -q >&2 && apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${PACKAGES[@]}" >&2 || rc=$?
    fi
  fi
  [ $added_policy -eq 1 ] && rm -f "$policy"
  [ $rc -eq 0 ] || die "apt-get install ${PACKAGES[*]} failed (rc=$rc)"
  for c in "${!NEEDED_CMDS[@]}"; do
    command -v "$c" >/dev/null 2>&1 || die "still missing after install: $c"
  done
  log "packages installed in $(elapsed "$t0") s"
}

# ------------------------------------------------------------------ helpers --
free_ports() {
  # N unused TCP ports on 127.0.0.1 (the kernel picks them; tiny race is fine)
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# alive PID: exists and is not a zombie
alive() {
  local pid=$1 st
  [ -r "/proc/$pid/stat" ] || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# PID still is the daemon we started (guards against PID reuse)
is_ours() {
  local name=$1 pid=$2
  alive "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]
}

tail_log() {
  local f=$1
  if [ -s "$f" ]; then
    echo "----- last lines of $f -----" >&2
    tail -n 30 "$f" >&2
    echo "-----" >&2
  fi
}

dump_logs() {
  local f
  for f in "$STATE"/log/*.log "$STATE"/log/*.out; do
    [ -e "$f" ] && tail_log "$f"
  done
  return 0
}

# launch NAME LOGFILE CMD... : start CMD detached, record "NAME PID"
launch() {
  local name=$1 out=$2; shift 2
  setsid "$@" </dev/null >>"$out" 2>&1 &
  local pid=$!
  echo "$name $pid" >>"$STATE/pids"
  LAST_PID=$pid
}

# wait_for DESCRIPTION NAME PID LOG CMD... : poll CMD until it succeeds
wait_for() {
  local what=$1 name=$2 pid=$3 logf=$4; shift 4
  local deadline=$(( $(date +%s) + TIMEOUT ))
  while ! "$@" >/dev/null 2>&1; do
    if ! alive "$pid"; then
      log "$name (pid $pid) exited while waiting for: $what (see $logf)"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "timed out after ${TIMEOUT}s waiting for: $what (see $logf); last try said:"
      "$@" 2>&1 | tail -n 5 >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

nodes_idle() {
  local st
  # one line per node and partition
  st=$(sinfo -h -N -n "$NODES" -o %T 2>/dev/null | sort -u) || return 1
  [ "$st" = idle ] && [ "$(sinfo -h -N -n "$NODES" -o %N 2>/dev/null | sort -u | wc -l)" -eq "$N_NODES" ]
}

cluster_registered() {
  sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER_NAME"
}

# ------------------------------------------------------------------- config --
write_configs() {
  local cpus mem real_mem
  # What slurmd itself detects; the node drains if we claim more.
  local detected; detected=$(slurmd -C | head -n 1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$detected")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$detected")
  [ -n "$cpus" ] && [ -n "$mem" ] || die "cannot parse 'slurmd -C': $detected"
  # the machine's CPUs and memory shared out between the nodes; a little below the
  # detected memory, so rounding can never drain a node
  local per_node=${KMLP_SLURM_CPUS_PER_NODE:-$(( cpus / N_NODES > 0 ? cpus / N_NODES : 1 ))}
  real_mem=$(( (mem > 2048 ? mem - 512 : mem) / N_NODES ))

  cat >"$STATE/etc/slurm.conf" <<EOF
# Generated by tests/slurm/cluster.sh: a test cluster of $N_NODES compute nodes.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
StateSaveLocation=$STATE/spool/ctld
# one spool directory, PID file and log per node (%n: the node's name)
SlurmdSpoolDir=$STATE/spool/d-%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
# No usable cgroups here (container / VM without a cgroup manager).  Track a job's
# processes by process group, not by parentage (proctrack/linuxproc): a cancelled job's
# Snakemake, orphaned when its batch shell died, escaped linuxproc's kill and stayed
# behind; with pgid it is killed with the rest (KillWait seconds after SIGTERM), as
# proctrack/cgroup does on production clusters.
ProctrackType=proctrack/pgid
KillWait=5
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
# sample each task's memory every second: the tests' jobs last seconds, and sacct's
# MaxRSS stays empty for a job that ends before the first sample
JobAcctGatherFrequency=task=1
# enforce each job's memory request from those samples (production clusters do it with
# cgroups, which this machine lacks): a job over it ends OUT_OF_MEMORY
JobAcctGatherParams=OverMemoryKill
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ReturnToService=2
# a node whose slurmd stops answering is DOWN after 10 s, its jobs NODE_FAIL
SlurmdTimeout=10
SchedulerType=sched/backfill
SelectType=select/cons_tres
# allocate logical CPUs (as counted by CPUs= below) and memory
SelectTypeParameters=CR_CPU_Memory
# without a default, a job without --mem gets the whole node's memory
DefMemPerCPU=1000
# keep finished jobs visible in squeue a while (fallback status command)
MinJobAge=600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# with auth/munge this is the MUNGE socket for talking to slurmdbd (clients
# such as sacct/sacctmgr ignore AuthInfo for that connection)
AccountingStoragePass=$STATE/munge/munge.socket
# store sbatch --comment (profiles/slurm/sbatch-submit.py puts kmlp:<group or
# rule>[:<wildcards>] there) so that sacct -o Comment shows which jobs a job was
AccountingStoreFlags=job_comment
# a job must name an account the user has an association with (or have a default
# one), as on production clusters; sbatch refuses the others at once
AccountingStorageEnforce=associations
# refuse at submission a job that no partition could ever run (more CPUs or memory
# than a node has) instead of leaving it pending forever
EnforcePartLimits=ALL
JobCompType=jobcomp/none
$(for i in "${!NODE_NAMES[@]}"; do
  echo "NodeName=${NODE_NAMES[$i]} NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=${NODE_PORTS[$i]} CPUs=$per_node RealMemory=$real_mem State=UNKNOWN"
done)
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
# not the default partition: jobs get here only with --partition=$STUDY_PARTITION,
# and only under the account $STUDY_ACCOUNT
PartitionName=$STUDY_PARTITION Nodes=ALL Default=NO MaxTime=INFINITE State=UP AllowAccounts=$STUDY_ACCOUNT
# the same, on the first node only (one node against all of them, same cluster)
PartitionName=$SINGLE_PARTITION Nodes=${NODE_NAMES[0]} Default=NO MaxTime=INFINITE State=UP AllowAccounts=$STUDY_ACCOUNT
EOF

  cat >"$STATE/etc/slurmdbd.conf" <<EOF
# Generated by tests/slurm/cluster.sh
AuthType=auth/munge
AuthInfo=socket=$STATE/munge/munge.socket
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
DebugLevel=info
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
  # slurmdbd refuses a config readable by others; owner must be SlurmUser
  chmod 600 "$STATE/etc/slurmdbd.conf"
  chown root:root "$STATE/etc/slurmdbd.conf"

  # Client wrappers that pin SLURM_CONF.  Needed for `srun` inside jobs:
  # snakemake-executor-plugin-slurm-jobstep (0.6) starts the job's `srun`
  # with every SLURM_* variable removed except the job's identity, SLURM_CONF
  # included, so a plain srun would look for /etc/slurm/slurm.conf.  The job
  # inherits PATH (sbatch --export=ALL), so these wrappers are found there.
  mkdir -p "$STATE/bin"
  local c real
  for c in srun sbatch salloc squeue sacct sinfo scontrol scancel sacctmgr sstat; do
    real=$(command -v "$c") || continue
    case "$real" in "$STATE"/*) continue ;; esac
    printf '#!/bin/sh\n# generated by tests/slurm/cluster.sh\nSLURM_CONF=%s exec %s "$@"\n' \
      "$STATE/etc/slurm.conf" "$real" >"$STATE/bin/$c"
    chmod 755 "$STATE/bin/$c"
  done

  {
    echo "# source this file to use the test cluster in $STATE"
    echo "export SLURM_CONF=$STATE/etc/slurm.conf"
    echo "export PATH=$STATE/bin:\$PATH"
  } >"$STATE/env"
}

# -------------------------------------------------------------------- start --
start() {
  local t_all; t_all=$(now)
  install_packages
  local t0; t0=$(now)

  if [ -s "$STATE/pids" ]; then
    local n pid running=0
    while read -r n pid; do is_ours "$n" "$pid" && running=1; done <"$STATE/pids"
    if [ $running -eq 1 ]; then
      die "a cluster from $STATE is still running (see $STATE/pids); run '$0 stop $STATE' first"
    fi
    rm -f "$STATE/pids"
  fi

  # munged checks that every directory above its socket is world-searchable
  local d=$STATE
  while [ "$d" != / ]; do
    [ -d "$d" ] || break
    if [ $(( 8#$(stat -c %a "$d") & 1 )) -eq 0 ]; then
      die "munged needs execute permission for all on every parent of its socket; '$d' is mode $(stat -c %a "$d") (chmod o+x it or use another STATE_DIR)"
    fi
    d=$(dirname "$d")
  done
  local sock="$STATE/munge/munge.socket"
  [ ${#sock} -lt 100 ] || die "STATE_DIR path too long for a unix socket: $sock"

  # fresh state every start; only ever wipe a directory this script made
  [ -n "$STATE" ] && [ "$STATE" != / ] || die "refusing STATE_DIR '$STATE'"
  if [ -n "$(ls -A "$STATE")" ] && [ ! -e "$STATE/.kmlp-slurm-state" ]; then
    die "$STATE is not empty and not a cluster.sh state directory; use a new or empty one"
  fi
  touch "$STATE/.kmlp-slurm-state"
  rm -rf "${STATE:?}"/{etc,bin,env,munge,mungekey,db,spool,run,log,node-pids}
  mkdir -p "$STATE"/{etc,spool/ctld,run,log,db}
  install -d -m 755 "$STATE/munge"
  install -d -m 700 "$STATE/mungekey"
  : >"$STATE/pids"

  [[ "$N_NODES" =~ ^[1-9][0-9]*$ ]] || die "KMLP_SLURM_NODES must be a positive number, not '$N_NODES'"
  NODE_NAMES=() NODE_PORTS=()
  local ports; read -r -a ports <<<"$(free_ports $(( 3 + N_NODES )))"
  DB_PORT=${ports[0]} DBD_PORT=${ports[1]} CTLD_PORT=${ports[2]}
  local i
  for (( i=1; i<=N_NODES; i++ )); do
    NODE_NAMES+=("node$i")
    NODE_PORTS+=("${ports[$(( 2 + i ))]}")
  done
  NODES="node[1-$N_NODES]"
  [ "$N_NODES" -eq 1 ] && NODES=node1
  DB_PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  write_configs
  export SLURM_CONF="$STATE/etc/slurm.conf"

  # any failure from here on (die, a failing command under set -e): show the
  # logs and stop what was started
  START_OK=0
  trap 'on_start_exit' EXIT

  # munge: private key and socket
  dd if=/dev/urandom of="$STATE/mungekey/munge.key" bs=1024 count=1 status=none
  chmod 400 "$STATE/mungekey/munge.key"
  launch munged "$STATE/log/munged.out" munged -F \
    --key-file="$STATE/mungekey/munge.key" --socket="$sock" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" \
    --seed-file="$STATE/run/munged.seed"
  wait_for "munge credential round trip" munged "$LAST_PID" "$STATE/log/munged.log" \
    bash -c "munge -S '$sock' -n | unmunge -S '$sock'"
  log "munged up (pid $LAST_PID)"

  # MariaDB: private data directory, TCP on 127.0.0.1 only
  mariadb-install-db --no-defaults --datadir="$STATE/db/data" --user=root \
    --auth-root-authentication-method=socket --skip-test-db --innodb-log-file-size=16M \
    >"$STATE/log/mariadb-install.out" 2>&1 \
    || { tail_log "$STATE/log/mariadb-install.out"; die "mariadb-install-db failed"; }
  launch mariadbd "$STATE/log/mariadbd.out" mariadbd --no-defaults \
    --datadir="$STATE/db/data" --user=root --socket="$STATE/db/mysqld.sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --pid-file="$STATE/run/mariadbd.pid" --log-error="$STATE/log/mariadbd.log" \
    --innodb-buffer-pool-size=128M --innodb-log-file-size=16M \
    --innodb-lock-wait-timeout=900
  wait_for "MariaDB answering on $STATE/db/mysqld.sock" mariadbd "$LAST_PID" "$STATE/log/mariadbd.log" \
    mariadb-admin --no-defaults -S "$STATE/db/mysqld.sock" -uroot ping
  mariadb --no-defaults -S "$STATE/db/mysqld.sock" -uroot -e "
    CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" \
    || die "could not create the slurmdbd database/user"
  log "mariadbd up (pid $LAST_PID, port $DB_PORT)"

  # slurmdbd (finds slurmdbd.conf next to \$SLURM_CONF)
  launch slurmdbd "$STATE/log/slurmdbd.out" slurmdbd -D
  wait_for "slurmdbd answering (sacctmgr list cluster)" slurmdbd "$LAST_PID" "$STATE/log/slurmdbd.log" \
    sacctmgr -n list cluster
  # register the cluster before slurmctld first talks to slurmdbd
  cluster_registered || sacctmgr -i add cluster "$CLUSTER_NAME" >"$STATE/log/sacctmgr.out" 2>&1 \
    || { tail_log "$STATE/log/sacctmgr.out"; die "sacctmgr add cluster failed"; }
  # the study's account, and this user in it (root keeps its default account root)
  { sacctmgr -i add account "$STUDY_ACCOUNT" cluster="$CLUSTER_NAME" \
      Description="kmlp test project" Organization=kmlp \
    && sacctmgr -i add user "$(id -un)" account="$STUDY_ACCOUNT" cluster="$CLUSTER_NAME"; } \
    >>"$STATE/log/sacctmgr.out" 2>&1 \
    || { tail_log "$STATE/log/sacctmgr.out"; die "sacctmgr add account/user failed"; }
  log "slurmdbd up (pid $LAST_PID, port $DBD_PORT)"

  launch slurmctld "$STATE/log/slurmctld.out" slurmctld -D -i -f "$SLURM_CONF"
  local ctld_pid=$LAST_PID
  wait_for "slurmctld answering (scontrol ping)" slurmctld "$ctld_pid" "$STATE/log/slurmctld.log" \
    bash -c 'scontrol ping | grep -q UP'
  log "slurmctld up (pid $ctld_pid, port $CTLD_PORT)"

  local node
  for i in "${!NODE_NAMES[@]}"; do
    node=${NODE_NAMES[$i]}
    mkdir -p "$STATE/spool/d-$node"
    launch slurmd "$STATE/log/slurmd-$node.out" slurmd -D -f "$SLURM_CONF" -N "$node"
    echo "$node $LAST_PID" >>"$STATE/node-pids"
    log "slurmd of $node started (pid $LAST_PID, port ${NODE_PORTS[$i]})"
  done
  wait_for "nodes $NODES idle in sinfo" slurmd "$LAST_PID" "$STATE/log/slurmd-$node.log" nodes_idle
  log "nodes $NODES idle"

  # accounting reachable from clients (the executor plugin polls sacct)
  wait_for "sacct answering" slurmctld "$ctld_pid" "$STATE/log/slurmdbd.log" \
    sacct -n -X -a

  # each recorded PID must really be the daemon we meant
  local n pid
  while read -r n pid; do
    is_ours "$n" "$pid" || { dump_logs; die "$n (pid $pid) is not running"; }
  done <"$STATE/pids"

  START_OK=1
  trap - EXIT
  log "cluster '$CLUSTER_NAME' up in $(elapsed "$t0") s (total incl. package check $(elapsed "$t_all") s)"
  echo "BRINGUP_SECONDS=$(elapsed "$t0")"
  echo "STUDY_PARTITION=$STUDY_PARTITION"
  echo "SINGLE_PARTITION=$SINGLE_PARTITION"
  echo "NODES=${NODE_NAMES[*]}"
  echo "STUDY_ACCOUNT=$STUDY_ACCOUNT"
  echo "Use it with: source $STATE/env"
}

on_start_exit() {
  local rc=$?
  trap - EXIT
  [ "${START_OK:-0}" = 1 ] && return 0
  log "start failed (exit status $rc)"
  dump_logs
  if [ "${KMLP_SLURM_KEEP_ON_FAILURE:-0}" = 1 ]; then
    log "KMLP_SLURM_KEEP_ON_FAILURE=1: leaving daemons running; stop with '$0 stop $STATE'"
  else
    stop_daemons || true
  fi
  exit $(( rc == 0 ? 1 : rc ))
}

# --------------------------------------------------------------------- stop --
stop_daemons() {
  [ -s "$STATE/pids" ] || { log "no daemons recorded in $STATE/pids"; rm -f "$STATE/pids"; return 0; }
  local names=() pids=() n pid i
  while read -r n pid; do names+=("$n"); pids+=("$pid"); done <"$STATE/pids"

  # cancel any jobs still in this cluster, so no job steps are left behind
  if [ -r "$STATE/etc/slurm.conf" ] && command -v scancel >/dev/null 2>&1; then
    local ctld_alive=0
    for i in "${!names[@]}"; do
      [ "${names[$i]}" = slurmctld ] && is_ours slurmctld "${pids[$i]}" && ctld_alive=1
    done
    if [ $ctld_alive -eq 1 ]; then
      local jobs
      jobs=$(SLURM_CONF="$STATE/etc/slurm.conf" squeue -h -o %i 2>/dev/null || true)
      if [ -n "$jobs" ]; then
        log "cancelling leftover jobs: $(echo $jobs)"
        SLURM_CONF="$STATE/etc/slurm.conf" scancel $jobs 2>/dev/null || true
        local dl=$(( $(date +%s) + 15 ))
        while [ -n "$(SLURM_CONF="$STATE/etc/slurm.conf" squeue -h -o %i 2>/dev/null)" ] \
              && [ "$(date +%s)" -lt "$dl" ]; do sleep 0.5; done
      fi
    fi
  fi

  # reverse start order: slurmd, slurmctld, slurmdbd, mariadbd, munged
  for (( i=${#names[@]}-1; i>=0; i-- )); do
    n=${names[$i]}; pid=${pids[$i]}
    if ! is_ours "$n" "$pid"; then
      alive "$pid" && log "pid $pid is no longer $n; not touching it" \
                   || log "$n (pid $pid) already gone"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local dl=$(( $(date +%s) + 20 ))
    while alive "$pid" && [ "$(date +%s)" -lt "$dl" ]; do sleep 0.1; done
    if alive "$pid"; then
      log "$n (pid $pid) ignored SIGTERM for 20 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$pid"; do sleep 0.1; done
    fi
    log "stopped $n (pid $pid)"
  done
  rm -f "$STATE/pids"
}

stop() {
  [ -d "$STATE" ] || { log "no state directory $STATE; nothing to stop"; return 0; }
  stop_daemons
}

status() {
  [ -r "$STATE/etc/slurm.conf" ] || die "no cluster config in $STATE"
  export SLURM_CONF="$STATE/etc/slurm.conf"
  local n pid
  if [ -r "$STATE/pids" ]; then
    while read -r n pid; do
      if is_ours "$n" "$pid"; then echo "$n $pid running"; else echo "$n $pid NOT running"; fi
    done <"$STATE/pids"
  fi
  sinfo || true
  squeue || true
  sacct -a -X -o JobID,JobName%30,State,ExitCode,Elapsed || true
}

# ---------------------------------------------------------------- kill-node --
# A node lost as a machine is lost: its slurmd and every process of the jobs running on
# it die at once (SIGKILL), nothing is cleaned up.  The controller notices within
# SlurmdTimeout and ends those jobs NODE_FAIL.  A job's processes are found by their
# environment (SLURMD_NODENAME, set by slurmd for every task) and, for the slurmstepd
# that runs a batch script, by its job id among the jobs squeue places on the node.
kill_node() {
  local node=$1
  [ -r "$STATE/node-pids" ] || die "no node PIDs in $STATE"
  local pid; pid=$(awk -v n="$node" '$1 == n {print $2}' "$STATE/node-pids")
  [ -n "$pid" ] || die "no node '$node' in $STATE/node-pids"
  export SLURM_CONF="$STATE/etc/slurm.conf"
  local jobs; jobs=$(squeue -h -w "$node" -o %A 2>/dev/null | sort -u | tr '\n' ' ')
  local victims=() steps=""
  is_ours slurmd "$pid" && victims+=("$pid")
  # One grep over every process (not a few programs per process: on a loaded machine that
  # scan took seconds, and a job's last run finished before the kill came, seen in CI).
  # grep -z reads environ and cmdline as NUL-separated lines.
  for j in $jobs; do steps+="${steps:+|}$j"; done
  mapfile -t -O "${#victims[@]}" victims < <(
    {
      grep -lxzF "SLURMD_NODENAME=$node" /proc/[0-9]*/environ 2>/dev/null || true
      [ -z "$steps" ] || grep -lzE "^slurmstepd: \[($steps)\." /proc/[0-9]*/cmdline 2>/dev/null || true
    } | cut -d/ -f3 | sort -un
  )
  [ ${#victims[@]} -gt 0 ] || die "nothing of $node is running"
  kill -KILL "${victims[@]}" 2>/dev/null || true
  log "node $node lost: SIGKILL to slurmd $pid and ${#victims[@]} processes in all (jobs on it: ${jobs:-none})"
}

# --------------------------------------------------------------------- main --
# `install` alone: the packages only (CI installs them while pip builds its environment)
if [ "${1-}" = install ] && [ $# -eq 1 ]; then install_packages; exit 0; fi
[ $# -ge 2 ] || usage
case "$2" in
  /*) STATE=$2 ;;
  *) STATE=$PWD/$2 ;;
esac
STATE=${STATE%/}
case "$1" in
  start) mkdir -p "$STATE"; STATE=$(cd "$STATE" && pwd -P); start ;;
  stop) [ -d "$STATE" ] && STATE=$(cd "$STATE" && pwd -P); stop ;;
  status) status ;;
  kill-node) [ $# -eq 3 ] || usage; STATE=$(cd "$STATE" && pwd -P); kill_node "$3" ;;
  *) usage ;;
esac
