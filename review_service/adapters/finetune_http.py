"""The fine-tuning endpoint over HTTP (httpx), as documented in the README.

Invariant: a reply counts as trained only when the endpoint's 2xx answer names its
idempotency key in `accepted`. Everything else (a timeout, a refused connection, a 5xx
after the last try, a 4xx, a malformed answer) raises `EndpointError` with a reason a person
can act on, and the caller keeps those candidates approved. Retrying is safe because every
example carries its reply's idempotency key, which the endpoint must honour.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from review_service.adapters.job_http import HeadersFor, no_headers
from review_service.domain.errors import EndpointError
from review_service.domain.ports import EndpointReply

_BACKOFF_START = 0.2
_BACKOFF_MAX = 2.0


@dataclass(frozen=True)
class FinetuneAuth:
    """Which bearer token goes to which fine-tuning URL.

    `token` (--finetune-token-file or $FTREVIEW_FINETUNE_TOKEN) goes to any URL. Without it,
    the trainer that `ftreview serve` started (the default URL) gets the Review's own token,
    as the Scorer does: one deployment, one token. A user's own endpoint never gets the
    Review's token unless it is also given as `token`.
    """

    token: str | None = None
    default_url: str = ""
    own_token: str | None = None

    def headers(self, url: str) -> dict[str, str]:
        token = self.token or (self.own_token if url and url == self.default_url else None)
        return {"Authorization": f"Bearer {token}"} if token else {}


class HttpFinetuneEndpoint:
    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        headers_for: HeadersFor = no_headers,
    ) -> None:
        self._client = httpx.AsyncClient(transport=transport)
        self._headers_for = headers_for

    async def close(self) -> None:
        await self._client.aclose()

    async def post(
        self, url: str, body: dict[str, Any], timeout: float, retries: int
    ) -> EndpointReply:
        delay = _BACKOFF_START
        reason = ""
        for attempt in range(retries + 1):
            if attempt:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
            try:
                response = await self._client.post(
                    url, json=body, timeout=timeout, headers=self._headers_for(url)
                )
            except httpx.TimeoutException:
                reason = f"{url} did not answer within {timeout:g}s"
                continue
            except httpx.ConnectError as error:
                reason = f"cannot connect to {url}: {error or 'connection refused'}"
                continue
            except httpx.TransportError as error:
                reason = f"{url}: {type(error).__name__}: {error}"
                continue
            if response.status_code >= 500:
                reason = f"{url} answered {response.status_code}: {_excerpt(response)}"
                continue
            if response.status_code >= 400:
                raise EndpointError(
                    f"{url} refused the request ({response.status_code}): {_excerpt(response)}"
                )
            return _reply(url, response)
        tries = retries + 1
        raise EndpointError(f"{reason} (after {tries} {'try' if tries == 1 else 'tries'})")


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason_phrase


def _reply(url: str, response: httpx.Response) -> EndpointReply:
    try:
        data = response.json()
    except ValueError as error:
        raise EndpointError(f"{url} answered {response.status_code} without JSON") from error
    if not isinstance(data, dict):
        raise EndpointError(f"{url} answered with {type(data).__name__}, expected an object")
    accepted = data.get("accepted", [])
    rejected = data.get("rejected", [])
    if not isinstance(accepted, list) or not isinstance(rejected, list):
        raise EndpointError(f"{url}: `accepted` and `rejected` must be lists")
    reasons: dict[str, str] = {}
    for item in rejected:
        if isinstance(item, dict) and isinstance(item.get("idempotency_key"), str):
            reasons[item["idempotency_key"]] = str(item.get("reason") or "rejected")
    return EndpointReply(
        job_id=str(data.get("job_id") or ""),
        accepted={key for key in accepted if isinstance(key, str)},
        rejected=reasons,
    )
