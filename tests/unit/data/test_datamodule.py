import pytest

from stylex.data.datamodule import StyleDataModule
from stylex.data.outputs import OutputStore
from stylex.data.samples import sample_paths
from stylex.errors import ConfigError, InputError
from tests.conftest import write_image


def test_product_pairing_is_style_major_and_names_outputs(image_folders):
    contents, styles = image_folders
    dm = StyleDataModule(str(contents), str(styles))
    names = [i.name for i in dm.prepare_items()]
    assert names == ["cat__stars", "dog__stars", "cat__wave", "dog__wave"]
    batch = next(iter(StyleDataModule(str(contents), str(styles), resolution=64, batch_size=4).predict_dataloader()))
    assert len(batch) == 4 and batch[0].content_image.shape[0] == 3 and batch[0].style_images[0].shape == (3, 64, 64)


def test_gallery_pairing_gives_one_item_per_content_with_all_styles(image_folders):
    contents, styles = image_folders
    items = StyleDataModule(str(contents), str(styles), pairing="gallery").prepare_items()
    assert [i.name for i in items] == ["cat__paintings", "dog__paintings"]
    assert [s.name for s in items[0].styles] == ["stars", "wave"]


def test_bad_inputs(tmp_path, image_folders):
    contents, styles = image_folders
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        StyleDataModule(str(tmp_path / "empty"), str(styles)).prepare_items()
    with pytest.raises(InputError, match="no such file or folder"):
        StyleDataModule(str(tmp_path / "nope"), str(styles)).prepare_items()
    write_image(contents / "cat.jpg")
    with pytest.raises(InputError, match="share the name 'cat'"):
        StyleDataModule(str(contents), str(styles)).prepare_items()
    with pytest.raises(ConfigError):
        StyleDataModule(str(contents), str(styles), pairing="zip")


def test_non_images_in_a_folder_are_skipped_but_broken_images_stop_the_run(image_folders):
    contents, styles = image_folders
    (contents / "README.txt").write_text("hello")
    assert len(StyleDataModule(str(contents), str(styles)).prepare_items()) == 4
    (styles / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InputError, match="broken.png"):
        StyleDataModule(str(contents), str(styles)).prepare_items()


def test_done_items_are_skipped_and_changed_config_redoes_them(tmp_path, image_folders):
    from PIL import Image

    contents, styles = image_folders
    store = OutputStore(tmp_path / "run")
    dm = StyleDataModule(str(contents), str(styles))
    dm.bind(store, "cfgA")
    first = dm.prepare_items()[0]
    store.write(first.name, Image.new("RGB", (8, 8)), {"item_hash": first.item_hash})
    again = StyleDataModule(str(contents), str(styles))
    again.bind(store, "cfgA")
    assert [i.name for i in again.prepare_items()] == ["dog__stars", "cat__wave", "dog__wave"]
    changed = StyleDataModule(str(contents), str(styles))
    changed.bind(store, "cfgB")
    assert len(changed.prepare_items()) == 4


def test_bundled_samples_exist():
    assert len(sample_paths("content")) == 4 and len(sample_paths("styles")) == 4
    items = StyleDataModule(sample_paths("content"), sample_paths("styles")).prepare_items()
    assert len(items) == 16 and items[0].name == "astronaut__hubble_deep_field"


def test_hidden_files_are_ignored_with_one_log_line(image_folders, caplog):
    contents, styles = image_folders
    (contents / "._cat.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # a macOS copy's resource fork
    (contents / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    caplog.set_level("INFO", logger="stylex")
    names = [i.name for i in StyleDataModule(str(contents), str(styles)).prepare_items()]
    assert names == ["cat__stars", "dog__stars", "cat__wave", "dog__wave"]
    hidden = [r.getMessage() for r in caplog.records if "hidden" in r.getMessage()]
    assert hidden == [f"data.content: ignoring 2 hidden file(s) in {contents} (.DS_Store, ._cat.png)"]


def test_unreadable_images_stop_the_run_listing_each_or_are_skipped(image_folders):
    contents, styles = image_folders
    (contents / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (styles / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(InputError) as stopped:
        StyleDataModule(str(contents), str(styles)).prepare_items()
    text = str(stopped.value)
    assert text.startswith("2 images cannot be read:") and "broken.png" in text and "cut.jpg" in text
    assert "data.on_bad_image=skip" in text
    dm = StyleDataModule(str(contents), str(styles), on_bad_image="skip")
    assert [i.name for i in dm.prepare_items()] == ["cat__stars", "dog__stars", "cat__wave", "dog__wave"]
    assert sorted(p.name for p in dm.bad_inputs) == ["broken.png", "cut.jpg"]
    assert dm.bad_inputs[contents / "broken.png"].startswith("the image is damaged or truncated")
    with pytest.raises(ConfigError, match="on_bad_image"):
        StyleDataModule(str(contents), str(styles), on_bad_image="ignore")


def test_when_every_content_is_unreadable_nothing_starts(tmp_path, image_folders):
    _, styles = image_folders
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.png").write_bytes(b"nope")
    with pytest.raises(InputError, match="none of the data.content images can be read"):
        StyleDataModule(str(tmp_path / "c"), str(styles), on_bad_image="skip").prepare_items()


def test_output_names_use_the_style_file_stem(tmp_path, image_folders):
    contents, styles = image_folders
    single = write_image(tmp_path / "s0.jpg")
    assert [i.name for i in StyleDataModule(str(contents), str(single), pairing="gallery").prepare_items()] == [
        "cat__s0", "dog__s0"]
    assert [i.name for i in StyleDataModule(str(contents), str(styles), pairing="gallery").prepare_items()] == [
        "cat__paintings", "dog__paintings"]


def test_colliding_output_names_are_refused_before_any_work(tmp_path):
    for role, names in (("c", ["a", "a__b"]), ("s", ["c", "b__c"])):
        for i, name in enumerate(names):
            write_image(tmp_path / role / f"{name}.png", seed=i)
    with pytest.raises(InputError, match=r"images/a__b__c.png by a.png \+ b__c.png and a__b.png \+ c.png"):
        StyleDataModule(str(tmp_path / "c"), str(tmp_path / "s")).prepare_items()


def test_items_another_run_holds_are_left_to_it(tmp_path, image_folders):
    contents, styles = image_folders
    store, other = OutputStore(tmp_path / "run"), OutputStore(tmp_path / "run")
    dm = StyleDataModule(str(contents), str(styles))
    dm.bind(store, "cfg")
    items = dm.prepare_items()
    assert other.claim(items[0].name, items[0].item_hash)  # the other run is making the first output
    assert [i.name for i in dm.on_before_batch_transfer(items[:2], 0)] == [items[1].name]
    assert dm.left_to_others == 1
    other.release()
    assert [i.name for i in dm.on_before_batch_transfer(items[:1], 0)] == [items[0].name]
