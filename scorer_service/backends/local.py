"""The `local` engine: a transformers model in this process, on the CPU or a GPU.

Invariants:
- forward passes run on one worker thread (torch releases the GIL), so health checks,
  streams and other calls stay responsive while a conversation is scored; scoring calls that
  arrive together share padded batches (`scheduler`, `passes`);
- on the CPU a chunk attends to its cached past and to itself in two flash calls
  (`attention`), not through one masked call;
- log-probabilities are computed only at the positions asked for: the prompt runs in chunks
  through the KV cache and only the hidden states of requested positions go through the
  output layer (the full logits of an 8k prompt over a 49k vocabulary are 1.6 GB);
- the log-softmax is taken in float32 whatever the model's dtype;
- the attention caches of recent prompts are kept (`kv_cache`, within `kv_cache_mb`), so a
  prompt that extends a scored one runs only its new tokens, with results equal to a pass
  from scratch;
- an adapter switch happens between two rounds and empties the kept caches (they were
  computed by other weights); the model object stays the same, LoRA layers are injected into
  it and removed from it in place, so the base model is exactly restored by unloading.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from scorer_service.backends import attention, lean, passes, precision
from scorer_service.backends.base import (
    BackendInfo,
    Generation,
    ProgressCallback,
    RangeLogprobs,
    ScoreRequest,
    ScoringBackend,
    StopCheck,
)
from scorer_service.backends.kv_cache import DEFAULT_KV_CACHE_MB, PrefixCache
from scorer_service.backends.scheduler import ModelWorker, ScoreJob
from scorer_service.errors import AdapterNotFound, BackendRejected, InvalidAdapter, WorkCancelled

log = logging.getLogger(__name__)


class LocalBackend(ScoringBackend):
    name = "local"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        model_name: str,
        *,
        chunk_tokens: int = 2048,
        batch_token_budget: int = 8192,
        kv_token_budget: int = 16384,
        kv_cache_mb: int = DEFAULT_KV_CACHE_MB,
        batch_window_s: float = 0.01,
        precision_name: str = "",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.chunk_tokens = chunk_tokens
        # Padded new tokens per batch, and padded cached + new tokens per batch.
        self.batch_token_budget = batch_token_budget
        self.kv_token_budget = kv_token_budget
        self.kv_cache = PrefixCache(kv_cache_mb * 2**20)
        self.adapter = ""
        self._adapter_path = ""
        # How the model computes (`backends/precision.py`); by default the weights' dtype.
        self.precision = precision_name or str(next(model.parameters()).dtype).removeprefix(
            "torch."
        )
        # Prompt tokens run through the model since start (padding not counted): what KV
        # reuse saves shows here.
        self.tokens_run = 0
        # Padded batches run since start (each is one chunked pass over its rows).
        self.passes_run = 0
        if next(model.parameters()).device.type == "cpu":
            # split past/own attention for chunks, in bfloat16 with the mixed precision
            attention.install(model, bfloat16=self.precision == "mixed")
            # the MLP's activation and product in place (`lean.py`): the same values
            lean.lean_mlps(model)
        decoder = model.base_model
        # transformers renamed `past_key_values` to `cache`; an unknown keyword would be
        # swallowed silently and every chunk would run without its past.
        parameters = inspect.signature(decoder.forward).parameters
        self._cache_keyword = "cache" if "cache" in parameters else "past_key_values"
        self._worker = ModelWorker(self._run_round, batch_window_s)

    @classmethod
    def load(
        cls,
        model: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        *,
        kv_cache_mb: int = DEFAULT_KV_CACHE_MB,
    ) -> LocalBackend:
        import torch

        from scorer_service.model_files import load_model

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        chosen = precision.resolve(dtype, device)
        loaded, tokenizer, name = load_model(model, device, chosen.weights)
        if chosen.bf16_matmuls:
            precision.bf16_matmuls(loaded)
        log.info("local engine: %s on %s (--dtype %s)", chosen.name, device, dtype)
        return cls(loaded, tokenizer, name, kv_cache_mb=kv_cache_mb, precision_name=chosen.name)

    @property
    def context_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))

    @property
    def device(self) -> str:
        return str(next(self.model.parameters()).device)

    @property
    def batch_window_s(self) -> float:
        return self._worker.window_s

    @batch_window_s.setter
    def batch_window_s(self, seconds: float) -> None:
        self._worker.window_s = seconds

    async def info(self) -> BackendInfo:
        return BackendInfo(
            self.name,
            self.model_name,
            self.context_length,
            [],
            self.device,
            self.adapter,
            notes=[f"computes in {self.precision} (--dtype)"],
        )

    def adapter_in_use(self) -> str:
        return self.adapter

    async def aclose(self) -> None:
        # The worker finishes the round it runs (cancelled calls stop at their next chunk).
        await asyncio.to_thread(self._worker.close)

    # --- scoring -------------------------------------------------------------------------

    async def score(
        self,
        requests: Sequence[ScoreRequest],
        progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[RangeLogprobs]:
        for index, request in enumerate(requests):
            length = len(request.token_ids)
            if length > self.context_length:
                raise BackendRejected(
                    f"prompt of {length} tokens exceeds the model's context "
                    f"length of {self.context_length}"
                )
            for start, end in request.ranges:
                if not 1 <= start < end <= length:
                    raise ValueError(
                        f"request {index}: range [{start}, {end}) is outside "
                        f"1 <= start < end <= {length}"
                    )
        return await self._worker.score(list(requests), progress, should_stop)

    def _run_round(self, jobs: list[ScoreJob]) -> None:
        """Score every request of `jobs` (worker thread); ends every job's future."""
        import torch

        results: dict[int, list[RangeLogprobs]] = {
            id(job): [[] for _ in job.requests] for job in jobs
        }
        pending = [
            passes.Row(job, index, np.asarray(request.token_ids, dtype=np.int64), request.ranges)
            for job in jobs
            for index, request in enumerate(job.requests)
            if request.ranges
        ]
        cache = self.kv_cache if self.kv_cache.budget_bytes > 0 else None
        now, later = passes.plan(pending, cache)
        totals = {id(job): 0 for job in jobs}
        for row in now + later:
            totals[id(row.job)] += row.new_tokens
        done = dict.fromkeys(totals, 0)

        def advance(row: passes.Row, tokens: int) -> None:
            self.tokens_run += tokens
            key = id(row.job)
            done[key] = min(totals[key], done[key] + tokens)
            if row.job.progress is not None:
                row.job.progress(done[key], totals[key], f"tokens {done[key]}/{totals[key]}")

        failed: dict[int, BaseException] = {}
        model = passes.PassModel(
            self.model.base_model,
            self.model.get_output_embeddings(),
            self._cache_keyword,
            next(self.model.parameters()).device,
            self._chunk_size(),
        )
        with torch.inference_mode():
            while now:
                for batch in passes.batches(now, self.batch_token_budget, self.kv_token_budget):
                    batch = [r for r in batch if id(r.job) not in failed and not r.job.stopped()]
                    if not batch:
                        continue
                    self.passes_run += 1
                    try:
                        passes.run_pass(model, batch, cache, advance)
                    except passes.PassStopped:
                        continue
                    except Exception as exc:  # fails the calls in this batch, not the others
                        log.exception("a scoring pass failed")
                        failed.update((id(r.job), exc) for r in batch)
                        continue
                    for row in batch:
                        results[id(row.job)][row.index] = row.result()
                if not later:
                    break
                now, later = passes.plan(
                    [r for r in later if id(r.job) not in failed and not r.job.stopped()], cache
                )
        for job in jobs:
            if id(job) in failed:
                job.future.set_exception(failed[id(job)])
            elif job.stopped():
                job.future.set_exception(WorkCancelled("scoring was cancelled"))
            else:
                if job.progress is not None and done[id(job)] != totals[id(job)]:
                    job.progress(totals[id(job)], totals[id(job)], "done")
                job.future.set_result(results[id(job)])

    def _chunk_size(self) -> int:
        # On the CPU, chunks bound the activations and move the progress bar. On a GPU one
        # pass keeps the fused attention kernels (measured on an H200: chunking through the
        # cache made a bfloat16 pass 5x slower).
        on_cpu = next(self.model.parameters()).device.type == "cpu"
        return self.chunk_tokens if on_cpu else 1 << 30

    # --- generation ----------------------------------------------------------------------

    async def generate(
        self,
        token_ids: Sequence[int],
        max_new_tokens: int,
        stop_token_ids: Sequence[int] = (),
        should_stop: StopCheck | None = None,
    ) -> Generation:
        if len(token_ids) + max_new_tokens > self.context_length:
            raise BackendRejected(
                f"prompt of {len(token_ids)} tokens plus {max_new_tokens} new ones exceeds the "
                f"model's context length of {self.context_length}"
            )
        ids, stops = list(token_ids), list(stop_token_ids)
        return await self._worker.call(
            lambda stopped: self._generate_blocking(ids, max_new_tokens, stops, stopped),
            should_stop,
        )

    def _generate_blocking(
        self,
        token_ids: list[int],
        max_new_tokens: int,
        stop_token_ids: list[int],
        stopped: StopCheck,
    ) -> Generation:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), stopped(), dtype=torch.bool)

        with torch.inference_mode():
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
                stopping_criteria=StoppingCriteriaList([_Stop()]),
            )
        if stopped():
            raise WorkCancelled("generation was cancelled")
        new = [int(t) for t in output[0, len(token_ids) :].tolist()]
        while new and new[-1] in stops:
            new.pop()
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Generation(text=text.strip(), token_count=len(new), adapter=self.adapter)

    # --- adapters ------------------------------------------------------------------------

    async def load_adapter(self, path: str, name: str) -> str:
        if path:
            folder = Path(path).expanduser()
            try:
                exists = folder.exists()
            except (OSError, ValueError) as exc:  # a name too long, a NUL byte, ...
                raise InvalidAdapter(f"{path[:200]!r} is not a usable path: {exc}") from exc
            if not exists:
                raise AdapterNotFound(f"adapter folder {path!r} does not exist")
            if not (folder / "adapter_config.json").is_file():
                raise InvalidAdapter(
                    f"{path!r} is not a peft adapter folder (it has no adapter_config.json)"
                )
            name = name or folder.name
        else:
            name = ""
        return await self._worker.call(lambda _: self._switch_adapter(path, name))

    def _switch_adapter(self, path: str, name: str) -> str:
        """Between rounds (worker thread): unload the adapter in use, load the new one."""
        previous_path, previous_name = self._adapter_path, self.adapter
        self._strip_adapter()
        self.kv_cache.clear()
        self.adapter, self._adapter_path = "", ""
        if not path:
            return ""
        try:
            self._inject(path)
        except Exception as exc:
            self._strip_adapter()
            if previous_path:
                self._inject(previous_path)
                self.adapter, self._adapter_path = previous_name, previous_path
            raise InvalidAdapter(f"cannot load adapter {path!r}: {exc}") from exc
        self.adapter, self._adapter_path = name, path
        log.info("serving adapter %s from %s", name, path)
        return name

    def _inject(self, path: str) -> None:
        from peft import PeftModel

        # PeftModel injects LoRA layers into self.model's modules in place; self.model keeps
        # serving (through base_model and the output embeddings) with them active.
        PeftModel.from_pretrained(self.model, path, is_trainable=False)
        self.model.eval()

    def _strip_adapter(self) -> None:
        """Put every base layer back where a LoRA layer wraps it (exactly the base model)."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        for name, module in list(self.model.named_modules()):
            if isinstance(module, BaseTunerLayer) and name:
                parent_name, _, child = name.rpartition(".")
                parent = self.model.get_submodule(parent_name) if parent_name else self.model
                setattr(parent, child, module.get_base_layer())
        if hasattr(self.model, "peft_config"):
            del self.model.peft_config
