"""The batch command and the plan files: what the page shows must parse back, through the shell and Hydra's
override grammar, to exactly the inputs and files the page used; the files must read as a run reads them."""
import shlex
from pathlib import Path

import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from PIL import Image

from stylex.errors import ConfigError
from stylex.matching import read_overrides
from stylex.studio_app.edits import Edits
from stylex.studio_app.plan_files import PlanFiles, batch_command, hydra_value, inside, passed_on, save_plan

TRICKY = ["/data/photos/cat.png", "/data/my photos/cat 1.png", "/data/o'brien/x.png", "/data/a,b/[c]=d.png",
          "/data/123", "true", "null", "/data/x\\y.png", "/data/ünï/çødé.png"]


def parsed(command: str) -> tuple[list[str], dict]:
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "stylex.run"]
    overrides = OverridesParser.create().parse_overrides(words[3:])
    return words, {o.key_or_group: o.value() for o in overrides}


@pytest.mark.parametrize("text", TRICKY)
def test_a_value_reads_back_as_the_same_string(text):
    override = OverridesParser.create().parse_override(f"data.content={hydra_value(text)}")
    assert override.value() == text


def test_plain_paths_stay_unquoted():
    assert hydra_value("/data/photos/cat.png") == "/data/photos/cat.png"
    assert hydra_value("123") == "'123'" and hydra_value("a,b") == "'a,b'"


def test_the_command_names_the_inputs_and_plan_files_exactly():
    plan = PlanFiles(Path("/out/plans/abc"), Path("/out dir/plans/abc/overrides.yaml"), Path("/out dir/plans/abc/masks"))
    command = batch_command(["experiment=gallery_lcm", "debug=smoke", "data.resolution=64"], Path(TRICKY[1]),
                            [Path(p) for p in TRICKY[2:5]], plan)
    _, values = parsed(command)
    assert values["experiment"] == "gallery_lcm" and values["debug"] == "smoke" and values["data.resolution"] == 64
    assert values["data.content"] == TRICKY[1]
    assert values["data.styles"] == TRICKY[2:5]
    assert values["method.matching.overrides"] == "/out dir/plans/abc/overrides.yaml"
    assert values["method.user_masks"] == "/out dir/plans/abc/masks"


def test_without_edits_or_references_the_command_leaves_them_out():
    command = batch_command(["experiment=gallery"], Path("/p/cat.png"), None, PlanFiles(Path("/o"), None, None))
    _, values = parsed(command)
    assert set(values) == {"experiment", "data.content"}


def test_the_studios_own_settings_are_passed_on_except_its_own_and_the_pages():
    task = ["studio.port=7999", "hydra.run.dir=/tmp/x", "data.resolution=64", "experiment=gallery",
            "data.content=/a.png", "method.matching.overrides=/old.yaml", "method.user_masks=/old", "+seed=3",
            "paths.cache_dir=/c", "hydra/launcher=basic"]
    assert passed_on(task, {"experiment": "gallery", "debug": "smoke", "method": "gallery"}) == [
        "experiment=gallery", "debug=smoke", "data.resolution=64", "+seed=3", "paths.cache_dir=/c"]


def test_without_an_experiment_the_method_is_named():
    # stylex.run's default method is not StyleGallery
    assert passed_on(["debug=null"], {"experiment": None, "debug": None, "method": "gallery"}) == ["method=gallery"]
    assert passed_on(["method=gallery"], {"experiment": None, "method": "gallery"}) == ["method=gallery"]


def test_plan_files_read_back_as_a_run_reads_them(tmp_path):
    mask = np.zeros((4, 6), dtype=np.uint8)
    mask[1:3, 2:5] = 7
    plan = save_plan(tmp_path, "0042", Edits({1: ("ihc", 2), 0: ("123", 0)}, mask))
    assert plan.folder.parent == tmp_path / "plans"
    # stylex.run reads method.matching.overrides=<file> through read_overrides; the name stays a string
    assert read_overrides(plan.overrides) == {"0042": {0: ["123", 0], 1: ["ihc", 2]}}
    with Image.open(plan.masks / "0042.png") as img:  # as StyleGallery.user_mask reads it
        np.testing.assert_array_equal(np.asarray(img.convert("L")), mask)


def test_a_plan_folder_is_named_by_its_contents(tmp_path):
    edits = Edits({0: ("ihc", 1)})
    same = save_plan(tmp_path, "cat", edits), save_plan(tmp_path, "cat", Edits({0: ("ihc", 1)}))
    assert same[0] == same[1]
    assert save_plan(tmp_path, "cat", Edits({0: ("ihc", 2)})).folder != same[0].folder
    assert save_plan(tmp_path, "dog", edits).folder != same[0].folder
    empty = save_plan(tmp_path, "cat", Edits({}, np.zeros((2, 2), np.uint8)))
    assert empty.overrides is None and empty.masks is None and empty.folder.is_dir()


def test_nothing_is_written_outside_the_output_folder(tmp_path):
    with pytest.raises(ConfigError, match="outside"):
        inside(tmp_path / "out", tmp_path / "out" / ".." / "elsewhere.png")
    assert inside(tmp_path, tmp_path / "a" / "b.png") == (tmp_path / "a" / "b.png").resolve()
