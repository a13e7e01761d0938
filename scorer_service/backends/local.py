"""The `local` engine: a transformers model in this process, on the CPU or a GPU.

Invariants:
- forward passes run in a worker thread (torch releases the GIL), one at a time, so health
  checks, streams and other calls stay responsive while a conversation is scored;
- log-probabilities are computed only at the positions asked for: the prompt runs in chunks
  through the KV cache and only the hidden states of requested positions go through the
  output layer (the full logits of an 8k prompt over a 49k vocabulary are 1.6 GB);
- the log-softmax is taken in float32 whatever the model's dtype;
- the requests of one call (the two variants) share one padded batch when their size
  allows, so they cost one pass instead of two.
"""

from __future__ import annotations

import asyncio
import bisect
import inspect
import threading
from collections.abc import Sequence
from typing import Any

from scorer_service.backends.base import (
    BackendInfo,
    Generation,
    ProgressCallback,
    RangeLogprobs,
    ScoreRequest,
    ScoringBackend,
)
from scorer_service.errors import BackendRejected


class LocalBackend(ScoringBackend):
    name = "local"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_name: str,
        *,
        chunk_tokens: int = 512,
        batch_token_budget: int = 8192,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.chunk_tokens = chunk_tokens
        self.batch_token_budget = batch_token_budget
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls, model: str | None = None, device: str | None = None, dtype: str = "auto"
    ) -> LocalBackend:
        import torch

        from scorer_service.model_files import load_model

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        else:
            torch_dtype = getattr(torch, dtype)
        loaded, tokenizer, name = load_model(model, device, torch_dtype)
        return cls(loaded, tokenizer, name)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    async def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.model_name, self.context_length, [], self.device)

    async def score(
        self, requests: Sequence[ScoreRequest], progress: ProgressCallback | None = None
    ) -> list[RangeLogprobs]:
        for request in requests:
            if len(request.token_ids) > self.context_length:
                raise BackendRejected(
                    f"prompt of {len(request.token_ids)} tokens exceeds the model's context "
                    f"length of {self.context_length}"
                )
        return await asyncio.to_thread(self._score_blocking, list(requests), progress)

    def _score_blocking(
        self, requests: list[ScoreRequest], progress: ProgressCallback | None
    ) -> list[RangeLogprobs]:
        with self._lock:
            batches = self._batches(requests)
            total_chunks = 0
            for batch in batches:
                longest = max(len(requests[i].token_ids) for i in batch)
                total_chunks += -(-longest // self._chunk_size(longest))
            state = {"done": 0}

            def chunk_done(detail: str) -> None:
                state["done"] += 1
                if progress is not None:
                    progress(state["done"], total_chunks, detail)

            results: dict[int, RangeLogprobs] = {}
            for batch in batches:
                for index, value in zip(
                    batch, self._score_batch([requests[i] for i in batch], chunk_done), strict=True
                ):
                    results[index] = value
            return [results[i] for i in range(len(requests))]

    def _chunk_size(self, longest: int) -> int:
        # On the CPU, chunks bound the activations and move the progress bar. On a GPU one
        # pass without a cache keeps the fused causal attention kernels (measured on an
        # H200: chunking through the cache made a bfloat16 pass 5x slower).
        on_cpu = next(self.model.parameters()).device.type == "cpu"
        return self.chunk_tokens if on_cpu else longest

    def _batches(self, requests: list[ScoreRequest]) -> list[list[int]]:
        """Group requests so a padded batch stays within the token budget."""
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index, request in enumerate(requests):
            length = len(request.token_ids)
            if current and max(longest, length) * (len(current) + 1) > self.batch_token_budget:
                batches.append(current)
                current, longest = [], 0
            current.append(index)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def _score_batch(self, requests: list[ScoreRequest], chunk_done: Any) -> list[RangeLogprobs]:
        import torch
        from transformers import DynamicCache

        device = next(self.model.parameters()).device
        longest = max(len(r.token_ids) for r in requests)
        # Right padding needs no attention mask in a causal model: a real token only sees
        # positions before it, all real, and the padding's outputs are never read. Without
        # a mask the fused attention kernels stay available.
        ids = torch.zeros((len(requests), longest), dtype=torch.long)
        for row, request in enumerate(requests):
            ids[row, : len(request.token_ids)] = torch.tensor(list(request.token_ids))
        ids = ids.to(device)
        # Position p's token is predicted by the hidden state at p - 1.
        wanted = sorted(
            {
                (p - 1, row)
                for row, r in enumerate(requests)
                for s, e in r.ranges
                for p in range(s, e)
            }
        )
        found: dict[tuple[int, int], float] = {}
        decoder = self.model.base_model
        head = self.model.get_output_embeddings()
        cache = DynamicCache()
        # transformers renamed `past_key_values` to `cache`; an unknown keyword would be
        # swallowed silently and every chunk would run without its past.
        parameters = inspect.signature(decoder.forward).parameters
        cache_keyword = "cache" if "cache" in parameters else "past_key_values"
        chunk = self._chunk_size(longest)
        with torch.inference_mode():
            for chunk_start in range(0, longest, chunk):
                chunk_end = min(longest, chunk_start + chunk)
                past = {cache_keyword: cache} if chunk < longest else {}
                hidden = decoder(
                    input_ids=ids[:, chunk_start:chunk_end], use_cache=chunk < longest, **past
                ).last_hidden_state
                lo = bisect.bisect_left(wanted, (chunk_start, -1))
                hi = bisect.bisect_left(wanted, (chunk_end, -1))
                here = wanted[lo:hi]
                if here:
                    rows = torch.tensor([row for _, row in here], device=device)
                    positions = torch.tensor([p for p, _ in here], device=device)
                    logits = head(hidden[rows, positions - chunk_start]).float()
                    targets = ids[rows, positions + 1]
                    picked = torch.log_softmax(logits, dim=-1).gather(1, targets.unsqueeze(1))
                    found.update(zip(here, picked.squeeze(1).tolist(), strict=True))
                chunk_done(f"tokens {chunk_end}/{longest}")
        return [
            [[found[(p - 1, row)] for p in range(start, end)] for start, end in request.ranges]
            for row, request in enumerate(requests)
        ]

    async def generate(
        self, token_ids: Sequence[int], max_new_tokens: int, stop_token_ids: Sequence[int] = ()
    ) -> Generation:
        if len(token_ids) + max_new_tokens > self.context_length:
            raise BackendRejected(
                f"prompt of {len(token_ids)} tokens plus {max_new_tokens} new ones exceeds the "
                f"model's context length of {self.context_length}"
            )
        return await asyncio.to_thread(
            self._generate_blocking, list(token_ids), max_new_tokens, list(stop_token_ids)
        )

    def _generate_blocking(
        self, token_ids: list[int], max_new_tokens: int, stop_token_ids: list[int]
    ) -> Generation:
        import torch

        with self._lock, torch.inference_mode():
            device = next(self.model.parameters()).device
            prompt = torch.tensor([token_ids], dtype=torch.long, device=device)
            stops = stop_token_ids or [self.tokenizer.eos_token_id]
            output = self.model.generate(
                prompt,
                attention_mask=torch.ones_like(prompt),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=stops[0],
            )
        new = [int(t) for t in output[0, len(token_ids) :].tolist()]
        while new and new[-1] in stops:
            new.pop()
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Generation(text=text.strip(), token_count=len(new))
