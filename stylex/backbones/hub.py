"""Loading frozen models the standard way (Hugging Face id or local directory), with clear errors."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from stylex.errors import WeightsError

T = TypeVar("T")


def is_local_path(model_id: str) -> bool:
    """A model reference that names a directory or file rather than a Hugging Face repo id."""
    return model_id.startswith(("/", "./", "../", "~")) or Path(model_id).expanduser().exists()


def hf_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # pragma: no cover - very old hub versions
        return os.path.expanduser("~/.cache/huggingface/hub")


def missing_weights_message(what: str, model_id: str, config_key: str, detail: str = "") -> str:
    if is_local_path(model_id):
        where = f"the local path {Path(model_id).expanduser().resolve()}"
    elif os.environ.get("HF_HUB_OFFLINE") == "1":
        where = f"the Hugging Face cache at {hf_cache_dir()} (offline: HF_HUB_OFFLINE=1)"
    else:
        where = f"the Hugging Face cache at {hf_cache_dir()} and on the hub (not reachable or not there)"
    msg = (
        f"Could not load the {what} weights '{model_id}'. Looked in {where}. "
        f"To fix: download them once where there is internet (`hf download {model_id}`) and copy the cache here "
        f"(set HF_HOME or HF_HUB_CACHE to it, and HF_HUB_OFFLINE=1), or point `{config_key}=/path/to/local/dir` "
        f"at a directory holding the model; `debug=smoke` runs on tiny random models instead."
    )
    if detail:
        msg += f" (underlying error: {detail.splitlines()[0][:300]})"
    return msg


def load_pretrained(loader: Callable[..., T], model_id: str, *, what: str, config_key: str, **kwargs: Any) -> T:
    """Call a `from_pretrained`-style `loader`, turning any missing-weights failure into a `WeightsError`."""
    from huggingface_hub.errors import HFValidationError

    ref = str(Path(model_id).expanduser()) if is_local_path(model_id) else model_id
    if is_local_path(model_id) and not Path(ref).exists():
        raise WeightsError(missing_weights_message(what, model_id, config_key, "no such file or directory"))
    try:
        return loader(ref, **kwargs)
    except (OSError, HFValidationError) as exc:
        raise WeightsError(missing_weights_message(what, model_id, config_key, str(exc))) from exc
