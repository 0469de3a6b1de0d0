"""A CLIP tokenizer made offline from generated files, for tiny random CLIP text towers (tests, `debug=smoke`).

The files have CLIP's layout: `vocab.json` = the 256 byte-level unicode characters, each again with the word-end
marker `</w>`, then `<|startoftext|>` and `<|endoftext|>` (514 entries); `merges.txt` = only the `#version: 0.2`
header, so every character is its own token. `CLIPTokenizer.from_pretrained(dir)` reads them like a real checkpoint.
"""
from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP's reversible table: a printable unicode stand-in for each of the 256 byte values."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_clip_vocab() -> dict[str, int]:
    chars = bytes_to_unicode()
    tokens = chars + [c + "</w>" for c in chars] + [BOS, EOS]
    return {tok: i for i, tok in enumerate(tokens)}


TINY_VOCAB_SIZE = 2 * 256 + 2
TINY_BOS_ID, TINY_EOS_ID = 512, 513


def write_tiny_clip_tokenizer_files(directory: str | Path) -> Path:
    """Write vocab.json and merges.txt into `directory` (created if needed); returns it."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.json").write_text(json.dumps(tiny_clip_vocab(), ensure_ascii=False), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return out


@lru_cache(maxsize=1)
def _default_dir() -> Path:
    return write_tiny_clip_tokenizer_files(tempfile.mkdtemp(prefix="stylex-tiny-clip-tokenizer-"))


def tiny_clip_tokenizer(dir: str | Path | None = None, max_length: int = 77) -> Any:  # noqa: A002
    """A `transformers.CLIPTokenizer` over the tiny files, written to `dir` (one temp dir per process when None)."""
    from transformers import CLIPTokenizer

    directory = write_tiny_clip_tokenizer_files(dir) if dir is not None else _default_dir()
    return CLIPTokenizer.from_pretrained(str(directory), model_max_length=max_length)
