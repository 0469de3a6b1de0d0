"""`python -m stylex.studio`: a local web page to see and edit StyleGallery's regions and matches, stylize, and
copy the equivalent batch command (see configs/studio.yaml)."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from stylex.cli import guarded, run_entry
from stylex.data.samples import register_resolvers

register_resolvers()


@hydra.main(version_base="1.3", config_path="../configs", config_name="studio")
@guarded
def main(cfg: DictConfig) -> None:
    from stylex.studio_app.server import serve

    serve(cfg)


if __name__ == "__main__":
    run_entry(main, "studio")
