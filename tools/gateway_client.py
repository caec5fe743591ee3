"""`GatewayClient`: how every MCP tool reaches the gateway — its REST API, over httpx.

Hosted (`/mcp` in the gateway) the client runs the same Starlette app in process through
`httpx.ASGITransport`, with the caller's bearer key; under `killa mcp` (stdio) it talks to
`KILLA_API_URL` with the key `killa login` stored. Either way a tool call passes the same
validation, auth, rate limits and ledger code as a REST call.

A gateway error becomes a `GatewayCallError`, a `ToolError` whose message is the gateway's own plus
what to do next, so the model sees it in an `isError` result and can act on it:

    ToolError
    └── GatewayCallError          status and code of the gateway's answer
        └── (status 0)            the gateway could not be reached at all
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
from mcp.server.mcpserver.exceptions import ToolError

from backend.ledger.money import format_usd

ApiKeySource = Callable[[], str | None]
TransportFactory = Callable[[], httpx.AsyncBaseTransport]

DEFAULT_TIMEOUT_SECONDS = 60.0
# Tools present the task's fields flat; the gateway names them inside the request envelope.
_INPUT_PREFIX = "input."


class GatewayCallError(ToolError):
    """A gateway answer other than 2xx (or no answer: status 0), told as what to do next."""

    def __init__(self, message: str, *, status: int, code: str, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class GatewayClient:
    """One httpx client per open; `async with` it (nested opens share the connection pool).

    `api_key` is asked on every call, so a key stored by `killa login` while the server runs is
    picked up; `sign_in_hint` tells the model how the user gets a working key.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: ApiKeySource,
        sign_in_hint: str,
        transport: TransportFactory | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._sign_in_hint = sign_in_hint
        self._transport = transport
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._opens = 0

    async def __aenter__(self) -> Self:
        if self._opens == 0:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                transport=self._transport() if self._transport else None,
                timeout=self._timeout,
                headers={"User-Agent": "killa-mcp"},
            )
        self._opens += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._opens -= 1
        if self._opens == 0 and self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    # --- the REST calls the tools make --------------------------------------------------------

    async def balance(self) -> dict[str, Any]:
        return await self._call("GET", "/api/v1/balance")

    async def packages(self) -> dict[str, Any]:
        return await self._call("GET", "/api/v1/packages", authenticated=False)

    async def quote(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/api/v1/media/jobs/quote", json=body)

    async def submit(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/api/v1/media/jobs", json=body)

    async def job(self, job_id: str, *, include_details: bool = False) -> dict[str, Any]:
        params = {"jobId": job_id, "includeDetails": "true" if include_details else "false"}
        return await self._call("GET", "/api/v1/media/jobs", params=params)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._call("POST", "/api/v1/media/jobs/cancel", json={"jobId": job_id})

    async def jobs(self, params: Mapping[str, str]) -> dict[str, Any]:
        return await self._call("GET", "/api/v1/media/jobs/list", params=params)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # --- plumbing -----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        authenticated: bool = True,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        if self._http is None:
            raise RuntimeError("GatewayClient is not open: use `async with client:`")
        headers = {}
        if authenticated:
            key = self._api_key()
            if not key:
                raise GatewayCallError(
                    f"No Killa Tamata API key. {self._sign_in_hint}",
                    status=401,
                    code="API_KEY_MISSING",
                )
            headers["Authorization"] = f"Bearer {key}"
        try:
            response = await self._http.request(
                method, path, json=json, params=params, headers=headers
            )
        except httpx.HTTPError as exc:
            raise GatewayCallError(
                f"Cannot reach the Killa Tamata gateway at {self.base_url} ({exc!r}). Check that "
                "it is running and that KILLA_API_URL points at it, then retry.",
                status=0,
                code="GATEWAY_UNREACHABLE",
            ) from exc
        if response.is_success:
            body: dict[str, Any] = response.json()
            return body
        raise self._error(response)

    def _error(self, response: httpx.Response) -> GatewayCallError:
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
            details: dict[str, Any] = error.get("details") or {}
        except (ValueError, KeyError, TypeError):
            code, message, details = f"HTTP_{response.status_code}", response.text[:300], {}
        request_id = response.headers.get("x-request-id")
        status = response.status_code
        retry_after = None
        if status == 400 and details.get("errors"):
            message = "Invalid arguments: " + "; ".join(
                f"{_argument_name(e['field'])}: {e['message']}" for e in details["errors"]
            )
            message += ". Fix them and call the tool again."
        elif status == 401:
            message += f" {self._sign_in_hint}"
        elif status == 402 and "requiredMicros" in details:
            message = (
                f"Insufficient balance: this costs {usd(details['requiredMicros'])}"
                f" but only {usd(details['availableMicros'])} is available. "
                f"Nothing was charged. Buy credits (packages_list shows the packages; see "
                f"{self.url('/api/v1/packages')}), then retry."
            )
        elif status == 404 and code == "JOB_NOT_FOUND":
            message += " jobs_list shows the jobs on this account."
        elif status == 429:
            retry_after = float(response.headers.get("retry-after", "1"))
            message += f" Wait {retry_after:g} s before the next call."
        elif code == "MODEL_UNAVAILABLE":
            message += " Do not retry: tell the user this server cannot run it."
        elif status >= 500:
            message = (
                f"The gateway failed ({code}, request id {request_id}): {message} "
                "Retry later; if it persists, report the request id."
            )
        return GatewayCallError(
            f"{message} [{code}]", status=status, code=code, retry_after=retry_after
        )


def usd(micros: int) -> str:
    """`400000` -> `"$0.40"`, `2000` -> `"$0.002"`: cents, or every digit a smaller price has."""
    whole, fraction = format_usd(micros).split(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def _argument_name(field: str) -> str:
    return field.removeprefix(_INPUT_PREFIX)
