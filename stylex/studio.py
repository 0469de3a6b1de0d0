"""`python -m stylex.studio`: a local web page to see and edit StyleGallery's regions and matches, stylize, and
copy the equivalent batch command (see configs/studio.yaml)."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from stylex.checks import check_config
from stylex.cli import CONFIG_DIR, guarded, run_entry
from stylex.data.samples import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="studio")
@guarded
def main(cfg: DictConfig) -> None:
    check_config(cfg, "studio")
    from stylex.studio_app.server import serve

    serve(cfg)


def cli() -> None:
    """The `stylex-studio` console script."""
    run_entry(main, "studio")


if __name__ == "__main__":
    cli()
