"""Scoring on an upstream vLLM OpenAI server (`POST /v1/completions` with `prompt_logprobs`).

Invariant: a number handed back is the log-probability of the token that was sent at that
position, or the call fails. Upstream vLLM returns every prompt position, keyed by token id;
this adapter checks the length and the token id of every position it reads before slicing
the requested ranges, because a proxy or a server that silently re-tokenized or truncated the
prompt would otherwise produce plausible, wrong divergences. vLLM clamps -inf to -9999.0 (its
JSON encoder refuses non-finite floats); the clamp is undone here so that the port keeps
-inf.

`VllmServerBackend` holds what every vLLM-speaking engine shares (model resolution, info,
greedy generation, concurrency and progress of a `score` call); an engine variant only says
how one prompt is scored (see `vllm_score.py`).

Engines restart. A restarted vLLM has lost the LoRA adapters loaded at run time and answers
404 "The model 'v1' does not exist" for the adapter's name; the adapter is then loaded again
(once, whichever request noticed first) and the request sent again. vLLM with `--enable-lora`
can fail prompt-logprobs requests batched together (vllm-project/vllm #16668: its engine
answers 500, and may die); a call whose concurrent variants fail with an engine's 5xx
switches that engine to one scoring request at a time for good. Both are logged once and
listed in `BackendInfo.notes`.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import PurePosixPath
from typing import TypeVar

import httpx

from scorer_service.backends.base import (
    BackendInfo,
    Generation,
    ProgressCallback,
    RangeLogprobs,
    ScoreRequest,
    ScoringBackend,
    StopCheck,
)
from scorer_service.backends.http import EngineClient
from scorer_service.backends.vllm_wire import (
    adapter_missing,
    check_ranges,
    expect_int,
    expect_list,
    expect_object,
    first_choice,
    lora_disabled,
    ranges_from_prompt_logprobs,
)
from scorer_service.errors import (
    BackendProtocolError,
    BackendRejected,
    BackendUnavailable,
    InvalidAdapter,
    WorkCancelled,
)

log = logging.getLogger("scorer_service.engine")

_T = TypeVar("_T")


class VllmServerBackend(ScoringBackend):
    """What all vLLM-speaking engines share; subclasses say how one prompt is scored."""

    def __init__(
        self,
        urls: Sequence[str],
        model: str | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._engine = EngineClient(
            urls,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            backoff=backoff,
            transport=transport,
        )
        self._requested_model = model
        self._info: BackendInfo | None = None
        self._info_lock = asyncio.Lock()
        # The LoRA adapter requests name as their model ("": the base model), and its folder.
        self._adapter = ""
        self._adapter_path = ""
        # Times the adapter was loaded again into an engine that had lost it.
        self._reloads = 0
        self._reload_lock = asyncio.Lock()
        # Set once concurrent scoring requests failed with the engine's 5xx (vLLM #16668):
        # from then on one scoring request at a time goes to the engine.
        self._one_at_a_time = False
        self._serial = asyncio.Lock()
        # What the Scorer noticed about the engine and does about it, for GetInfo.
        self._notes: list[str] = []

    # Engines that fail batched prompt-logprobs requests (vLLM's LoRA bug) are scored one at
    # a time once noticed; an engine without that bug says False.
    serial_after_batch_failure = True

    @abc.abstractmethod
    async def _score_one(self, model: str, request: ScoreRequest) -> RangeLogprobs:
        """The requested ranges of one prompt, checked against what was sent."""

    async def score(
        self,
        requests: Sequence[ScoreRequest],
        progress: ProgressCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> list[RangeLogprobs]:
        for index, request in enumerate(requests):
            check_ranges(request, f"request {index}")
        total = len(requests)
        done = 0

        async def score_and_report(index: int, request: ScoreRequest) -> RangeLogprobs:
            nonlocal done
            if should_stop is not None and should_stop():
                raise WorkCancelled("scoring was cancelled")
            if self._one_at_a_time:
                async with self._serial:
                    result = await self._as_served(lambda model: self._score_one(model, request))
            else:
                result = await self._as_served(lambda model: self._score_one(model, request))
            done += 1
            if progress is not None:
                progress(
                    done,
                    total,
                    f"{self.name}: scored prompt {index + 1} of {total} "
                    f"({len(request.token_ids)} tokens)",
                )
            return result

        async def score_all() -> list[RangeLogprobs]:
            # Concurrent, so the variants of one conversation land on different replicas.
            tasks = [
                asyncio.create_task(score_and_report(index, request))
                for index, request in enumerate(requests)
            ]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                # One failure fails the call; the other requests would only load the engine.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

        batched = not self._one_at_a_time and len(requests) > 1
        try:
            return await score_all()
        except BackendUnavailable as exc:
            if not (batched and exc.engine_answers and self.serial_after_batch_failure):
                raise
            self._score_one_at_a_time(exc)
            done = 0
            try:
                return await score_all()
            except BackendUnavailable:
                # The first failure carries the engine's own words; the engine is likely down.
                raise exc from None

    def _score_one_at_a_time(self, cause: BackendUnavailable) -> None:
        if self._one_at_a_time:
            return
        self._one_at_a_time = True
        note = (
            "scoring one request at a time: batched prompt-logprobs requests failed with the "
            f"engine's own error ({cause.engine_answers[0]}); vLLM with --enable-lora has this "
            "bug (vllm-project/vllm #16668), start it with --max-num-seqs 1"
        )
        self._notes.append(note)
        log.warning("%s", note)

    async def generate(
        self,
        token_ids: Sequence[int],
        max_new_tokens: int,
        stop_token_ids: Sequence[int] = (),
        should_stop: StopCheck | None = None,
    ) -> Generation:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        reply = await self._as_served(
            lambda model: self._engine.post_json(
                "/v1/completions",
                {
                    "model": model,
                    "prompt": list(token_ids),
                    "max_tokens": max_new_tokens,
                    "temperature": 0,
                    "top_p": 1,
                    "stop_token_ids": list(stop_token_ids),
                },
            )
        )
        choice = first_choice(reply)
        text = choice.get("text")
        if not isinstance(text, str):
            raise BackendProtocolError(f"completion has no text: {choice.get('text')!r}")
        count = expect_int(
            expect_object(reply, "completion").get("usage"), "completion_tokens", "usage"
        )
        # We send no stop strings, so "stop" means an EOS or one of stop_token_ids ended the
        # text: vLLM counts that token in completion_tokens but leaves it out of the text.
        if choice.get("finish_reason") == "stop" and count > 0:
            count -= 1
        return Generation(text=text, token_count=count, adapter=self._adapter)

    async def info(self) -> BackendInfo:
        async with self._info_lock:
            if self._info is None:
                model, context_length = await self._served_model()
                self._info = BackendInfo(
                    backend=self.name,
                    model=model,
                    context_length=context_length,
                    urls=self._engine.urls,
                )
            return dataclasses.replace(
                self._info,
                adapter=self._adapter,
                adapter_reloads=self._reloads,
                notes=list(self._notes),
            )

    def adapter_in_use(self) -> str:
        return self._adapter

    async def load_adapter(self, path: str, name: str) -> str:
        """`POST /v1/load_lora_adapter` on every replica, then the adapter's name is the model
        of every later request. The server needs `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` and
        `--enable-lora`. A name the server already holds counts as loaded (a Scorer restarted
        with `--adapter-dir` names the adapter the engine kept)."""
        if not path:
            self._adapter = self._adapter_path = ""
            return ""
        name = name or PurePosixPath(path.rstrip("/")).name
        for url in self._engine.urls:
            await self._load_on(url, path, name)
        self._adapter, self._adapter_path = name, path
        return name

    def keep_adapter(self, path: str, name: str) -> str:
        """Name adapter `name` (folder `path`) in later requests without loading it now (the
        engine is down): the first request the engine answers with "does not exist" loads it."""
        name = name or PurePosixPath(path.rstrip("/")).name
        self._adapter, self._adapter_path = (name, path) if path else ("", "")
        return self._adapter

    async def _load_on(self, url: str, path: str, name: str) -> None:
        try:
            await self._engine.post_text_to(
                url,
                "/v1/load_lora_adapter",
                {"lora_name": name, "lora_path": path},
                final=lora_disabled,
            )
        except BackendRejected as exc:
            if lora_disabled(str(exc)):
                raise BackendRejected(
                    f"the engine at {url} serves no LoRA adapters, so adapter {name!r} cannot "
                    "load: start vLLM with --enable-lora (and "
                    f"VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). The engine said: {exc}",
                    exc.status_code,
                ) from exc
            if exc.status_code == 404:
                raise BackendRejected(
                    f"{exc} (does the engine run with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True "
                    "and --enable-lora?)",
                    404,
                ) from exc
            if "already been loaded" not in str(exc):
                raise InvalidAdapter(f"the engine cannot load adapter {path!r}: {exc}") from exc

    async def _as_served(self, call: Callable[[str], Awaitable[_T]]) -> _T:
        """`call(model)` with the model requests name now; when the engine answers that the
        adapter does not exist (it restarted), the adapter is loaded again and `call` sent
        once more."""
        model = await self._model()
        reloads = self._reloads
        try:
            return await call(model)
        except BackendRejected as exc:
            if not (self._adapter and model == self._adapter and adapter_missing(str(exc), model)):
                raise
            await self._reload_adapter(reloads, str(exc))
        return await call(await self._model())

    async def _reload_adapter(self, seen: int, cause: str) -> None:
        async with self._reload_lock:
            if self._reloads != seen:  # another request loaded it meanwhile
                return
            name, path = self._adapter, self._adapter_path
            for url in self._engine.urls:
                await self._load_on(url, path, name)
            self._reloads += 1
            note = (
                f"loaded adapter {name} again ({self._reloads} time(s)): the engine had lost it, "
                f"as after a restart ({cause})"
            )
            self._notes = [n for n in self._notes if not n.startswith("loaded adapter ")]
            self._notes.append(note)
            log.warning("%s", note)

    async def aclose(self) -> None:
        await self._engine.aclose()

    async def _model(self) -> str:
        # A given name needs no round trip; otherwise the server says what it serves.
        if self._adapter:
            return self._adapter
        if self._requested_model is not None:
            return self._requested_model
        return (await self.info()).model

    async def _served_model(self) -> tuple[str, int]:
        listing = expect_object(await self._engine.get_json("/v1/models"), "/v1/models")
        entries = [
            expect_object(entry, "/v1/models data[]")
            for entry in expect_list(listing.get("data"), "/v1/models data")
        ]
        if not entries:
            raise BackendProtocolError("/v1/models lists no model")
        if self._requested_model is None:
            entry = entries[0]
        else:
            matches = [entry for entry in entries if entry.get("id") == self._requested_model]
            if not matches:
                served = ", ".join(repr(entry.get("id")) for entry in entries)
                raise BackendRejected(
                    f"model {self._requested_model!r} is not served at "
                    f"{', '.join(self._engine.urls)} (served: {served})",
                    404,
                )
            entry = matches[0]
        model = entry.get("id")
        if not isinstance(model, str) or not model:
            raise BackendProtocolError(f"/v1/models entry has no id: {entry!r}")
        return model, expect_int(entry, "max_model_len", f"/v1/models entry {model!r}")


class VllmBackend(VllmServerBackend):
    """Upstream vLLM: every prompt position comes back; the requested ranges are sliced here.

    `prompt_logprobs=0` asks for the sent token only. Very early V1 servers (0.7.x) read 0 as
    "off"; give 1 for those: the entry then also holds the top token, and the sent token is
    found by its id either way.
    """

    name = "vllm"

    def __init__(
        self,
        urls: Sequence[str],
        model: str | None = None,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        prompt_logprobs: int = 0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if prompt_logprobs < 0:
            raise ValueError(f"prompt_logprobs must be >= 0, got {prompt_logprobs}")
        super().__init__(
            urls,
            model,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retries=retries,
            backoff=backoff,
            transport=transport,
        )
        self._prompt_logprobs = prompt_logprobs

    async def _score_one(self, model: str, request: ScoreRequest) -> RangeLogprobs:
        reply = await self._engine.post_json(
            "/v1/completions",
            {
                "model": model,
                "prompt": list(request.token_ids),
                # vLLM refuses max_tokens 0 without echo; the one generated token is ignored.
                "max_tokens": 1,
                # V0 engines applied sampling settings to prompt positions too: keep them neutral.
                "temperature": 0,
                "top_p": 1,
                "prompt_logprobs": self._prompt_logprobs,
            },
        )
        return ranges_from_prompt_logprobs(request, reply)
