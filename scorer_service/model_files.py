"""Loading the Scorer's model and tokenizer, from the folder the shared rule finds
(`ftreview.core.model_files`: local files only, GGUFs de-quantized once), and the adapter the
trainer last promoted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftreview.core.model_files import (
    EMBEDDED_NAME,
    ModelNotFound,
    model_folder,
)

__all__ = ["EMBEDDED_NAME", "ModelNotFound", "load_model", "load_tokenizer", "model_folder"]


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
