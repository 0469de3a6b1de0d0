"""A whole run in-process on tiny models (AD, 64 px, one step): a full disk mid-run, Ctrl-C, and two runs
sharing one folder."""
from __future__ import annotations

import errno
import logging
import os
import signal
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from stylex.cli import guarded
from stylex.data import outputs
from stylex.data.outputs import OutputStore
from stylex.data.samples import register_resolvers
from stylex.errors import WriteError
from stylex.pipeline import stylize
from tests.conftest import write_image

CONFIGS = Path(__file__).parents[3] / "configs"
NAMES = ["a__s", "b__s"]  # style-major order: the items are made in this order


@pytest.fixture
def run_cfg(tmp_path):
    write_image(tmp_path / "c" / "a.png", (64, 64), seed=1)
    write_image(tmp_path / "c" / "b.png", (64, 64), seed=2)
    write_image(tmp_path / "s" / "s.png", (64, 64), seed=3)
    register_resolvers()
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        cfg = compose("run", overrides=[
            "experiment=smoke", "logger=none", "trainer=cpu", "trainer.enable_progress_bar=false",
            "data.resolution=64", "data.batch_size=1", "method.num_steps=1", "method.show_progress=false",
            f"data.content={tmp_path / 'c'}", f"data.styles={tmp_path / 's'}", f"paths.output_dir={tmp_path / 'run'}"])
    sigint = signal.getsignal(signal.SIGINT)
    yield cfg
    signal.signal(signal.SIGINT, sigint)  # Lightning ignores Ctrl-C once it has seen one


def made(cfg) -> list[str]:
    return sorted(p.stem for p in (Path(cfg.paths.output_dir) / "images").glob("*.png"))


@pytest.mark.slow
def test_a_full_disk_stops_the_run_keeps_finished_outputs_and_the_rerun_resumes(run_cfg, monkeypatch, caplog):
    calls = []
    write_all = outputs.write_all

    def filling_up(fd: int, data: bytes) -> None:
        calls.append(len(data))
        if len(calls) == 3:  # the second output's image: the disk is full
            os.write(fd, data[:10])
            raise OSError(errno.ENOSPC, "No space left on device")
        write_all(fd, data)

    monkeypatch.setattr(outputs, "write_all", filling_up)
    images = Path(run_cfg.paths.output_dir) / "images"
    with pytest.raises(WriteError, match=rf"no space left on the disk holding {images}"):
        stylize(run_cfg)
    assert sorted(p.name for p in images.iterdir()) == ["a__s.json", "a__s.png"]  # no partial file
    finished = (images / "a__s.png").read_bytes()
    monkeypatch.setattr(outputs, "write_all", write_all)
    caplog.set_level(logging.INFO, logger="stylex")
    stylize(run_cfg)
    assert made(run_cfg) == NAMES and (images / "a__s.png").read_bytes() == finished
    assert "Done: 1 output(s) written, 1 already done" in caplog.text


@pytest.mark.slow
def test_ctrl_c_during_the_run_exits_130(run_cfg, monkeypatch):
    from stylex.methods.attention_distillation import AttentionDistillation

    def pressed_ctrl_c(self, batch, batch_idx=0):
        raise KeyboardInterrupt

    monkeypatch.setattr(AttentionDistillation, "predict_step", pressed_ctrl_c)
    with pytest.raises(SystemExit) as stopped:
        guarded(stylize)(run_cfg)  # Lightning turns Ctrl-C into exit status 1; the run says 130
    assert stopped.value.code == 130
    assert made(run_cfg) == [] and not list(Path(run_cfg.paths.output_dir).rglob("*.part"))


@pytest.mark.slow
def test_two_runs_into_one_folder_share_the_work(run_cfg, caplog):
    other = OutputStore(run_cfg.paths.output_dir)
    assert other.claim("a__s", "whatever it hashes")  # another run is making a__s right now
    caplog.set_level(logging.INFO, logger="stylex")
    stylize(run_cfg)
    assert made(run_cfg) == ["b__s"]
    assert "Done: 1 output(s) written, 0 already done, 1 made by another run into this folder" in caplog.text
    other.release()  # that run stopped before writing it: the next run makes it
    stylize(run_cfg)
    assert made(run_cfg) == NAMES


@pytest.mark.slow
def test_a_corrupt_photo_is_skipped_and_reported(run_cfg, caplog):
    content = Path(run_cfg.data.content)
    (content / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 a photo cut short")
    (content / "._a.png").write_bytes(b"AppleDouble")  # copied from macOS: hidden, ignored
    run_cfg.data.on_bad_image = "skip"
    caplog.set_level(logging.INFO, logger="stylex")
    stylize(run_cfg)
    assert made(run_cfg) == NAMES
    skipped = Path(run_cfg.paths.output_dir) / "skipped.txt"
    assert skipped.read_text().startswith(f"{content / 'c.jpg'}\tthe image is damaged or truncated")
    assert f"Done: 2 output(s) written, 0 already done -> {Path(run_cfg.paths.output_dir) / 'images'}. 1 unreadable " \
           f"input image(s) skipped, listed in {skipped}." in caplog.text
