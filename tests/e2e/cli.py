"""Running the command-line entry points as a user does, in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(module: str, *overrides: str, cwd: Path, timeout: int = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"), "HF_HUB_OFFLINE": "1",
           "WANDB_SILENT": "true", "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
