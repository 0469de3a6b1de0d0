"""Runs that outgrow one machine, on CPU: a submitit sweep (with a preempted job that is requeued and resumes),
two torchrun "nodes" on the loopback interface, an Optuna sweep that optimises ArtFID, and the SLURM settings."""
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

from tests.conftest import write_image
from tests.e2e.cli import cli_env, free_port, run_cli

HEADER = re.compile(r"Rank (\d+) of (\d+) on node (\S+) \(node rank (\d+), local rank \d+, pid (\d+)\), "
                    r"output folder (\S+?)(?:, W&B group (\S+))?$", re.M)


def inputs(tmp_path: Path, contents: int, styles: int = 1) -> list[str]:
    for i in range(contents):
        write_image(tmp_path / "c" / f"c{i}.png", (64, 64), seed=i)
    for i in range(styles):
        write_image(tmp_path / "s" / f"s{i}.png", (64, 64), seed=20 + i)
    return [f"data.content={tmp_path / 'c'}", f"data.styles={tmp_path / 's'}"]


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (status {proc.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.slow
def test_submitit_sweep_runs_both_jobs_and_a_preempted_job_resumes_without_redoing_outputs(tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "stylex.run", "-m", "experiment=smoke", "logger=none",
               "hydra/launcher=submitit_local", "method.lr=0.03,0.05", "data.batch_size=1", "data.resolution=64",
               "method.num_steps=20", *inputs(tmp_path, 4), f"hydra.sweep.dir={sweep}"]  # outputs ~1 s apart
    proc = subprocess.Popen(command, cwd=tmp_path, env=cli_env({"STYLEX_CACHE": str(tmp_path / "cache")}), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        job0 = sweep / "0"
        wait_for(lambda: list((job0 / "images").glob("*.json")), 300, "job 0's first output", proc)
        pid = int(HEADER.search((job0 / "run.log").read_text()).group(5))
        done_before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (job0 / "images").glob("*.json")}
        # what SLURM does before a preemption or the time limit: submitit's signal to the job's task
        os.kill(pid, signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")])
        out, err = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    names = sorted(f"c{i}__s0" for i in range(4))
    for job, lr in (("0", 0.03), ("1", 0.05)):
        sidecars = {p.stem: json.loads(p.read_text()) for p in (sweep / job / "images").glob("*.json")}
        assert sorted(sidecars) == names, job
        assert all((sweep / job / "images" / f"{n}.png").is_file() and s["lr"] == lr for n, s in sidecars.items())
    log0 = (job0 / "run.log").read_text()
    starts = [m for m in HEADER.finditer(log0)]
    assert len(starts) == 2 and starts[0].group(5) != starts[1].group(5), log0[-2000:]  # requeued: a new process
    assert all(m.group(6) == str(job0.resolve()) for m in starts)
    resumed = re.search(r"Resuming: (\d+) of 4 outputs are already done", log0)
    assert resumed and len(done_before) <= int(resumed.group(1)) < 4, log0[-2000:]  # stopped between outputs
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (job0 / "images").glob("*.json")}
    assert {n: after[n] for n in done_before} == done_before  # finished outputs were not written again
    submitit_logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.out"))
    assert "Requeued job" in submitit_logs  # the requeue went through submitit's checkpoint/requeue


@pytest.mark.slow
def test_two_torchrun_nodes_shard_the_items_disjointly_and_log_one_wandb_group(tmp_path):
    out, port = tmp_path / "run", free_port()
    overrides = ["experiment=smoke", "trainer=ddp", "trainer.accelerator=cpu", "trainer.num_nodes=2",
                 "data.batch_size=1", "data.resolution=64", *inputs(tmp_path, 5), f"hydra.run.dir={out}"]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={rank}",
                               "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
                               "-m", "stylex.run", *overrides],
                              cwd=tmp_path, env=cli_env({"STYLEX_CACHE": str(tmp_path / "cache")}), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for rank in (0, 1)]
    try:
        results = [node.communicate(timeout=400) for node in nodes]
    finally:
        for node in nodes:
            if node.poll() is None:
                node.kill()
    for node, (_, err) in zip(nodes, results):
        assert node.returncode == 0, err[-3000:]
    sidecars = [json.loads(p.read_text()) for p in (out / "images").glob("*.json")]
    assert sorted(s["name"] for s in sidecars) == [f"c{i}__s0" for i in range(5)]  # complete
    assert {s["rank"] for s in sidecars} == {0, 1}
    logs = {rank: (out / name).read_text() for rank, name in ((0, "run.log"), (1, "run.rank1.log"))}
    writes = {}
    for rank, text in logs.items():
        (header,) = HEADER.findall(text)  # each rank logs to its own file, naming node, rank and folder
        assert (header[0], header[1], header[3], header[5]) == (str(rank), "2", str(rank), str(out.resolve()))
        writes[rank] = int(re.search(rf"Rank {rank} wrote (\d+) output", text).group(1))
    assert sum(writes.values()) == 5 and all(writes.values())  # disjoint shards: 5 outputs, each written once
    groups = {HEADER.search(text).group(7) for text in logs.values()}
    assert groups == {"smoke-run"}  # every rank names the same W&B group
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # one W&B run (rank 0's), in that group, with the overrides as config
    record = next(runs[0].glob("*.wandb")).read_bytes()
    assert b"smoke-run" in record and b"trainer.num_nodes=2" in record


@pytest.mark.slow
def test_optuna_sweep_records_one_artfid_per_trial_and_picks_the_best(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("stylex.run", "-m", "experiment=gallery", "debug=smoke", "hparams_search=gallery_optuna",
                     "hydra.sweeper.n_trials=3", "logger=none", "data.resolution=64", "method.num_steps=2",
                     "method.regions.n_init=2", *inputs(tmp_path, 2, 2),
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [p.name for p in trials] == ["0", "1", "2"]
    values = {}
    for trial in trials:
        objective = json.loads((trial / "objective.json").read_text())
        summary = (trial / "evaluation" / "summary.csv").read_text().splitlines()
        column = summary[0].split(",").index("artfid")
        assert objective["metric"] == "artfid" and not objective["higher_is_better"]
        assert float(summary[1].split(",")[column]) == pytest.approx(objective["value"])  # stylex.evaluate's number
        assert len(list((trial / "images").glob("*.json"))) == 4  # the 2 x 2 validation set, one output per pair
        overrides = yaml.safe_load((trial / ".hydra" / "overrides.yaml").read_text())
        values[trial.name] = (objective["value"], dict(o.split("=", 1) for o in overrides))
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    searched = {"method.content_weight", "method.lr", "method.matching.w_stat", "method.matching.w_geo"}
    assert set(best["best_params"]) == searched
    value, chosen = min(values.values(), key=lambda v: v[0])  # ArtFID: lower is better
    assert best["best_value"] == pytest.approx(value)
    assert best["best_params"] == pytest.approx({k: float(chosen[k]) for k in searched})
    assert len({v for v, _ in values.values()}) == 3  # three trials, three settings, three values


def test_the_objective_is_the_number_stylex_evaluate_reports(tmp_path):
    """A run's objective and `python -m stylex.evaluate` on the same folder give the same ArtFID."""
    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers
    from stylex.pipeline.objective import Objective

    data = inputs(tmp_path, 2, 2)
    for i in range(2):
        for j in range(2):
            write_image(tmp_path / "run" / "images" / f"c{i}__s{j}.png", (64, 64), seed=100 + 2 * i + j)
    register_resolvers()
    with initialize_config_dir(str(Path(__file__).parents[2] / "configs"), version_base="1.3"):
        cfg = compose("run", overrides=["experiment=gallery", "debug=smoke", "hparams_search=gallery_optuna", *data])
    value = Objective.from_config(cfg).evaluate(cfg, tmp_path / "run")  # outside a Hydra app: composes its own
    assert json.loads((tmp_path / "run" / "objective.json").read_text())["value"] == value
    result = run_cli("stylex.evaluate", f"outputs={tmp_path / 'run'}", f"contents={tmp_path / 'c'}",
                     f"styles={tmp_path / 's'}", "debug=smoke", "logger=none", "metrics.names=[artfid]",
                     f"results_dir={tmp_path / 'eval'}", f"hydra.run.dir={tmp_path / 'eval_run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    header, row = (tmp_path / "eval" / "summary.csv").read_text().splitlines()[:2]
    assert float(row.split(",")[header.split(",").index("artfid")]) == pytest.approx(value, rel=1e-6)


def test_a_sweep_that_optimises_a_metric_the_wrong_way_stops_before_any_work(tmp_path):
    result = run_cli("stylex.run", "-m", "experiment=gallery", "debug=smoke", "hparams_search=gallery_optuna",
                     "objective.metric=clip_t", "hydra.sweeper.n_trials=1", "logger=none", *inputs(tmp_path, 2, 2),
                     f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert result.returncode == 2
    assert "hydra.sweeper.direction=maximize" in result.stderr and "Traceback" not in result.stderr
    assert not list((tmp_path / "sweep").rglob("*.png"))
