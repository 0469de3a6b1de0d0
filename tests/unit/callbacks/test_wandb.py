"""The W&B logger: no `anonymous` argument reaches wandb, and an online run that cannot reach the server falls
back to offline within `init_timeout` and says so."""
from __future__ import annotations

import logging
import socket
import time

import pytest

from stylex.callbacks.wandb import make_wandb_logger


def test_wandb_init_gets_no_anonymous_setting(tmp_path, monkeypatch):
    """wandb warns "The anonymous setting has no effect" whenever it is passed, on every run."""
    import wandb

    seen = {}

    def init(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setattr(wandb, "run", None)  # a run another test left open would be reused instead of started
    logger = make_wandb_logger(save_dir=str(tmp_path), name="run", mode="offline", init_timeout=7)
    with pytest.raises(RuntimeError, match="stop here"):
        logger.experiment
    assert "anonymous" not in seen and seen["mode"] == "offline" and seen["settings"].init_timeout == 7


@pytest.mark.slow
def test_an_api_key_without_network_falls_back_to_offline(tmp_path, monkeypatch, caplog):
    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    caplog.set_level(logging.WARNING, logger="stylex")
    logger = make_wandb_logger(save_dir=str(tmp_path), name="run", mode="auto", init_timeout=2)
    start = time.monotonic()
    experiment = logger.experiment
    try:
        assert experiment.settings.mode == "offline" and time.monotonic() - start < 60
        assert "could not start an online run" in caplog.text and "wandb sync" in caplog.text
        experiment.log({"x": 1})
    finally:
        logger.finalize("success")
        experiment.finish()
    assert list((tmp_path / "wandb").glob("offline-run-*"))
