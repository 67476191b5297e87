#!/usr/bin/env bash
# A single-node Slurm cluster from Debian's packages (munge, slurmctld, slurmd, slurm-client),
# everything under one folder: its own munge key and socket, config, state, spool, logs and
# ports, so it touches nothing of the machine's (no /etc/slurm, no services). No cgroups:
# proctrack/linuxproc and task/none, so it also runs in a chroot or a container. Needs root
# (slurmd starts jobs as their user).
#   source scripts/slurm/cluster.sh
#   slurm_up /tmp/cluster      # starts munged, slurmctld, slurmd; waits for the node to be idle
#   slurm_sbatch ...; squeue ... # SLURM_CONF is exported by slurm_up
#   slurm_down                 # cancels every job, stops the daemons and whatever they started
# Ports: SAM_SLURM_PORT (slurmctld) and the next one (slurmd), 16817 by default.

# Every daemon started here, its job steps, and every job submitted with slurm_sbatch carry
# SAM_SLURM_CLUSTER=<folder> in their environment (the calling shell does not): slurm_down finds
# what is left by that, and ends only those.
slurm_up() {
    local dir=$1 port=${SAM_SLURM_PORT:-16817} cpus
    cpus=$(nproc)
    for tool in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
        command -v "$tool" >/dev/null || { echo "slurm: $tool is not installed (scripts/setup.sh installs it)"; return 1; }
    done
    mkdir -p "$dir"/{munge,state,spool,logs}
    chmod 700 "$dir" "$dir/munge"
    SAM_SLURM_DIR=$(cd "$dir" && pwd)
    dir=$SAM_SLURM_DIR
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    cat >"$dir/slurm.conf" <<CONF
ClusterName=samtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/logs/slurmctld.log
SlurmdLogFile=$dir/logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=600
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    SAM_SLURM_CLUSTER=$dir munged --foreground --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/logs/munged.log" --seed-file="$dir/munge/munged.seed" \
        >"$dir/logs/munged.out" 2>&1 &
    echo $! >"$dir/munged.daemon"
    local i
    for i in $(seq 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
    [ -S "$dir/munge/munge.socket" ] || { echo "slurm: munged did not start:"; cat "$dir/logs/munged.out" "$dir/logs/munged.log" 2>/dev/null; return 1; }
    SAM_SLURM_CLUSTER=$dir slurmctld -D -c -i -f "$SLURM_CONF" >"$dir/logs/slurmctld.out" 2>&1 &
    echo $! >"$dir/slurmctld.daemon"
    SAM_SLURM_CLUSTER=$dir slurmd -D -N localhost -f "$SLURM_CONF" >"$dir/logs/slurmd.out" 2>&1 &
    echo $! >"$dir/slurmd.daemon"
    local state=""
    for i in $(seq 300); do
        state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
        [ "$state" = idle ] && break
        for d in munged slurmctld slurmd; do
            kill -0 "$(cat "$dir/$d.daemon")" 2>/dev/null || { echo "slurm: $d exited:"; tail -n 20 "$dir"/logs/"$d".*; return 1; }
        done
        sleep 0.1
    done
    [ "$state" = idle ] || { echo "slurm: the node is '$state', not idle, after 30 s:"; tail -n 20 "$dir"/logs/*.log; return 1; }
    echo "slurm: single-node cluster up in $dir ($cpus CPUs, slurmctld port $port)"
}

# sbatch, the job marked as this cluster's.
slurm_sbatch() { SAM_SLURM_CLUSTER=$SAM_SLURM_DIR sbatch "$@"; }

# PIDs of processes whose environment names this cluster (daemons, job steps, their children).
slurm_pids() {
    local dir=${SAM_SLURM_DIR:-} p
    [ -n "$dir" ] || return 0
    for p in /proc/[0-9]*; do
        { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qx "SAM_SLURM_CLUSTER=$dir" && echo "${p#/proc/}"
    done
    return 0
}

slurm_down() {
    local dir=${SAM_SLURM_DIR:-} d pid pids i
    [ -n "$dir" ] || return 0
    if [ -f "$dir/slurmctld.daemon" ] && kill -0 "$(cat "$dir/slurmctld.daemon")" 2>/dev/null; then
        scancel --full --quiet --user=root 2>/dev/null || true
        for i in $(seq 50); do [ -z "$(squeue -h -t running,completing 2>/dev/null)" ] && break; sleep 0.1; done
    fi
    for d in slurmd slurmctld munged; do
        [ -f "$dir/$d.daemon" ] || continue
        pid=$(cat "$dir/$d.daemon")
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$dir/$d.daemon"
    done
    # Job steps and their children outlive slurmd: end those of this cluster, by PID.
    for i in $(seq 50); do
        pids=$(slurm_pids)
        [ -n "$pids" ] || break
        for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
        sleep 0.1
    done
    unset SLURM_CONF
}
