"""HTTP to a set of serving-engine replicas, reduced to three domain outcomes.

Invariant: a call either returns the parsed JSON body of a 2xx answer or raises exactly one
of `BackendRejected` (the engine refused: 4xx, never retried, because asking again gets the
same answer), `BackendUnavailable` (no replica answered usefully within the bounded retries)
or `BackendProtocolError` (an answer that is not JSON or not an HTTP status we expect).
Nothing httpx-specific escapes, so the Scorer maps errors to status codes without knowing
which transport it has.

A call that runs out of retries reports every attempt's error, the engines' own answers
(a 5xx with its text) before connection errors: an engine that answered 500 with its reason
and then went down must not be reported as only "cannot connect".

Requests spread over the replicas round robin. A replica that refuses the connection is
skipped in favour of the next one for the same request, without spending a retry: nothing
reached it, so nothing was lost. Timeouts and 5xx do spend a retry (with exponential backoff)
and the next attempt starts at the next replica. Retrying a POST is safe here because scoring
and greedy generation are pure functions of the request.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import httpx

from scorer_service.errors import BackendProtocolError, BackendRejected, BackendUnavailable

# An engine's error text can be a whole HTML page from a proxy; one line is enough to act on.
_MAX_ERROR_TEXT = 300


class EngineClient:
    """JSON over HTTP to one or more base URLs of the same engine (vLLM replicas)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if isinstance(urls, str):
            raise TypeError("urls must be a sequence of base URLs, not one string")
        if not urls:
            raise ValueError("at least one base URL is needed")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0, got {backoff}")
        self._urls = [base_url(url) for url in urls]
        self._retries = retries
        self._backoff = backoff
        self._turn = itertools.count()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            # Scoring replicas are usually on a private network; a proxy from the
            # environment would be a surprise, and a slow one.
            trust_env=False,
        )

    @property
    def urls(self) -> list[str]:
        return list(self._urls)

    async def get_json(self, path: str) -> Any:
        return await self._call("GET", path, None)

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return await self._call("POST", path, body)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post_text_to(
        self,
        url: str,
        path: str,
        body: Mapping[str, Any],
        *,
        final: Callable[[str], bool] | None = None,
    ) -> str:
        """POST `body` to the one replica at base URL `url` (a setting every replica must
        take, such as an adapter); the text of its 2xx answer. Fails like the other calls,
        except that a 5xx whose error text `final` accepts is a refusal (`BackendRejected`,
        not retried): an engine that answers 500 for a feature it lacks says so every time."""
        _, response = await self._send("POST", path, body, [base_url(url)], final=final)
        if not 200 <= response.status_code < 300:
            if response.status_code >= 500:
                raise BackendRejected(
                    f"{url}{path} refused the request (HTTP {response.status_code}): "
                    f"{engine_error_message(response)}",
                    response.status_code,
                )
            self._refuse(url, path, response)
        return response.text

    async def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> Any:
        url, response = await self._send(method, path, body)
        if 200 <= response.status_code < 300:
            try:
                return response.json()
            except ValueError as exc:
                raise BackendProtocolError(
                    f"{url}{path} answered HTTP {response.status_code} with a body that is "
                    f"not JSON: {_excerpt(response.text)!r}"
                ) from exc
        self._refuse(url, path, response)

    @staticmethod
    def _refuse(url: str, path: str, response: httpx.Response) -> NoReturn:
        if 400 <= response.status_code < 500:
            raise BackendRejected(
                f"{url}{path} refused the request (HTTP {response.status_code}): "
                f"{engine_error_message(response)}",
                response.status_code,
            )
        raise BackendProtocolError(
            f"{url}{path} answered with unexpected HTTP {response.status_code}: "
            f"{engine_error_message(response)}"
        )

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        urls: list[str] | None = None,
        final: Callable[[str], bool] | None = None,
    ) -> tuple[str, httpx.Response]:
        """The first answer that is not a 5xx (or is one whose text `final` accepts), with the
        URL that gave it (from `urls`, by default every replica, starting at the next in
        turn)."""
        if urls is None:
            first = next(self._turn) % len(self._urls)
            order = self._urls[first:] + self._urls[:first]
        else:
            order = urls
        failures = _Failures()
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 2))
            shift = (attempt - 1) % len(order)
            for url in order[shift:] + order[:shift]:
                try:
                    response = await self._client.request(method, url + path, json=body)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    failures.add(attempt, url, f"cannot connect ({_describe(exc)})")
                    continue
                except httpx.TimeoutException as exc:
                    failures.add(attempt, url, f"timed out ({_describe(exc)})")
                    break
                except httpx.TransportError as exc:
                    failures.add(attempt, url, f"connection failed ({_describe(exc)})")
                    break
                if response.status_code >= 500:
                    message = engine_error_message(response)
                    if final is not None and final(message):
                        return url, response
                    failures.add(
                        attempt, url, f"HTTP {response.status_code}: {message}", answered=True
                    )
                    break
                return url, response
        raise BackendUnavailable(
            f"{method} {path} failed after {attempts} attempt(s) on "
            f"{', '.join(urls or self._urls)}: {failures.describe()}",
            engine_answers=failures.answers(),
        )


class _Failures:
    """Every failed attempt of one call, told back with the engines' answers first and
    repeats folded ("cannot connect (...) (attempts 2-4)")."""

    def __init__(self) -> None:
        # (url, error) -> attempt numbers, in the order first seen; and which were answers.
        self._seen: dict[tuple[str, str], list[int]] = {}
        self._answered: set[tuple[str, str]] = set()

    def add(self, attempt: int, url: str, error: str, *, answered: bool = False) -> None:
        key = (url, error)
        numbers = self._seen.setdefault(key, [])
        if attempt not in numbers:
            numbers.append(attempt)
        if answered:
            self._answered.add(key)

    def answers(self) -> list[str]:
        return [f"{url}: {error}" for url, error in self._seen if (url, error) in self._answered]

    def describe(self) -> str:
        keys = sorted(self._seen, key=lambda key: key not in self._answered)  # stable
        return "; ".join(
            f"{url}: {error} ({_attempts(self._seen[url, error])})" for url, error in keys
        )


def _attempts(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"attempt {numbers[0]}"
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"attempts {numbers[0]}-{numbers[-1]}"
    return "attempts " + ", ".join(str(number) for number in numbers)


def base_url(url: str) -> str:
    """`url` without a trailing slash, refused early if it is not http(s): a typo should fail
    at start-up, not as a connection error on the first conversation."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"not an http(s) base URL: {url!r}")
    return url.rstrip("/")


def engine_error_message(response: httpx.Response) -> str:
    """The human part of an error answer, whichever envelope the engine uses.

    vLLM since v0.10.1 nests it (`{"error": {"message", "type", "param", "code"}}`); before,
    it was flat (`{"object": "error", "message", ...}`); FastAPI validation errors (422 in
    some versions) carry `{"detail": ...}`; proxies send HTML or plain text.
    """
    try:
        payload = response.json()
    except ValueError:
        text = _excerpt(response.text)
        return text or f"empty body (HTTP {response.status_code})"
    if isinstance(payload, dict):
        nested = payload.get("error")
        envelope = nested if isinstance(nested, dict) else payload
        message = envelope.get("message")
        if isinstance(message, str) and message:
            kind = envelope.get("type")
            param = envelope.get("param")
            details = [str(part) for part in (kind, param and f"param {param}") if part]
            return f"{message} ({', '.join(details)})" if details else message
        detail = payload.get("detail")
        if isinstance(detail, list):
            return "; ".join(
                str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                for item in detail
            )
        if isinstance(detail, str):
            return detail
    return _excerpt(response.text)


def _excerpt(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_ERROR_TEXT else line[: _MAX_ERROR_TEXT - 1] + "…"


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
