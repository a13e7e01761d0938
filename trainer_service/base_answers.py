"""The base model's greedy answers to the trainer's fixed prompts, kept on disk.

The guard asks the base model its 200 general questions under three system prompts, and
the anchor its 64 plain requests, before every first job of a process: about 700
generations, minutes on a small CPU. The base model never changes on disk (training.py),
so the answers are a pure function of the model folder, the prompts and the token budget,
and are cached under `<FTREVIEW_CACHE or ~/.cache/ftreview>/answers/`.

Invariants:
- the cache key covers everything the answers depend on: the model folder (its path and
  the modification time of its weights), every prompt, the token budget;
- a cache file is written to a temporary name and renamed, so a crash never leaves half a
  file that loads; a file that does not parse is measured again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ftreview.core.model_files import cache_root

from .examples import Chat
from .measures import greedy_answers


def _key(folder: Path, contexts: list[Chat], max_new_tokens: int) -> str:
    weights = sorted(str(p.stat().st_mtime_ns) for p in folder.glob("*.safetensors"))
    material = json.dumps([str(folder), weights, contexts, max_new_tokens], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def base_answers(
    model: Any, tokenizer: Any, folder: Path | None, contexts: list[Chat], max_new_tokens: int
) -> list[str]:
    """`greedy_answers` of the base model at `folder`, from the cache when it has them."""
    if folder is None:
        return greedy_answers(model, tokenizer, contexts, max_new_tokens)
    path = cache_root() / "answers" / f"{_key(folder, contexts, max_new_tokens)}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, list) and len(cached) == len(contexts):
            return [str(a) for a in cached]
    except (OSError, ValueError):
        pass
    answers = greedy_answers(model, tokenizer, contexts, max_new_tokens)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        json.dump(answers, out, ensure_ascii=False)
    os.replace(out.name, path)
    return answers
