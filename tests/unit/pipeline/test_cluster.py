"""Cluster settings without a cluster: the SLURM launcher config as sbatch receives it, srun / torchrun
environments as Lightning reads them, trainer checks, W&B grouping, and the sweep objective's checks."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from stylex.pipeline import cluster
from stylex.data.samples import register_resolvers
from stylex.errors import ConfigError

CONFIGS = str(Path(__file__).parents[3] / "configs")

SRUN = {"SLURM_NTASKS": "8", "SLURM_NTASKS_PER_NODE": "4", "SLURM_NNODES": "2", "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_JOB_NAME": "run", "SLURM_JOB_ID": "4242",
        "SLURM_NODELIST": "gpu[07-08]"}
TORCHRUN = {"TORCHELASTIC_RUN_ID": "none", "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
            "GROUP_RANK": "1", "GROUP_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
LAUNCH_VARIABLES = [*SRUN, *TORCHRUN, "SLURM_TASKS_PER_NODE", "SLURM_STEP_ID", "SLURM_ARRAY_JOB_ID"]


def compose_run(*overrides: str, hydra: bool = False):
    register_resolvers()
    cluster.register_resolvers()
    with initialize_config_dir(CONFIGS, version_base="1.3"):
        return compose("run", overrides=list(overrides), return_hydra_config=hydra)


@pytest.fixture
def clean_env(monkeypatch):
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def hydra_job():
    """Installs a composed config as the running Hydra job's (as @hydra.main does), after setting `hydra.<key>`
    values; removed afterwards."""
    def install(cfg, **hydra_values):
        OmegaConf.set_readonly(cfg.hydra, False)
        with open_dict(cfg):
            for key, value in hydra_values.items():
                OmegaConf.update(cfg.hydra, key, value, force_add=True)
        HydraConfig.instance().set_config(cfg)
        return cfg

    yield install
    HydraConfig.instance().cfg = None


def test_submitit_slurm_settings_reach_sbatch(tmp_path, monkeypatch):
    """The whole recipe: `hydra/launcher=submitit_slurm` plus settings; the sbatch script submitit would submit
    carries them, with one task per GPU and nodes following trainer.num_nodes."""
    import submitit
    from hydra.utils import instantiate

    cfg = compose_run("hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.num_nodes=2",
                      "hydra.launcher.partition=gpu", "hydra.launcher.account=lab", "hydra.launcher.gpus_per_node=4",
                      "hydra.launcher.exclude='gpu[01-02]'", "hydra.launcher.timeout_min=600",
                      f"hydra.sweep.dir={tmp_path / 'sweep'}", hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.gpus_per_node, launcher.tasks_per_node) == (2, 4, 4)
    assert (launcher.partition, launcher.account, launcher.exclude) == ("gpu", "lab", "gpu[01-02]")
    assert (launcher.timeout_min, launcher.mem_gb, launcher.cpus_per_task, launcher.max_num_timeout) == (600, 64, 8, 3)

    executors = []

    def capture(self, fn, *iterable):  # what the plugin hands to submitit, instead of calling sbatch
        executors.append(self)
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", capture)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun is installed"
    plugin = instantiate(launcher)
    plugin.config = cfg
    plugin.launch([["method.lr=0.03"]], initial_job_idx=0)
    script = executors[0]._executor._make_submission_file_text("python -m stylex.run", "uid")
    for line in ("--partition=gpu", "--account=lab", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4",
                 "--exclude='gpu[01-02]'", "--time=600", "--mem=64GB", "--cpus-per-task=8", "--signal=USR2@120"):
        assert f"#SBATCH {line}\n" in script, line
    assert executors[0]._executor.max_num_timeout == 3  # timeouts requeue (preemptions always do)


def test_submitit_local_is_a_choice_with_the_local_launcher():
    cfg = compose_run("hydra/launcher=submitit_local", hydra=True)
    assert cfg.hydra.launcher._target_.endswith("LocalLauncher") and cfg.hydra.launcher.tasks_per_node == 1


def test_srun_environment_gives_lightning_ranks_and_fills_devices(clean_env):
    import lightning as L
    from lightning.fabric.plugins.environments import SLURMEnvironment

    for key, value in SRUN.items():
        clean_env.setenv(key, value)
    launch = cluster.detect_launch()
    assert (launch.launcher, launch.nodes, launch.per_node) == ("srun", 2, 4)
    assert isinstance(launch.environment, SLURMEnvironment) and not launch.environment.auto_requeue
    assert cluster.rank_suffix() == ".rank5"
    trainer_cfg = compose_run("trainer=ddp", "trainer.num_nodes=2", "trainer.accelerator=cpu").trainer
    cluster.fit_trainer_to_launch(trainer_cfg, launch)
    assert trainer_cfg.devices == 4  # devices: -1 (all visible) became the tasks srun started per node
    trainer = L.Trainer(accelerator="cpu", devices=trainer_cfg.devices, num_nodes=2, strategy="ddp",
                        plugins=[launch.environment], logger=False)
    assert (trainer.global_rank, trainer.world_size, trainer.node_rank, trainer.local_rank) == (5, 8, 1, 1)
    assert launch.environment.main_address == "gpu07"


def test_torchrun_inside_a_slurm_allocation_takes_torchruns_ranks(clean_env):
    from lightning.fabric.plugins.environments import TorchElasticEnvironment

    for key, value in {**SRUN, "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", **TORCHRUN}.items():
        clean_env.setenv(key, value)
    launch = cluster.detect_launch()
    assert (launch.launcher, launch.nodes, launch.per_node) == ("torchrun", 2, 1)
    assert isinstance(launch.environment, TorchElasticEnvironment) and cluster.rank_suffix() == ".rank1"


def test_trainer_settings_that_disagree_with_the_launch_are_config_errors(clean_env):
    launch = cluster.Launch("torchrun", nodes=2, per_node=1, environment=None)
    trainer_cfg = compose_run("trainer=ddp", "trainer.accelerator=cpu").trainer
    with pytest.raises(ConfigError, match=r"trainer.num_nodes=2"):
        cluster.fit_trainer_to_launch(trainer_cfg, launch)  # num_nodes left at 1
    trainer_cfg.num_nodes, trainer_cfg.devices = 2, 3
    with pytest.raises(ConfigError, match=r"trainer.devices=1"):
        cluster.fit_trainer_to_launch(trainer_cfg, launch)


def test_no_launcher_means_no_launch_and_rank_zero_log_names(clean_env):
    assert cluster.detect_launch() is None and cluster.rank_suffix() == ""
    cfg = compose_run(hydra=True)
    handlers = OmegaConf.to_container(cfg.hydra.job_logging.handlers, resolve=False)
    assert handlers["file"]["filename"].endswith("${hydra.job.name}${stylex_rank_suffix:}.log")


def test_wandb_runs_of_a_sweep_share_a_group_and_are_named_by_job(tmp_path, hydra_job):
    from hydra.types import RunMode

    from stylex.pipeline import group_wandb_runs, run_record

    cfg = compose_run("experiment=smoke", "method.lr=0.03", hydra=True)
    hydra_job(cfg, mode=RunMode.MULTIRUN, **{"job.num": 3, "sweep.dir": str(tmp_path / "sw"),
                                             "overrides.task": ["experiment=smoke", "method.lr=0.03"]})
    run = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    assert group_wandb_runs(run) == "smoke-sw"
    assert run.logger.wandb.name == "smoke-3"
    assert run_record(run, "abc")["overrides"] == ["experiment=smoke", "method.lr=0.03"]
    hydra_job(cfg, mode=RunMode.RUN, **{"run.dir": str(tmp_path / "my_run")})
    single = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    assert group_wandb_runs(single) == "smoke-my_run" and single.logger.wandb.name == "smoke"


def test_the_objective_must_be_a_metric_and_fit_the_sweep_direction(hydra_job):
    from stylex.pipeline.objective import Objective

    plain = compose_run("experiment=gallery")
    assert Objective.from_config(plain) is None  # no objective, no sweep: nothing to evaluate
    cfg = hydra_job(compose_run("experiment=gallery", "hparams_search=gallery_optuna", hydra=True))
    assert Objective.from_config(cfg).metric == "artfid"
    assert cfg.data.pairing == "product" and cfg.hydra.sweeper.direction == "minimize"
    cfg.objective.metric = "clip_t"  # higher is better, swept with direction=minimize
    with pytest.raises(ConfigError, match="hydra.sweeper.direction=maximize"):
        Objective.from_config(cfg)
    hydra_job(cfg, **{"sweeper.direction": "maximize"})
    assert Objective.from_config(cfg).higher_is_better
    cfg.objective.metric = "sharpness"
    with pytest.raises(ConfigError, match="artfid"):
        Objective.from_config(cfg)
    with pytest.raises(ConfigError, match="objective.metric"):
        Objective.from_config(plain)  # an Optuna trial must return a number


class FakeStrategy:
    def __init__(self, rank0_value):
        self.rank0_value = rank0_value

    def broadcast(self, obj, src=0):
        return self.rank0_value


class FakeDataModule:
    def __init__(self, items):
        self.items = items

    def prepare_items(self):
        return self.items


def fake_rank(monkeypatch, rank: int, others: list[tuple], rank0_items: list, own_items: list):
    """A trainer as rank `rank` of a 2-rank run sees it, with what the other rank contributes."""
    import types

    import torch.distributed as dist

    def all_gather_object(out, obj):
        facts = sorted([obj, *others], key=lambda f: f[1])
        out[:] = facts

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    return types.SimpleNamespace(global_rank=rank, world_size=2, node_rank=rank, local_rank=0,
                                 strategy=FakeStrategy(rank0_items), datamodule=FakeDataModule(own_items))


def test_every_rank_takes_rank_zeros_items_and_refuses_other_folders_or_configs(tmp_path, monkeypatch, caplog):
    import logging

    from stylex.callbacks.ranks import SharedRun

    out = str(tmp_path.resolve())
    trainer = fake_rank(monkeypatch, 1, [("node-a", 0, out, "hash")], rank0_items=["a", "b", "c"],
                        own_items=["c"])  # this node listed later, after rank 0 had written a and b
    with caplog.at_level(logging.INFO, logger="stylex.callbacks.ranks"):
        SharedRun(tmp_path, "hash", "smoke-run").setup(trainer, None, "predict")
    assert trainer.datamodule.items == ["a", "b", "c"]  # one list for all ranks: shards disjoint and complete
    assert re.search(r"Rank 1 of 2 on node \S+ \(node rank 1, local rank 0, pid \d+\), output folder .*, W&B group "
                     r"smoke-run", caplog.text)
    elsewhere = fake_rank(monkeypatch, 1, [("node-a", 0, "/other/run", "hash")], ["a"], ["a"])
    with pytest.raises(ConfigError, match="different output folders.*hydra.run.dir"):
        SharedRun(tmp_path, "hash").setup(elsewhere, None, "predict")
    other_config = fake_rank(monkeypatch, 1, [("node-a", 0, out, "other")], ["a"], ["a"])
    with pytest.raises(ConfigError, match="different configs"):
        SharedRun(tmp_path, "hash").setup(other_config, None, "predict")


def test_an_srun_layout_lightning_cannot_place_is_a_config_error(clean_env):
    for key, value in {**SRUN, "SLURM_NTASKS": "8"}.items():
        clean_env.setenv(key, value)
    clean_env.delenv("SLURM_NTASKS_PER_NODE")
    with pytest.raises(ConfigError, match="--ntasks-per-node"):
        cluster.detect_launch()
