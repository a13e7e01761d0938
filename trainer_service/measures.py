"""What the guard measures on a model: reply log-likelihoods and greedy answers.

Invariant: every figure is computed without gradients, in eval mode, on exactly the tokens
the model is trained on: the chat template's generation prompt for the context, then the
reply's own tokens (the template's end marker is not part of the reply). A model handed in
training mode is handed back in training mode.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .examples import Chat

_NOT_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lowercase, punctuation stripped, whitespace collapsed: how recall compares text."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACES.sub(" ", _NOT_WORD.sub("", text)).strip()


def reproduces(answer: str, reply: str) -> bool:
    return normalise(reply) in normalise(answer)


@contextmanager
def evaluating(model: Any) -> Iterator[None]:
    import torch

    was_training = bool(model.training)
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


def prompt_ids(tokenizer: Any, context: Chat) -> list[int]:
    text = tokenizer.apply_chat_template(context, tokenize=False, add_generation_prompt=True)
    return [int(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]


@dataclass(frozen=True)
class Fit:
    """How a model fits a reply after a context, in one forward pass."""

    # Mean log p(reply token | context, earlier reply tokens), nats per token.
    logprob: float
    # Every reply token is the model's argmax: greedy decoding reproduces the reply.
    greedy: bool


def reply_fit(model: Any, tokenizer: Any, context: Chat, reply: str) -> Fit:
    import torch

    prompt = prompt_ids(tokenizer, context)
    target = [int(t) for t in tokenizer(reply, add_special_tokens=False)["input_ids"]]
    ids = torch.tensor([prompt + target], device=model.device)
    wanted = torch.tensor(target, device=model.device)
    with evaluating(model):
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        picked = logprobs.gather(1, wanted[:, None])
    return Fit(float(picked.mean()), bool((logits.argmax(dim=-1) == wanted).all()))


def reply_fits(
    model: Any, tokenizer: Any, pairs: list[tuple[Chat, str]], batch: int = 8
) -> list[Fit]:
    """`reply_fit` of each (context, reply), a few sequences per forward pass, and the
    vocabulary head only where a reply token is predicted (over a long context, the head at
    every position would cost more than the model)."""
    import torch

    fits: list[Fit] = []
    sequences = []
    for context, reply in pairs:
        prompt = prompt_ids(tokenizer, context)
        target = [int(t) for t in tokenizer(reply, add_special_tokens=False)["input_ids"]]
        sequences.append((prompt + target, len(prompt)))
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = model.get_output_embeddings()
    pad = int(tokenizer.pad_token_id)
    with evaluating(model):
        for at in range(0, len(sequences), batch):
            chunk = sequences[at : at + batch]
            width = max(len(ids) for ids, _ in chunk)
            ids = torch.tensor(
                [i + [pad] * (width - len(i)) for i, _ in chunk], device=model.device
            )
            mask = torch.tensor(
                [[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk], device=model.device
            )
            hidden = inner.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for row, (sequence, start) in enumerate(chunk):
                wanted = torch.tensor(sequence[start:], device=model.device)
                logits = head(hidden[row, start - 1 : len(sequence) - 1]).float()
                picked = torch.log_softmax(logits, dim=-1).gather(1, wanted[:, None])
                greedy = bool((logits.argmax(dim=-1) == wanted).all())
                fits.append(Fit(float(picked.mean()), greedy))
    return fits


def token_logprobs(model: Any, tokenizer: Any, context: Chat, reply: str) -> list[float]:
    """log p(token | context, earlier reply tokens) of each reply token, in order."""
    import torch

    prompt = prompt_ids(tokenizer, context)
    target = [int(t) for t in tokenizer(reply, add_special_tokens=False)["input_ids"]]
    ids = torch.tensor([prompt + target], device=model.device)
    wanted = torch.tensor(target, device=model.device)
    with evaluating(model):
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()
        picked = torch.log_softmax(logits, dim=-1).gather(1, wanted[:, None])[:, 0]
    return [float(v) for v in picked]


def token_spans(tokenizer: Any, reply: str) -> list[tuple[int, int]]:
    """Each reply token's characters in `reply` (the same tokens `token_logprobs` scores)."""
    encoded = tokenizer(reply, add_special_tokens=False, return_offsets_mapping=True)
    return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]


def reply_logprob(model: Any, tokenizer: Any, context: Chat, reply: str) -> float:
    """Mean log p(reply token | context, earlier reply tokens), nats per token."""
    return reply_fit(model, tokenizer, context, reply).logprob


def greedy_answers(
    model: Any, tokenizer: Any, contexts: list[Chat], max_new_tokens: int
) -> list[str]:
    """What the model says greedily after each context; one batched (left-padded) call."""
    import torch

    if not contexts:
        return []
    prompts = [prompt_ids(tokenizer, c) for c in contexts]
    width = max(len(p) for p in prompts)
    pad = int(tokenizer.pad_token_id)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=model.device)
    mask = torch.tensor(
        [[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=model.device
    )
    with evaluating(model):
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
    return [str(tokenizer.decode(row[width:], skip_special_tokens=True)).strip() for row in out]


def greedy_answer(model: Any, tokenizer: Any, context: Chat, max_new_tokens: int) -> str:
    return greedy_answers(model, tokenizer, [context], max_new_tokens)[0]


def sampled_answers(
    model: Any, tokenizer: Any, context: Chat, count: int, max_new_tokens: int, seed: int
) -> list[str]:
    """`count` sampled continuations (temperature 0.8), for self-study paraphrases."""
    import torch

    torch.manual_seed(seed)
    prompt = prompt_ids(tokenizer, context)
    ids = torch.tensor([prompt] * count, device=model.device)
    with evaluating(model):
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=0.8,
            top_p=0.95,
            pad_token_id=tokenizer.pad_token_id,
        )
    return [
        str(tokenizer.decode(row[len(prompt) :], skip_special_tokens=True)).strip() for row in out
    ]


def reply_tokens(tokenizer: Any, reply: str) -> int:
    return len(tokenizer(reply, add_special_tokens=False)["input_ids"])
