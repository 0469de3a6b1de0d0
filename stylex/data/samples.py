"""What stylex reads besides its code: the configs folder, and the sample images (from the installed
scikit-image package, never copied into the repo)."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf


def config_dir() -> Path:
    """The configs: `stylex/configs` in an installed wheel, `configs/` beside the package in a checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "configs"
    return packaged if packaged.is_dir() else package.parent / "configs"


SAMPLE_CONTENTS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
SAMPLE_STYLES = ("hubble_deep_field.jpg", "ihc.png", "brick.png", "gravel.png")


def samples_dir() -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data"


def sample_paths(which: str) -> list[str]:
    """Paths of the bundled `content` or `styles` samples."""
    names = {"content": SAMPLE_CONTENTS, "styles": SAMPLE_STYLES}[which]
    return [str(samples_dir() / name) for name in names]


def register_resolvers() -> None:
    """`${stylex_samples:content}` / `${stylex_samples:styles}` in configs."""
    if not OmegaConf.has_resolver("stylex_samples"):
        OmegaConf.register_new_resolver("stylex_samples", lambda which: ListConfig(sample_paths(which)))


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """configs/{name}.yaml with `overrides`, as that command composes it; inside a running Hydra app (a sweep's
    job, `python -m stylex.bench`) on that app's search path. Hydra's errors pass through for the caller to word."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=name, overrides=overrides)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)
