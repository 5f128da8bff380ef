#!/usr/bin/env bash
# Stop the daemons that .ci/slurm/start-cluster.sh started, by the PIDs in its PID files only.
#
# Usage: .ci/slurm/stop-cluster.sh STATE_DIR [--purge]
#   --purge   also delete STATE_DIR (its logs are gone then)
# A PID is signalled only if it still names the expected program (/proc/PID/comm), so a recycled PID of
# an unrelated process is never hit. Jobs still in the queue are cancelled first (scancel on this
# cluster's own configuration), so that no slurmstepd outlives slurmd.
set -uo pipefail

state=${1:?usage: stop-cluster.sh STATE_DIR [--purge]}
purge=${2:-}
log() { echo "stop-cluster: $*" >&2; }

[ -d "$state/pids" ] || { log "$state has no pids/ folder: nothing to stop"; exit 0; }

alive() { # pid expected-comm
    [ -n "$1" ] && [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

stop_one() { # name
    local name=$1 file="$state/pids/$1.pid" pid
    [ -s "$file" ] || return 0
    pid=$(tr -dc '0-9' <"$file")
    if alive "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do
            alive "$pid" "$name" || break
            sleep 0.1
        done
        if alive "$pid" "$name"; then
            log "$name ($pid) did not stop after 10s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name ($pid)"
    else
        log "$name ($pid) not running"
    fi
    rm -f "$file"
}

if [ -f "$state/slurm.conf" ] && [ -s "$state/pids/slurmctld.pid" ] \
    && alive "$(tr -dc '0-9' <"$state/pids/slurmctld.pid")" slurmctld; then
    jobs=$(SLURM_CONF="$state/slurm.conf" timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        log "cancelling leftover jobs: $(echo $jobs)"
        # shellcheck disable=SC2086
        SLURM_CONF="$state/slurm.conf" timeout 10 scancel $jobs 2>/dev/null || true
        sleep 2
    fi
fi

# slurmd first (it reports to slurmctld), munged last (both authenticate through it).
stop_one slurmd
stop_one slurmctld
stop_one munged

# slurmd (configless) links /run/slurm/conf to its config cache: drop the link if it is ours.
if [ -L /run/slurm/conf ] && [ "$(readlink -f /run/slurm/conf)" = "$(readlink -f "$state/slurmd/conf-cache")" ]; then
    rm -f /run/slurm/conf
    log "removed /run/slurm/conf"
fi

if [ "$purge" = "--purge" ]; then
    rm -rf "$state"
    log "removed $state"
fi
exit 0
