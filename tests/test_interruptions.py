"""Interrupted runs resume. The extraction of a run is interrupted after five of its batches, by Ctrl-C (SIGINT
to snakemake's process group) or by kill -9 of the snakemake process; no process of the run is left, the
plain rerun says that it resumes, computes only the batches that were not finished, and writes the layer
files that an uninterrupted run writes, byte for byte. The job is held after its fifth batch
(tests/pause_at_log_line/), so the interruption lands mid-extraction however fast or loaded the machine is."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import CORES, REPO, THREADS, tiny_config, write_lines

pytestmark = pytest.mark.slow
N_PROMPTS = 10  # per set; batches of one prompt: 20 batches
PAUSED_AFTER = 5  # batches
LOG = Path("results/logs/extract_activations/tiny.log")
# A guard against a hung run, not a speed requirement: minutes beyond what any load makes of seconds.
HANG_GUARD_S = 600


def write_config(workdir: Path, model: Path) -> None:
    config = tiny_config(workdir, model, n_samples=N_PROMPTS, batch_size=1)
    config["datasets"] = {
        name: {"source": write_lines(workdir / "data" / f"{name}.txt", [text.format(i) for i in range(N_PROMPTS)])}
        for name, text in (("harmful", "Explain how to break into house number {} without being noticed"),
                           ("harmless", "Give {} tips for growing tomatoes on a small balcony"))
    }  # fmt: skip
    config.update({key: {"enabled": False} for key in ("behaviour", "interventions", "selection", "export",
                                                       "capability")}, control=None)  # fmt: skip
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
            str(workdir), "--configfile", str(workdir / "config.yaml"), "--replace-workflow-config",
            "--cores", str(CORES), "--max-threads", str(THREADS), *args]  # fmt: skip


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(workdir, *args), capture_output=True, text=True, cwd=workdir)


def layer_hashes(workdir: Path) -> dict:
    return json.loads((workdir / "results/tiny/activations/manifest.json").read_text())["sha256"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_model) -> dict:
    workdir = tmp_path_factory.mktemp("uninterrupted")
    write_config(workdir, tiny_model)
    assert run(workdir).returncode == 0
    return layer_hashes(workdir)


def interrupt_after_a_few_batches(workdir: Path, how: str) -> tuple[int, Path]:
    """Start the run with its extraction held after PAUSED_AFTER batches, interrupt it (``how``) once it is
    held, and return the number of the snakemake process group and the file of what the run prints."""
    output = workdir / "interrupted.txt"
    held = f"extraction: batch {PAUSED_AFTER},"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent / "pause_at_log_line"), "PAUSE_AT_LOG_LINE": held}
    with output.open("w") as sink:
        # Ctrl-C reaches snakemake as from a terminal even when the tests run in the background (a shell
        # starts background commands with SIGINT ignored, and children inherit that).
        process = subprocess.Popen(command(workdir), cwd=workdir, stdout=sink, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
        log, started = workdir / LOG, time.monotonic()
        while not (log.is_file() and held in log.read_text()):
            assert process.poll() is None and time.monotonic() - started < HANG_GUARD_S, output.read_text()[-3000:]
            time.sleep(0.05)
        assert len(re.findall(r"extraction: batch \d+,", log.read_text())) == PAUSED_AFTER  # held mid-extraction
        if how == "ctrl-c":
            os.killpg(process.pid, signal.SIGINT)
        else:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
    return process.pid, output


def no_process_left(group: int) -> bool:
    """Whether no process of the run's process group is left running (as ``ps`` lists them; an exited
    process that its new parent has not reaped yet is not running), waiting for the job to notice."""
    started = time.monotonic()
    while time.monotonic() - started < HANG_GUARD_S:
        listed = subprocess.run(["ps", "-o", "stat=", "--sid", str(group)], capture_output=True, text=True).stdout
        if not [state for state in listed.split() if not state.startswith("Z")]:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_an_interrupted_extraction_resumes_and_writes_the_same_files(tmp_path, tiny_model, uninterrupted, how):
    write_config(tmp_path, tiny_model)
    group, output = interrupt_after_a_few_batches(tmp_path, how)
    assert no_process_left(group), "a process of the interrupted run is still running"  # no orphaned job
    printed = output.read_text()
    assert "Traceback" not in printed
    signal_name = "SIGINT" if how == "ctrl-c" else "SIGTERM"  # kill -9: the job stops itself (workflow/orphan_watch.py)
    lines = [line for line in printed.splitlines() if line.startswith("interrupted")]
    expected = (
        rf"interrupted \({signal_name}\): extract_activations \(model=tiny\): (\d+) finished batches are kept in "
        r"results/resume/extract_activations/model=tiny; the next run resumes from there"
    )
    assert len(lines) == 1 and re.fullmatch(expected, lines[0]), printed[-3000:]
    kept = len(list((tmp_path / "results/resume/extract_activations/model=tiny").glob("batch-*.safetensors")))
    assert kept == PAUSED_AFTER

    if how == "kill -9":  # snakemake could not release its lock: one line says so, and which command removes it
        refused = run(tmp_path)
        assert refused.returncode != 0
        assert [line for line in refused.stderr.splitlines() if "--unlock" in line and line.startswith("note:")]
        assert run(tmp_path, "--unlock").returncode == 0
    resumed = run(tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stdout + resumed.stderr
    assert re.findall(r"note: extract_activations \(model=tiny\) resumes: (\d+) batches", resumed.stderr) == [str(kept)]
    log = (tmp_path / LOG).read_text()
    computed = f"resumed: {kept} of {2 * N_PROMPTS} batches were finished by an earlier run; "
    assert f"{computed}{2 * N_PROMPTS - kept} computed now" in log
    assert layer_hashes(tmp_path) == uninterrupted  # layer files and refusal scores, byte for byte
    assert not (tmp_path / "results/resume").exists()  # a successful run removes what it no longer needs
