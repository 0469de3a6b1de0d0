"""Start the studio: load the method once, then serve the page on the configured host and port."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from stylex.studio_app.engine import Studio, load_method
from stylex.studio_app.plan_files import passed_on

log = logging.getLogger("stylex.studio")


def hydra_overrides() -> list[str]:
    """The studio's own settings as `stylex.run` overrides (see plan_files.passed_on)."""
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    return passed_on(list(hydra_cfg.overrides.task), dict(hydra_cfg.runtime.choices))


def serve(cfg: DictConfig) -> Any:
    """Serve until interrupted. Everything the server writes (uploads, plans, results, Gradio's own temporary
    files) goes under the output folder; stage-1 results go to the shared cache (paths.cache_dir)."""
    settings = cfg.studio
    root = Path(cfg.paths.output_dir).resolve()
    os.environ["GRADIO_TEMP_DIR"] = str(root / ".gradio")  # read when Gradio is imported
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    for key in ("overrides", "user_masks"):
        value = cfg.method.matching.get(key) if key == "overrides" else cfg.method.get(key)
        if value:
            log.warning("method.%s=%s is not used by the studio: the page's plan replaces it (its batch command "
                        "names the plan's own files).", "matching.overrides" if key == "overrides" else key, value)
    studio = Studio(cfg, root, load_method(cfg), hydra_overrides())

    import gradio as gr

    from stylex.studio_app.ui import build

    demo = build(studio, settings)
    log.info("Output folder: %s", root)
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: works offline
    demo.queue(default_concurrency_limit=1).launch(
        server_name=str(settings.host), server_port=int(settings.port), allowed_paths=[str(root)],
        max_file_size=f"{float(settings.max_upload_mb):g}mb", theme=theme, ssr_mode=False, quiet=False,
        inbrowser=bool(settings.open_browser))
    return demo
