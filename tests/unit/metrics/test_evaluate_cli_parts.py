"""The pieces of `python -m stylex.evaluate` and experiments/compare: finding outputs, naming methods, refusing
wrong inputs, tables, merged result files, the config, and the compare script's commands."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from stylex.data.images import file_digest
from stylex.errors import ConfigError, InputError, WeightsError
from stylex.metrics import evaluation as ev
from stylex.metrics.factory import DEFAULT_WEIGHTS, METRICS, build_metrics
from stylex.metrics.pairing import describe_location, index_images, pair_outputs
from stylex.metrics.protocol import Protocol
from stylex.metrics.report import read_csv

REPO = Path(__file__).parents[3]


def _img(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, 20, 30)).save(path)
    return path


def _run(root: Path, method: str | None = "ad", styles_per_output: int = 1) -> tuple[Path, Path, Path]:
    """root/run/images with {c}__{s}.png, sidecars (as stylex.run writes them) and overlays."""
    c, s, images = root / "content", root / "style", root / "run" / "images"
    cs = [_img(c / "cat.jpg", 1), _img(c / "dog.png", 2)]
    ss = [_img(s / "monet.png", 3), _img(s / "hokusai.png", 4)]
    for cf in cs:
        for sf in ss:
            name = f"{cf.stem}__{sf.stem}"
            _img(images / f"{name}.png", 5)
            _img(images / f"{name}.regions-content.png")
            _img(images / f"{name}.regions-{sf.stem}.png")
            if method is not None:
                refs = ss[:styles_per_output] if styles_per_output > 1 else [sf]
                (images / f"{name}.json").write_text(json.dumps({
                    "method": method, "content": {"path": str(cf), "sha256_16": file_digest(cf)},
                    "styles": [{"path": str(r), "sha256_16": file_digest(r)} for r in refs]}))
    return root / "run", c, s


# ---------------------------------------------------------------------------------------------- finding outputs

def test_run_dir_means_its_images_folder(tmp_path: Path) -> None:
    run, _, _ = _run(tmp_path)
    assert ev.images_dir(run) == run / "images" == ev.images_dir(run / "images")
    assert ev.run_name(run / "images") == "run" and ev.run_name(tmp_path / "pics") == "pics"
    with pytest.raises(InputError, match="no such folder"):
        ev.images_dir(tmp_path / "nope")


def test_overlays_beside_outputs_are_not_outputs(tmp_path: Path) -> None:
    run, c, s = _run(tmp_path, method=None)  # no sidecars: overlays are recognised by their output's image
    pairs = pair_outputs(run / "images", c, s)
    assert sorted(p.output.name for p in pairs) == [
        "cat__hokusai.png", "cat__monet.png", "dog__hokusai.png", "dog__monet.png"]
    only = tmp_path / "only"
    _img(only / "a__b.regions-content.png")
    (only / "a__b.json").write_text("{}")
    with pytest.raises(InputError, match="only overlay images"):
        pair_outputs(only, c, s)


def test_inputs_may_be_lists_of_files_and_folders(tmp_path: Path) -> None:
    run, c, s = _run(tmp_path)
    files = [str(c / "cat.jpg"), str(c / "dog.png")]
    assert sorted(index_images(files, "content")) == ["cat", "dog"]
    assert sorted(index_images([str(c), str(c / "cat.jpg")], "content")["cat"]) == [c / "cat.jpg"]  # listed twice: one
    assert describe_location(files) == f"the 2 files given (cat.jpg, dog.png) in {c}"
    assert len(pair_outputs(run / "images", files, [str(s)])) == 4


# ---------------------------------------------------------------------------------------------- methods and checks

def test_method_names_from_sidecars_override_or_folder(tmp_path: Path) -> None:
    run, c, s = _run(tmp_path / "a", method="stylegallery")
    (group,) = ev.collect(run, c, s)
    assert group.label == "stylegallery" and len(group.pairs) == 4 and group.folder == run / "images"
    assert ev.collect(run, c, s, method_name="mine")[0].label == "mine"
    bare, c2, s2 = _run(tmp_path / "b", method=None)
    assert ev.collect(bare, c2, s2)[0].label == "run"  # no sidecars: the run directory's name


def test_the_same_method_in_two_folders_is_told_apart(tmp_path: Path) -> None:
    one, c, s = _run(tmp_path / "one")
    two = tmp_path / "two"
    (two / "images").mkdir(parents=True)
    for f in (one / "images").iterdir():
        (two / "images" / f.name).write_bytes(f.read_bytes())
    labels = [g.label for g in ev.collect_all([one, two], c, s)]
    assert labels == ["ad (run)", "ad (two)"]  # the run directories: one/run, two
    assert [g.label for g in ev.collect_all([one, two], c, s, method_names=["x", "y"])] == ["x", "y"]
    with pytest.raises(ConfigError, match="one name per folder"):
        ev.collect_all([one, two], c, s, method_names=["x"])


def test_gallery_outputs_pair_with_the_family_they_were_made_against(tmp_path: Path) -> None:
    _, c, s = _run(tmp_path)
    images = tmp_path / "gallery" / "images"
    for content in ("cat", "dog"):  # data.pairing=gallery: {content}__{styles folder}.png, all styles in the sidecar
        _img(images / f"{content}__style.png", 6)
    (group,) = ev.collect(images, c, s)
    assert [(p.content_stem, p.style_stem, p.style) for p in group.pairs] == [("cat", "style", None),
                                                                             ("dog", "style", None)]
    assert group.pairs[0].family == (s / "hokusai.png", s / "monet.png")
    metrics = build_metrics(["lpips", "fid", "gram"], smoke=True)
    assert list(ev.usable_metrics(group, metrics)) == ["lpips"]  # no one style image to compare with
    family_gram = build_metrics(["gram"], smoke=True, options={"gram": {"against": "family"}})
    assert list(ev.usable_metrics(group, family_gram)) == ["gram"]


def test_clip_t_names_a_gallery_output_after_its_style_folder(tmp_path: Path) -> None:
    """CLIP-T's template takes the style's name: the folder's for an output made against all of it (not the stem of
    its last image)."""
    from stylex.metrics.embedding_scores import CLIPTextScore
    from stylex.metrics.report import evaluate_pairs

    from tests.conftest import write_image

    c, s = tmp_path / "content", tmp_path / "style"
    for path in (c / "cat.png", s / "monet.png", s / "hokusai.png", tmp_path / "gallery" / "images" / "cat__style.png"):
        write_image(path, (32, 32))
    (group,) = ev.collect(tmp_path / "gallery" / "images", c, s)
    seen: list[str] = []

    class Recording(CLIPTextScore):
        def texts_for(self, batch):  # type: ignore[no-untyped-def]
            seen.extend(texts := super().texts_for(batch))
            raise StopIteration(texts)

    with pytest.raises(StopIteration):
        evaluate_pairs(group.pairs, {"clip_t": Recording(None, template="a painting in the style of {style}")})
    assert seen == ["a painting in the style of style"]


def test_family_subfolders(tmp_path: Path) -> None:
    c = tmp_path / "content"
    _img(c / "cat.png")
    styles = tmp_path / "style"
    monet = [_img(styles / "Monet" / f"m{i}.png", i) for i in range(3)]
    loose = _img(styles / "loose.png", 9)
    out = tmp_path / "out"
    for name in ("cat__m1", "cat__loose", "cat__Monet"):
        _img(out / f"{name}.png")
    pairs = {p.style_stem: p for p in pair_outputs(out, c, styles)}
    assert pairs["m1"].style == monet[1] and pairs["m1"].family == tuple(monet)  # one image of a family
    assert pairs["loose"].family == (loose,)  # directly in the styles folder: a family of one
    assert pairs["Monet"].style is None and pairs["Monet"].family == tuple(monet)  # made against the family
    _img(styles / "Monet.png")
    with pytest.raises(InputError, match="both an image and a family folder"):
        pair_outputs(out, c, styles)


def test_outputs_made_from_other_images_with_the_same_names_are_refused(tmp_path: Path) -> None:
    run, c, s = _run(tmp_path)
    _img(c / "cat.jpg", 200)  # same name, other pixels
    with pytest.raises(InputError, match=r"cat__monet.png: its content .*cat.jpg is not the image") as info:
        ev.collect(run, c, s)
    assert "check_inputs=false" in str(info.value) and "dog__" not in str(info.value)
    assert len(ev.collect(run, c, s, check_inputs=False)[0].pairs) == 4


def test_unpairable_outputs_point_at_the_folders_in_their_sidecars(tmp_path: Path) -> None:
    run, c, s = _run(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    _img(elsewhere / "x.png")
    with pytest.raises(InputError, match="cannot be paired") as info:
        ev.collect(run, elsewhere, s)
    assert f"pass `contents={c} styles={s}`" in str(info.value)


# ---------------------------------------------------------------------------------------------- tables and files

def test_markdown_table_marks_the_best_value_per_direction() -> None:
    rows = [{"method": "a", "n_images": 2, "lpips": 0.5, "dino": 0.7, "fid": "nan"},
            {"method": "b", "n_images": 2, "lpips": 0.4, "dino": 0.6, "fid": "nan"}]
    table = ev.markdown_table(rows, ["lpips", "dino", "fid"], published=[{"method": "P", "lpips": 0.1}])
    assert table.splitlines()[0] == "| method | n | LPIPS ↓ | DINO ↑ |"  # fid: no values, no column
    assert "| a | 2 | 0.5000 | **0.7000** |" in table and "| b | 2 | **0.4000** | 0.6000 |" in table
    assert table.splitlines()[-1] == "| *P (published)* |  | *0.1* |  |"  # never bold: another benchmark


def test_summary_markdown_per_protocol_in_the_published_order() -> None:
    sg = Protocol.from_config({"name": "sg", "about": "as the paper", "tables": [
        {"title": "T", "columns": ["fid", "lpips"], "published": {"source": "Paper", "rows": {"X": {"fid": 9.5}}}}]})
    rows = [{"method": "a", "protocol": "sg", "source": "measured", "n_images": 2, "lpips": 0.5, "fid": 3.0,
             "cfsd": 0.1, "preprocess": "protocol sg | lpips: own resolution"},
            {"method": "a", "protocol": "other", "source": "measured", "n_images": 2, "dino": 0.7},
            *ev.published_rows(sg)]
    doc = ev.summary_markdown(rows, {"sg": sg})
    assert "## T (protocol `sg`)\n\nPublished rows: Paper;" in doc
    table = "| method | n | FID ↓ | LPIPS ↓ |\n|---|---|---|---|\n| a | 2 | 3.0000 | 0.5000 |\n| *X (published)* |"
    assert table in doc
    assert "## Other metrics (protocol `sg`)" in doc and "Protocol `sg`: as the paper." in doc
    assert "Evaluation convention:\n\n- protocol sg\n- lpips: own resolution" in doc
    assert "## Metrics (protocol `other`)" in doc  # a protocol this run does not define: every metric
    assert ev.published_rows(sg) == [{"method": "X", "protocol": "sg", "source": "published: Paper", "fid": 9.5}]


def test_grid_selection_caps_contents_and_styles(tmp_path: Path) -> None:
    run, c, s = _run(tmp_path)
    groups = ev.collect(run, c, s)
    picked = ev.grid_selection(groups, max_contents=1, max_styles=None)
    assert [(p.content_stem, p.style_stem) for p in picked["ad"]] == [("cat", "hokusai"), ("cat", "monet")]


def test_results_merge_across_evaluations(tmp_path: Path) -> None:
    sg = Protocol.from_config({"name": "sg", "tables": [
        {"title": "T", "columns": ["lpips", "fid"], "published": {"source": "Paper", "rows": {"X": {"lpips": 0.9}}}}]})

    def rows(method: str, value: float, protocol: str = "sg") -> tuple[list[dict], list[dict]]:
        per_image = [{"method": method, "protocol": protocol, "content": "c", "style": "s", "output": "o.png",
                      "lpips": value}]
        return per_image, [{"method": method, "protocol": protocol, "source": "measured", "n_images": 1,
                            "lpips": value, "fid": 2.0, "cfsd": 0.3, "preprocess": "p"}]

    files = ev.write_results(tmp_path, *rows("a", 0.1), grid=Image.new("RGB", (4, 4)), protocols={"sg": sg})
    ev.write_results(tmp_path, *rows("b", 0.2), grid=None, protocols={"sg": sg})
    ev.write_results(tmp_path, *rows("a", 0.3), grid=None, protocols={"sg": sg})  # evaluated again: replaces
    ev.write_results(tmp_path, *rows("a", 0.4, "own"), grid=None, protocols={"sg": sg})  # another protocol: kept
    key = lambda r: (r["method"], r["protocol"], r.get("source", ""))  # noqa: E731
    assert {key(r): float(r["lpips"]) for r in read_csv(files["metrics"])} == {
        ("b", "sg", ""): 0.2, ("a", "sg", ""): 0.3, ("a", "own", ""): 0.4}
    summary = read_csv(files["summary"])
    assert {key(r): float(r["lpips"]) for r in summary} == {
        ("b", "sg", "measured"): 0.2, ("a", "sg", "measured"): 0.3, ("a", "own", "measured"): 0.4,
        ("X", "sg", "published: Paper"): 0.9}  # the published row once
    assert list(summary[0]) == ["method", "protocol", "source", "n_images", "lpips", "fid", "cfsd", "preprocess"]
    assert list(read_csv(files["metrics"])[0])[:5] == ["method", "protocol", "content", "style", "output"]
    tables = files["tables"].read_text()
    assert "| a | 1 | 0.3000 | **2.0000** |" in tables and "| *X (published)* |  | *0.9* |  |" in tables
    assert files["grid"].is_file()


# ---------------------------------------------------------------------------------------------- config and factory

@pytest.fixture(scope="module")
def eval_cfg():  # type: ignore[no-untyped-def]
    from hydra import compose, initialize_config_dir

    from stylex.data.samples import register_resolvers

    register_resolvers()
    with initialize_config_dir(str(REPO / "configs"), version_base="1.3"):
        return compose("evaluate", overrides=["outputs=x", "debug=smoke"])


def test_config_defaults_are_the_factory_defaults(eval_cfg) -> None:  # type: ignore[no-untyped-def]
    assert dict(eval_cfg.metrics.weights) == DEFAULT_WEIGHTS
    assert list(eval_cfg.metrics.names) == list(METRICS)
    assert eval_cfg.tiny_models is True and eval_cfg.metrics.smoke_size == 128
    assert eval_cfg.protocol.name == "auto" and set(eval_cfg.protocol.by_name) == {"stylegallery", "ham", "stylex"}
    assert len(eval_cfg.contents) == 4 and len(eval_cfg.styles) == 4  # the bundled samples


def test_config_options_are_accepted_by_the_metrics(eval_cfg) -> None:  # type: ignore[no-untyped-def]
    from omegaconf import OmegaConf

    options = {k: OmegaConf.to_container(eval_cfg.metrics[k]) for k in METRICS if eval_cfg.metrics.get(k)}
    assert options == {"clip_t": {"template": "{style}"}}  # the rest is the protocol's
    for name, cfg in eval_cfg.protocol.by_name.items():
        protocol = Protocol.from_config(cfg)
        metrics = build_metrics(list(METRICS), smoke=True, options=options, protocol=protocol)
        assert metrics["gram"].mode == protocol.options["gram"]["mode"], name  # type: ignore[attr-defined]
        assert metrics["cfsd"].mode == protocol.options["cfsd"]["mode"], name  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"the options of `gram`.*do(es)? not take"):
        build_metrics(["gram"], smoke=True, options={"gram": {"no_such_option": 1}})


def test_missing_weights_name_the_metric_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"the `lpips` metric cannot be computed.*metrics\.weights\.alexnet"):
        build_metrics(["lpips"], weights={"alexnet": str(tmp_path / "alexnet.pth")})


def test_artfid_shares_an_lpips_listed_after_it() -> None:
    metrics = build_metrics(["artfid", "lpips"], smoke=True)
    assert list(metrics) == ["artfid", "lpips"]
    assert metrics["artfid"].lpips is metrics["lpips"]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- experiments/compare

@pytest.fixture(scope="module")
def compare():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("compare_run", REPO / "experiments" / "compare" / "run.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["compare_run"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_compare_plan_and_commands(compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    configs = tmp_path / "configs"
    (configs / "experiment").mkdir(parents=True)
    for name in ("ad", "gallery"):
        (configs / "experiment" / f"{name}.yaml").write_text("")
    plan = compare.parse_args(["contents=photos", "styles=my paintings", "out=res", "debug=smoke", "logger=none",
                               "trainer=gpu", "eval.metrics.names=[lpips]"], configs=configs)
    assert plan.experiments == ["ad", "gallery"] and [n for n, _ in plan.skipped] == ["styleid", "ham_sd21"]
    run = compare.run_command(plan, "gallery")
    assert run[1:] == ["-m", "stylex.run", "experiment=gallery", "data.content='photos'",
                       "data.styles='my paintings'", "data.pairing=product", "hydra.run.dir='res/gallery'",
                       "debug=smoke", "logger=none", "trainer=gpu"]
    evaluate = compare.evaluate_command(plan, ["ad", "gallery"])
    assert evaluate[1:] == ["-m", "stylex.evaluate", "outputs=['res/ad','res/gallery']", "contents='photos'",
                            "styles='my paintings'", "hydra.run.dir='res'", "debug=smoke", "logger=none",
                            "metrics.names=[lpips]"]
    default = compare.parse_args([], configs=configs)
    assert not any(a.startswith(("data.content", "data.styles")) for a in compare.run_command(default, "ad"))
    with pytest.raises(compare.UsageError, match="none of the experiments"):
        compare.parse_args(["methods=nope"], configs=configs)


def test_quoted_hydra_values_parse_back(compare) -> None:  # type: ignore[no-untyped-def]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    (override,) = parser.parse_overrides([f"x={compare._quote('/a b/c,d[1]')}"])
    assert override.value() == "/a b/c,d[1]"
    (listed,) = parser.parse_overrides(["outputs=[" + ",".join(compare._quote(p) for p in ("/r/a", "/r/b")) + "]"])
    assert listed.value() == ["/r/a", "/r/b"]
