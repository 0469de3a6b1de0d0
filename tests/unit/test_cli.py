"""What every entry point shares: the configs' location, clean exits (2 for errors, 130 for Ctrl-C) recorded in
the run's log file, the quoting hint for overrides Hydra cannot parse, and the run-folder check."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stylex.cli import (CONFIG_DIR, RunFolderCheck, guarded, quoting_hint, run_entry, to_log_files,
                        unparsable_override)
from stylex.errors import ConfigError


@pytest.fixture
def run_log(tmp_path):
    """A log file handler on the root logger, as Hydra's job logging installs for run.log."""
    handler = logging.FileHandler(tmp_path / "run.log")
    logging.getLogger().addHandler(handler)
    yield tmp_path / "run.log"
    logging.getLogger().removeHandler(handler)
    handler.close()


def test_the_configs_are_found():
    assert (Path(CONFIG_DIR) / "run.yaml").is_file() and (Path(CONFIG_DIR) / "method" / "gallery.yaml").is_file()


def test_a_user_error_exits_2_and_lands_in_the_log_file(run_log, capsys):
    def task() -> None:
        raise ConfigError("method.num_steps=0: must be an integer in [1, 1000]")

    with pytest.raises(SystemExit) as stopped:
        guarded(task)()
    assert stopped.value.code == 2
    assert capsys.readouterr().err == "stylex: error: method.num_steps=0: must be an integer in [1, 1000]\n"
    assert "method.num_steps=0" in run_log.read_text()


def test_ctrl_c_exits_130_and_says_how_to_resume(run_log, capsys):
    def task() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as stopped:
        guarded(task)()
    assert stopped.value.code == 130
    assert "interrupted" in capsys.readouterr().err and "to resume" in run_log.read_text()


def test_an_unexpected_error_keeps_its_traceback_in_the_log_file(run_log):
    def task() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        guarded(task)()
    text = run_log.read_text()
    assert "unexpected error: RuntimeError('a bug')" in text and "Traceback" in text


@pytest.mark.parametrize("argv, bad", [
    (["data.content=Données/"], "data.content=Données/"),
    (["experiment=smoke", "data.styles=photos (1)/"], "data.styles=photos (1)/"),
    (["data.content=my", "photos/"], "data.content=my photos/"),  # the shell split an unquoted value
    (["data.content=my photos/", "--cfg", "job"], None),  # quoted for the shell: Hydra reads the space
    (["'data.content=\"Données/\"'".strip("'")], None),
    (["-m", "method.lr=0.03,0.05"], None),
    (["--help"], None),
])
def test_unparsable_overrides_are_found_before_hydra(argv, bad):
    assert unparsable_override(argv) == bad


def test_the_quoting_hint_shows_the_quoted_override():
    hint = quoting_hint("data.content=Données/")
    assert "`data.content=Données/` cannot be parsed" in hint and "'data.content=\"Données/\"'" in hint


def test_run_entry_refuses_an_unparsable_override_with_the_hint(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["stylex.run", "data.content=Données/"])
    with pytest.raises(SystemExit) as stopped:
        run_entry(lambda: pytest.fail("Hydra must not run"), "run")
    assert stopped.value.code == 2 and "'data.content=\"Données/\"'" in capsys.readouterr().err


def test_a_run_folder_that_cannot_be_created_exits_2(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as stopped:
        RunFolderCheck.check(str(tmp_path / "file" / "run"), "hydra.run.dir")
    assert stopped.value.code == 2
    assert "choose another folder with hydra.run.dir=" in capsys.readouterr().err
    RunFolderCheck.check(str(tmp_path / "new" / "run"), "hydra.run.dir")  # creatable: no exit
    assert not (tmp_path / "new").exists()


def test_log_records_go_to_files_only(run_log, capsys):
    to_log_files(logging.INFO, "only in the file")
    assert "only in the file" in run_log.read_text() and "only in the file" not in capsys.readouterr().err
