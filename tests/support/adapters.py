"""Real peft LoRA adapters for tests that need an engine to load one.

`identity_adapter` builds one whose B matrices are zero (peft's default start): the Scorer
loads it exactly as it loads a trained adapter (LoadAdapter, GetInfo, every answer naming
it), and it scores exactly as the base model does, so a test can promote "a job's adapter"
without training and still compare the Review's figures with the base model's.
`random_adapter` has random weights, so it changes every score."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any


def identity_adapter(model: Any, folder: Path) -> Path:
    return _adapter(model, folder, init_lora_weights=True)


def random_adapter(
    model: Any, folder: Path, targets: tuple[str, ...] = ("q_proj", "v_proj")
) -> Path:
    return _adapter(model, folder, init_lora_weights=False, targets=targets)


def _adapter(
    model: Any,
    folder: Path,
    init_lora_weights: bool,
    targets: tuple[str, ...] = ("q_proj", "v_proj"),
) -> Path:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=list(targets), init_lora_weights=init_lora_weights
    )
    get_peft_model(copy.deepcopy(model), config).save_pretrained(str(folder))
    return folder
