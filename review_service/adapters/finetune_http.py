"""The fine-tuning endpoint over HTTP (httpx), as documented in the README.

Invariant: a reply counts as trained only when the endpoint's 2xx answer names its
idempotency key in `accepted`; a retraction counts as told on a 2xx answer of
`POST {url}/retract`, or when the endpoint has no such route (404, 405, 501: it keeps no
knowledge), never on anything else. Everything else (a timeout, a refused connection, a 5xx
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
from review_service.domain.ports import EndpointReply, RetractReply

_BACKOFF_START = 0.2
_BACKOFF_MAX = 2.0
# A route that is not there: the endpoint does not have it (same as the jobs route's).
_ABSENT = (404, 405, 501)


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
        response = await self._exchange(url, body, timeout, retries)
        assert response is not None  # only a route that may be absent answers None
        return _reply(url, response)

    async def retract(
        self, url: str, keys: dict[str, str], timeout: float, retries: int
    ) -> RetractReply:
        route = f"{url.rstrip('/')}/retract"
        body = {"retract": [{"idempotency_key": k, "reason": why} for k, why in keys.items()]}
        response = await self._exchange(route, body, timeout, retries, may_be_absent=True)
        if response is None:
            return RetractReply(supported=False)
        data = _object(route, response)
        retracted, unknown = data.get("retracted", []), data.get("unknown", [])
        if not isinstance(retracted, list) or not isinstance(unknown, list):
            raise EndpointError(f"{route}: `retracted` and `unknown` must be lists")
        return RetractReply(
            supported=True,
            retracted={k for k in retracted if isinstance(k, str)},
            unknown={k for k in unknown if isinstance(k, str)},
            job_id=str(data.get("job_id") or ""),
        )

    async def _exchange(
        self, url: str, body: dict[str, Any], timeout: float, retries: int,
        may_be_absent: bool = False,
    ) -> httpx.Response | None:  # fmt: skip
        """The 2xx answer to a POST, retried on timeouts, refused connections and 5xx;
        None when `may_be_absent` and the route is not there (404, 405, 501)."""
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
            if may_be_absent and response.status_code in _ABSENT:
                return None
            if response.status_code >= 500:
                reason = f"{url} answered {response.status_code}: {_excerpt(response)}"
                continue
            if response.status_code >= 400:
                raise EndpointError(
                    f"{url} refused the request ({response.status_code}): {_excerpt(response)}"
                )
            return response
        tries = retries + 1
        raise EndpointError(f"{reason} (after {tries} {'try' if tries == 1 else 'tries'})")


def _excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:200] or response.reason_phrase


def _object(url: str, response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as error:
        raise EndpointError(f"{url} answered {response.status_code} without JSON") from error
    if not isinstance(data, dict):
        raise EndpointError(f"{url} answered with {type(data).__name__}, expected an object")
    return data


def _reply(url: str, response: httpx.Response) -> EndpointReply:
    data = _object(url, response)
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
