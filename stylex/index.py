"""`python -m stylex.index`: build or update a style gallery from a folder of images (see configs/index.yaml)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from stylex.checks import check_config
from stylex.cli import CONFIG_DIR, guarded, run_entry
from stylex.data.samples import register_resolvers
from stylex.errors import ConfigError

register_resolvers()
log = logging.getLogger("stylex.index")


def build(cfg: DictConfig) -> Any:
    """Check the inputs, load the models, build; returns the BuildReport."""
    from stylex.data.outputs import write_skipped
    from stylex.gallery.build import build_gallery, check_output_folder, check_sources
    from stylex.gallery.faiss_index import IndexSpec
    from stylex.pipeline import quiet_libraries, stage1_method

    g = cfg.gallery
    if not g.get("out"):
        raise ConfigError("gallery.out is not set. Name the gallery folder, e.g. gallery.out=galleries/paintings.")
    styles = cfg.data.styles
    sources = OmegaConf.to_container(styles, resolve=True) if OmegaConf.is_config(styles) else styles
    spec = IndexSpec.from_config(OmegaConf.to_container(g.index, resolve=True))
    check_sources(sources)  # bad inputs fail before any model loads
    check_output_folder(Path(g.out).expanduser())
    quiet_libraries()
    method = stage1_method(cfg, cache=bool(g.get("use_run_cache")))
    report = build_gallery(g.out, sources, method.analyse, method.stage1_identity(), cfg.data.resolution,
                           cfg.data.style_resize, spec=spec, rebuild=bool(g.rebuild),
                           replace_source=bool(g.replace_source), lock_timeout=float(g.lock_timeout),
                           show_progress=bool(g.show_progress), on_bad_image=str(cfg.data.on_bad_image))
    listed = write_skipped(cfg.paths.output_dir, [(s["path"], s["reason"]) for s in report.skipped])
    if listed:
        log.info("The %d skipped file(s) and why: %s", len(report.skipped), listed)
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="index")
@guarded
def main(cfg: DictConfig) -> None:
    check_config(cfg, "index")
    if cfg.get("print_config"):
        log.info("Resolved config:\n%s", OmegaConf.to_yaml(cfg, resolve=True))
    build(cfg)


def cli() -> None:
    """The `stylex-index` console script."""
    run_entry(main, "index")


if __name__ == "__main__":
    cli()
