"""Finding and reading the metric networks' published weight files, with errors that say how to fix them.

A weight source is one string, as a config value would hold it:
- a local file (`/data/vgg19-dcbb9e9d.pth`, `.pth`/`.pt`/`.bin` via torch.load, `.safetensors`);
- an http(s) URL (downloaded once into torch's hub cache, `$TORCH_HOME/hub/checkpoints`, and read from there);
- a Hugging Face file: `owner/repo/path/in/repo.pth` or `hf://owner/repo/path/in/repo.pth`
  (or `owner/repo` with `filename=`), fetched with `huggingface_hub.hf_hub_download` (HF cache, offline-aware).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from stylex.backbones.hub import hf_cache_dir, is_local_path
from stylex.errors import WeightsError

log = logging.getLogger(__name__)

StateDict = dict[str, Tensor]


def missing_file_message(what: str, source: str, config_key: str, looked: str, get: str, detail: str = "") -> str:
    """The WeightsError text: which weights, where we looked, and the two ways to fix it."""
    name = Path(urlparse(source).path).name or "weights.pth"
    msg = (f"Could not load the {what} weights from '{source}'. Looked in {looked}. To fix: {get}; "
           f"or point `{config_key}=/path/to/{name}` at a local copy of the file; `debug=smoke` runs the "
           f"metrics on tiny random networks instead.")
    if detail:
        msg += f" (underlying error: {detail.strip().splitlines()[0][:300] if detail.strip() else detail})"
    return msg


def split_hf_source(source: str, filename: str | None = None) -> tuple[str, str]:
    """`owner/repo/file.pth` or `hf://owner/repo/file.pth` (or `owner/repo` + filename) -> (repo_id, filename)."""
    ref = source[len("hf://"):] if source.startswith("hf://") else source
    parts = [p for p in ref.split("/") if p]
    if filename is not None and len(parts) == 2:
        return "/".join(parts), filename
    if len(parts) >= 3 and filename is None:
        return "/".join(parts[:2]), "/".join(parts[2:])
    raise WeightsError(f"'{source}' is not a weight source: give a local file, an http(s) URL, or a Hugging Face "
                       f"file as owner/repo/filename (e.g. matthias-wright/art_inception/art_inception.pth).")


def offline() -> bool:
    """HF_HUB_OFFLINE (or STYLEX_OFFLINE) set: use caches only, never wait on the network."""
    if os.environ.get("STYLEX_OFFLINE") == "1" or os.environ.get("HF_HUB_OFFLINE") == "1":
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.is_offline_mode())
    except Exception:  # pragma: no cover - very old hub versions
        return False


def _from_url(url: str, what: str, config_key: str) -> Path:
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    target = cache / Path(urlparse(url).path).name
    if target.is_file():
        return target
    get = f"download {url} once where there is internet (into {cache} it is found automatically)"
    if offline():
        raise WeightsError(missing_file_message(what, url, config_key, f"{target} (offline: no download tried)", get))
    try:
        cache.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except Exception as exc:  # URLError, HTTPError, timeouts, disk errors: all mean "not available here"
        raise WeightsError(missing_file_message(what, url, config_key, f"{target} and {url}", get, str(exc))) from exc
    return target


def _from_hf(source: str, filename: str | None, what: str, config_key: str) -> Path:
    """The HF cache first (no network round trip for a file already there), then the hub unless offline."""
    repo_id, fname = split_hf_source(source, filename)
    get = f"download it once where there is internet (`hf download {repo_id} {fname}`) and copy the HF cache here"
    cached = f"the cache at {hf_cache_dir()}"
    looked = f"the Hugging Face hub (file {fname} of {repo_id}) and {cached}"
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id, fname, local_files_only=True))
    except Exception as exc:  # not cached (or a bad id)
        if offline():
            raise WeightsError(missing_file_message(what, f"{repo_id}/{fname}", config_key,
                                                    f"{cached} (offline: the hub was not asked)", get,
                                                    str(exc))) from exc
    try:
        return Path(hf_hub_download(repo_id, fname))
    except Exception as exc:  # offline, missing entry, gated repo, bad id: all mean "not available here"
        raise WeightsError(missing_file_message(what, f"{repo_id}/{fname}", config_key, looked, get, str(exc))) from exc


def resolve_weight_file(source: str | Path, *, what: str, config_key: str, filename: str | None = None) -> Path:
    """A local path to the weight file named by `source` (see the module docstring), or a WeightsError."""
    src = str(source)
    if src.startswith(("http://", "https://")):
        return _from_url(src, what, config_key)
    if is_local_path(src) or src.endswith((".pth", ".pt", ".bin", ".safetensors")) and src.count("/") < 2:
        path = Path(src).expanduser()
        if filename is not None and path.is_dir():
            path = path / filename
        if not path.is_file():
            raise WeightsError(missing_file_message(
                what, src, config_key, f"the local path {path.resolve()}", "check the path",
                "no such file"))
        return path
    return _from_hf(src, filename, what, config_key)


def read_state_dict(path: Path, *, what: str, config_key: str) -> StateDict:
    """Tensors of a .safetensors or torch checkpoint, unwrapped from {'state_dict': ...} and 'module.' prefixes."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(
            f"The {what} weight file {path} could not be read ({str(exc).splitlines()[0][:300] if str(exc) else exc!r}). "
            f"It may be truncated or not a PyTorch/safetensors file: download it again, or point `{config_key}` "
            f"at a good copy.") from exc
    for key in ("state_dict", "model", "net"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise WeightsError(f"The {what} weight file {path} holds a {type(state).__name__}, not a state dict. "
                           f"Point `{config_key}` at the published .pth/.safetensors file.")
    out: StateDict = {}
    for key, value in state.items():
        if isinstance(value, Tensor):
            out[key[len("module."):] if key.startswith("module.") else key] = value
    return out


def load_into(module: nn.Module, state: Mapping[str, Tensor], *, what: str, source: str, config_key: str,
              ignore: Iterable[str] = (), rename: Callable[[str], str] | None = None) -> None:
    """Load `state` into `module` by name: every parameter and buffer must be present with its shape.

    Keys starting with a prefix in `ignore` (classifier heads the metric does not use) are dropped silently;
    other unexpected keys are logged. BatchNorm's `num_batches_tracked` may be absent (old checkpoints).
    """
    ignore = tuple(ignore)
    own = module.state_dict()
    picked: StateDict = {}
    unexpected: list[str] = []
    for key, value in state.items():
        key = rename(key) if rename else key
        if key.startswith(ignore):
            continue
        (picked.__setitem__(key, value) if key in own else unexpected.append(key))
    missing = [k for k in own if k not in picked and not k.endswith("num_batches_tracked")]
    wrong = [f"{k} {tuple(picked[k].shape)} (expected {tuple(own[k].shape)})"
             for k in picked if tuple(picked[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys (first: {', '.join(missing[:5])})")
        if wrong:
            problems.append(f"{len(wrong)} keys of the wrong shape (first: {', '.join(wrong[:3])})")
        raise WeightsError(f"The {what} weights from '{source}' do not fit the network: {'; '.join(problems)}. "
                           f"Point `{config_key}` at the published file for this network (a full-size network "
                           f"needs full-size weights; tiny test networks take none).")
    if unexpected:
        log.info("%s: ignored %d keys not in the network (first: %s)", what, len(unexpected), unexpected[:5])
    for key, value in picked.items():
        picked[key] = value.to(own[key].dtype)
    module.load_state_dict(picked, strict=False)


def load_weights(module: nn.Module, source: str | Path, *, what: str, config_key: str, filename: str | None = None,
                 ignore: Iterable[str] = (), rename: Callable[[str], str] | None = None) -> nn.Module:
    """resolve_weight_file + read_state_dict + load_into; returns the module frozen, in eval mode."""
    path = resolve_weight_file(source, what=what, config_key=config_key, filename=filename)
    state = read_state_dict(path, what=what, config_key=config_key)
    load_into(module, state, what=what, source=str(source), config_key=config_key, ignore=ignore, rename=rename)
    return module.eval().requires_grad_(False)
