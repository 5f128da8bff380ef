#!/usr/bin/env bash
# Run the default workflow locally (or take a finished local run of it) and through SLURM with profiles/slurm,
# and prove that
#   (1) every non-local job was submitted with sbatch and got a SLURM job id,
#   (2) the jobs that run the model (the rules profiles/slurm sends to the gpu partition: the only ones with
#       gpu=1) were submitted with --gpus=1 to the gpu partition, and no other job asks for a GPU,
#   (3) the statistics tables of both runs are byte-identical,
#   (4) a job that hits its time limit (the extraction, whose limit is cut to one second once it has finished
#       a few batches) is submitted again, continues from the batches it kept, and writes the same layer files.
#
# Usage: .ci/slurm/run-workflow.sh REPO [STATE_DIR]
#   REPO        repository root (with .venv)
#   STATE_DIR   the state directory printed by start-cluster.sh; without it SLURM_CONF must be set
# Environment (optional):
#   SLURM_CI_LOCAL_RUN     a finished local run to compare with instead of making one: its work dir, holding
#                          config.yaml (the SLURM run uses that config) and Snakemake's log of the run in
#                          .snakemake/log/ (CI: the test suite's run of the shipped config, tests/conftest.py)
#   SLURM_CI_WORK          folder for the work dirs and the logs       [mktemp -d ${TMPDIR:-/tmp}/rd-slurm-ci.XXXXXX]
#   SLURM_CI_CORES         cores of the local run                      [2]
#   SLURM_CI_INIT_SECONDS  --slurm-init-seconds-before-status-checks    [5]
#   SLURM_CI_RUN_TIMEOUT   seconds allowed for each of the two runs     [1800]
# Exit status: 0 when (1)-(3) hold, non-zero otherwise. Work dirs and logs are kept (path printed).
set -euo pipefail

repo=$(cd "${1:?usage: run-workflow.sh REPO [STATE_DIR]}" && pwd)
state=${2:-}
if [ -n "$state" ]; then
    export SLURM_CONF="$state/slurm.conf"
fi
[ -n "${SLURM_CONF:-}" ] && [ -f "$SLURM_CONF" ] || { echo "run-workflow: error: SLURM_CONF not set or missing" >&2; exit 2; }
state=${state:-$(dirname "$SLURM_CONF")}

snakemake=$repo/.venv/bin/snakemake
python=$repo/.venv/bin/python
cores=${SLURM_CI_CORES:-2}
init_seconds=${SLURM_CI_INIT_SECONDS:-5}
run_timeout=${SLURM_CI_RUN_TIMEOUT:-1800}
work=${SLURM_CI_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/rd-slurm-ci.XXXXXX")}
mkdir -p "$work"
work=$(cd "$work" && pwd)
local_dir=${SLURM_CI_LOCAL_RUN:-$work/local}
slurm_dir=$work/slurm
configfile=$repo/config/config.yaml
if [ -n "${SLURM_CI_LOCAL_RUN:-}" ]; then
    configfile=$local_dir/config.yaml
    [ -f "$configfile" ] || { echo "run-workflow: error: $configfile is missing (SLURM_CI_LOCAL_RUN)" >&2; exit 2; }
fi
export HF_HUB_OFFLINE=1

say() { echo "run-workflow: $*"; }
now() { date +%s; }

dirs=("$slurm_dir")
[ -n "${SLURM_CI_LOCAL_RUN:-}" ] || dirs+=("$local_dir")
for d in "${dirs[@]}"; do
    rm -rf "$d"
    mkdir -p "$d"
    # The config's dataset paths (data/harmful.txt, ...) are relative to the work dir.
    cp -a "$repo/data" "$d/data"
done
say "work dir: $work"
say "$("$snakemake" --version | sed 's/^/snakemake /'), $("$python" -m pip show snakemake-executor-plugin-slurm 2>/dev/null | sed -n 's/^Version: /snakemake-executor-plugin-slurm /p'), $(sinfo --version)"

# --- (a) local run --------------------------------------------------------------------------------
t0=$(now)
if [ -n "${SLURM_CI_LOCAL_RUN:-}" ]; then
    # The first log Snakemake kept in the finished run's folder is the run's own (later dry runs add none).
    run_log=$(find "$local_dir/.snakemake/log" -name '*.snakemake.log' | sort | head -n 1)
    [ -n "$run_log" ] || { say "FAIL: no Snakemake log in $local_dir/.snakemake/log"; exit 1; }
    cp "$run_log" "$work/local.log"
    say "local run: the finished run in $local_dir (log: $run_log), config $configfile"
else
    say "local run -> $local_dir (log: $work/local.log)"
    (
        cd "$local_dir"
        timeout "$run_timeout" "$snakemake" --snakefile "$repo/Snakefile" --directory "$local_dir" \
            --configfile "$configfile" --cores "$cores"
    ) >"$work/local.log" 2>&1 || { tail -n 40 "$work/local.log"; say "FAIL: local run failed"; exit 1; }
fi
t1=$(now)
say "local run done in $((t1 - t0))s"

# --- (b) SLURM run --------------------------------------------------------------------------------
# Record what SLURM itself holds about every job while the run lasts (finished jobs stay visible for
# MinJobAge seconds, far longer than this polling interval).
squeue_log=$work/squeue.log
: >"$squeue_log"
(
    while :; do
        squeue --states=all -h -O "JobID:|,Partition:|,tres-per-job:|,State:|,Comment:" >>"$squeue_log" 2>/dev/null || true
        sleep 2
    done
) &
poller=$!
trap 'kill "$poller" 2>/dev/null || true' EXIT

# The jobs that run the model: those the profile sends to the gpu partition. A CLI --set-resources replaces
# the profile's whole set-resources block, so it is rebuilt from the profile: the same partitions, and the
# model jobs' memory and CPUs fitted to the CI node (2 cores, ~21 GB).
mapfile -t model_rules < <("$python" -c '
import sys, yaml
blocks = yaml.safe_load(open(sys.argv[1]))["set-resources"]
print("\n".join(rule for rule, resources in blocks.items() if resources.get("slurm_partition") == "gpu"))
' "$repo/profiles/slurm/profile.yaml")
[ "${#model_rules[@]}" -gt 0 ] || { say "FAIL: no rule of profiles/slurm/profile.yaml is sent to the gpu partition"; exit 1; }
set_resources=()
set_threads=()
for rule in "${model_rules[@]}"; do
    set_resources+=("$rule:slurm_partition=gpu" "$rule:mem_mb=8000")
    set_threads+=("$rule=2")
done
say "model jobs (gpu partition): ${model_rules[*]}"

slurm_args=(
    --profile "$repo/profiles/slurm"
    # No slurmdbd here: sacct does not work, so poll with squeue (MinJobAge >= 3x the first interval).
    --slurm-status-command squeue
    --slurm-init-seconds-before-status-checks "$init_seconds"
    # The jobs here take seconds: the default round of status checks every 10 s would be most of the run.
    --seconds-between-status-checks 2
    --set-resources "${set_resources[@]}"
    --set-threads "${set_threads[@]}"
    # The sbatch command lines are logged only at debug level.
    --verbose
)
# (4) A job that hits its time limit: once the SLURM run's extraction has finished two batches, its process is
# paused (SIGSTOP) and its time limit cut to one second. slurmctld checks time limits every 30 s, so without the
# pause a fast machine could finish the extraction first; paused, the job is still mid-extraction when the check
# ends it (TIMEOUT: SIGCONT and SIGTERM, so the job stops itself and keeps its finished batches). Snakemake
# submits it once more (retries: 1 in profiles/slurm), and the new job continues from those batches.
model=$("$python" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["models"][0]["slug"])' "$configfile")
extraction_log=$slurm_dir/results/logs/extract_activations/$model.log
(
    until grep -q "extraction: batch 2," "$extraction_log" 2>/dev/null; do sleep 0.1; done
    job_pids=$(pgrep -f "$slurm_dir/.snakemake/scripts/.*extract_activations.py" || true)
    [ -n "$job_pids" ] && kill -STOP $job_pids
    sid=$(squeue -h --states=RUNNING -O "JobID:|,Comment:" | awk -F'|' '/rule_extract_activations/ { gsub(/ /, "", $1); print $1; exit }')
    scontrol update JobId="$sid" TimeLimit=0:01 && echo "$sid" >"$work/timed-out-job"
    say "SLURM job $sid (extract_activations) paused after two batches (pids $job_pids), its time limit cut to one second"
    until [ -z "$(squeue -h -j "$sid" --states=RUNNING -o %i 2>/dev/null)" ]; do sleep 1; done
    [ -n "$job_pids" ] && kill -CONT $job_pids 2>/dev/null
    say "SLURM job $sid: $(squeue -h -j "$sid" --states=all -o %T 2>/dev/null)"
) &
cutter=$!
trap 'kill "$poller" "$cutter" 2>/dev/null || true' EXIT
say "SLURM run -> $slurm_dir (log: $work/slurm.log)"
say "  snakemake --snakefile $repo/Snakefile --directory $slurm_dir --configfile $configfile --replace-workflow-config ${slurm_args[*]}"
set +e
(
    # Started from the work dir: the plugin puts its logs and the jobs' working directory (sbatch -D)
    # under the directory snakemake is started from, not under --directory.
    cd "$slurm_dir"
    timeout "$run_timeout" "$snakemake" --snakefile "$repo/Snakefile" --directory "$slurm_dir" \
        --configfile "$configfile" --replace-workflow-config "${slurm_args[@]}"
) 2>&1 | tee "$work/slurm.log" | grep --line-buffered -E "submitted with SLURM jobid|steps \([0-9]+%\) done|Error|error:" | sed -u 's/^/  | /'
slurm_rc=${PIPESTATUS[0]}
set -e
t2=$(now)
sleep 3   # one more squeue snapshot after the last job
kill "$poller" "$cutter" 2>/dev/null || true
wait "$poller" "$cutter" 2>/dev/null || true
trap - EXIT
# Last state of each job as slurmctld reported it.
awk -F'|' '{ last[$1] = $0 } END { for (j in last) print last[j] }' "$squeue_log" | sort -n >"$work/squeue-final.log"
say "SLURM run finished in $((t2 - t1))s with exit status $slurm_rc"
if [ "$slurm_rc" -ne 0 ]; then
    grep -v "^DEBUG\|^\s*$" "$work/slurm.log" | tail -n 60
    say "FAIL: SLURM run failed"
    exit 1
fi

# --- (c) checks -----------------------------------------------------------------------------------
say "checks"
set +e
"$python" - "$work" "$local_dir" "$slurm_dir" "$state" "$configfile" "${model_rules[*]}" <<'PY'
import json
import re
import sys
from collections import Counter
from filecmp import cmp
from pathlib import Path

import yaml

work, local_dir, slurm_dir, state, configfile = map(Path, sys.argv[1:6])
model_rules = tuple(sys.argv[6].split())
log = (work / "slurm.log").read_text(errors="replace")
local_log = (work / "local.log").read_text(errors="replace")
failures = []


def check(ok, message):
    print(("  ok    " if ok else "  FAIL  ") + message)
    if not ok:
        failures.append(message)


def jobs_of(text):
    """(kind, rule, snakemake jobid) of every job block that the run's own snakemake printed in its log. The
    plugin also shows a failed job's SLURM log (the job that hit its time limit), whose job step snakemake
    prints its own block (jobid 0, "reason: Forced execution": it runs with --force): not a job of the run."""
    pattern = re.compile(r"^(localrule|localcheckpoint|rule|checkpoint) (\w+):\n((?:    .*\n)*)", re.M)
    jobs = []
    for m in pattern.finditer(text):
        jobid = re.search(r"^    jobid: (\d+)$", m[3], re.M)
        if jobid and "    reason: Forced execution" not in m[3]:
            jobs.append((m[1], m[2], int(jobid[1])))
    return jobs


jobs = jobs_of(log)
remote = {jobid: rule for kind, rule, jobid in jobs if not kind.startswith("local")}
local_only = sorted({rule for kind, rule, _ in jobs if kind.startswith("local")})
submissions = [(int(m[1]), m[2]) for m in re.finditer(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: ", log)]
submitted = dict(submissions)  # a job submitted twice (after its time limit): the last submission
timed_out_file = work / "timed-out-job"
timed_out = timed_out_file.read_text().strip() if timed_out_file.exists() else None

print("(1) every non-local job was submitted with sbatch and got a SLURM job id")
for line in re.findall(r"^.*Job \d+ has been submitted with SLURM jobid.*$", log, re.M)[:3]:
    print("      " + line)
print("      ...")
print(f"      local rules (run on the submitting host, no sbatch): {', '.join(local_only)}")
missing = sorted(set(remote) - set(submitted))
check(not missing and len(remote) > 0,
      f"{len(submitted)} of {len(remote)} non-local jobs have a SLURM job id"
      + (f"; missing: {[(j, remote[j]) for j in missing]}" if missing else ""))
slurm_ids = [sid for _, sid in submissions]
check(len(set(slurm_ids)) == len(slurm_ids), f"{len(set(slurm_ids))} distinct SLURM job ids "
      f"({min(map(int, slurm_ids))}..{max(map(int, slurm_ids))})")
per_rule = Counter(remote[j] for j in submitted if j in remote)
print("      per rule: " + ", ".join(f"{rule} {n}" for rule, n in sorted(per_rule.items())))
local_counts = Counter(rule for rule, _ in {(rule, jobid) for _, rule, jobid in jobs_of(local_log)})
slurm_counts = Counter(rule for rule, _ in {(rule, jobid) for _, rule, jobid in jobs})  # a resubmission is one job
check(local_counts == slurm_counts,
      f"same jobs as the local run ({sum(local_counts.values())} local, {sum(slurm_counts.values())} via SLURM run)")
sbatch_calls = re.findall(r"sbatch call: (sbatch .*)", log)
check(len(sbatch_calls) == len(submissions), f"{len(sbatch_calls)} sbatch calls logged for {len(submissions)} submissions")

# SLURM's own view: the squeue snapshots taken during the run (and jobcomp, if configured).
seen = {}
for line in (work / "squeue-final.log").read_text().splitlines():
    parts = line.split("|")
    if len(parts) >= 4:
        seen[parts[0].strip()] = [p.strip() for p in parts]
not_seen = [i for i in slurm_ids if i not in seen]
not_done = {i: seen[i][3] for i in slurm_ids if i in seen and seen[i][3] != "COMPLETED" and i != timed_out}
check(not not_seen and not not_done,
      f"slurmctld lists all {len(slurm_ids)} jobs as COMPLETED (squeue --states=all), but the one whose time "
      "limit was cut"
      + (f"; not seen: {not_seen}" if not_seen else "") + (f"; not completed: {not_done}" if not_done else ""))
jobcomp = state / "log" / "jobcomp.log"
if jobcomp.exists():
    records = {m[1]: m[2] for m in re.finditer(r"JobId=(\d+) .*?JobState=(\w+)", jobcomp.read_text())}
    bad = {i: records.get(i) for i in slurm_ids if records.get(i) != ("TIMEOUT" if i == timed_out else "COMPLETED")}
    check(not bad, f"jobcomp record COMPLETED for all {len(slurm_ids)} jobs, TIMEOUT for {timed_out} ({jobcomp})"
          + (f"; not: {bad}" if bad else ""))

print("(2) the jobs that run the model were submitted with --gpus=1 to the gpu partition")
model_jobs = [j for j, rule in remote.items() if rule in model_rules]
check(sum(remote[j] == "extract_activations" for j in model_jobs) == 1,
      f"one extract_activations job; model jobs {sorted(remote[j] for j in model_jobs)} (SLURM jobs "
      f"{[submitted.get(j) for j in model_jobs]})")
model_calls = [c for c in sbatch_calls if any(f"--comment rule_{rule}_" in c for rule in model_rules)]
check(len(model_calls) == len(model_jobs) + 1,
      f"one sbatch call per model job, and one more for the extraction after its time limit ({len(model_calls)})")
for call in model_calls:
    head = call.split(" --wrap=")[0]
    print("      sbatch call: " + head + " --wrap=...")
    check(re.search(r"(^| )--gpus=1( |$)", head) is not None, "its sbatch call contains --gpus=1")
    check(re.search(r"(^| )-p gpu( |$)", head) is not None, "its sbatch call contains -p gpu")
others = [c for c in sbatch_calls if c not in model_calls and "--gpus" in c.split(" --wrap=")[0]]
check(not others, f"no other sbatch call asks for a GPU ({len(sbatch_calls) - len(model_calls)} calls)")
for j in model_jobs:
    sid = submitted.get(j)
    row = seen.get(sid)
    if row:
        print("      squeue: JobID|Partition|tres-per-job|State|Comment = " + "|".join(row[:5]))
    check(row is not None and row[1] == "gpu" and row[2] == "gres:gpu:1",
          f"slurmctld holds SLURM job {sid} in partition gpu with TresPerJob=gres:gpu:1")

print("(3) statistics tables identical to the local run")
models = [m["slug"] for m in yaml.safe_load(configfile.read_text())["models"]]
check(len(models) > 0, f"models in the config: {', '.join(models)}")
for model in models:
    base_l, base_s = local_dir / "results" / model, slurm_dir / "results" / model
    layers_l = sorted(p.name for p in (base_l / "layers").glob("layer_*.json"))
    layers_s = sorted(p.name for p in (base_s / "layers").glob("layer_*.json"))
    check(layers_l == layers_s and len(layers_l) > 0,
          f"{model}: same layer files: {len(layers_l)} local, {len(layers_s)} via SLURM")
    names = ["validation_results.csv", "top10_layers.csv"] + [f"layers/{n}" for n in layers_l]
    differ = [n for n in names
              if not (base_l / n).exists() or not (base_s / n).exists()
              or not cmp(base_l / n, base_s / n, shallow=False)]
    for n in names[:3]:
        print(f"      cmp {base_l / n} {base_s / n}")
    print(f"      ... and {len(names) - 3} more")
    check(not differ, f"{model}: {len(names) - len(differ)} of {len(names)} tables byte-identical"
          + (f"; differ: {differ}" if differ else ""))
    extra = ["summary.json", "directions.safetensors", "validated_directions.pkl", "report.md"]
    same = [n for n in extra if (base_l / n).exists() and (base_s / n).exists()
            and cmp(base_l / n, base_s / n, shallow=False)]
    print(f"      (for information, also identical: {', '.join(same) or 'none'};"
          f" different: {', '.join(sorted(set(extra) - set(same))) or 'none'})")

print("(4) a job that hit its time limit was submitted again and continued from its finished batches")
row = seen.get(timed_out)
check(row is not None and row[3] == "TIMEOUT" and "rule_extract_activations" in row[4],
      f"SLURM job {timed_out} (extract_activations) ended with TIMEOUT: " + ("|".join(row[:5]) if row else "not seen"))
extraction_log = (slurm_dir / "results" / "logs" / "extract_activations" / f"{models[0]}.log").read_text()
resumed = re.search(r"resumed: (\d+) of (\d+) batches were finished by an earlier run; (\d+) computed now", extraction_log)
check(resumed is not None and int(resumed[1]) > 0,
      f"the resubmitted job resumed: {resumed[0] if resumed else 'no resume line in its log'}")
manifests = [json.loads((d / "results" / models[0] / "activations" / "manifest.json").read_text())["sha256"]
             for d in (local_dir, slurm_dir)]
check(manifests[0] == manifests[1], f"{len(manifests[0])} activation files byte-identical to the local run's")

if failures:
    print(f"FAILED: {len(failures)} check(s)")
    sys.exit(1)
print("all checks passed")
PY
rc=$?
set -e
t3=$(now)
say "timings: local run $((t1 - t0))s, SLURM run $((t2 - t1))s, checks $((t3 - t2))s"
exit $rc
