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
