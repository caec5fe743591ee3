"""The gateway's error tree and its one JSON shape.

Every error a client can see is a `GatewayError` (or is translated into one at the edge) and is
rendered as ``{"error": {"code", "message", "details"}, "requestId"}`` with the error's status.

    GatewayError                      fixed status and code per subclass
    ├── BadRequest (400)              VALIDATION_ERROR; details name the field path and the rule
    ├── Unauthorized (401)
    ├── PaymentRequired (402)         INSUFFICIENT_FUNDS; details carry required vs available
    ├── Forbidden (403)
    ├── NotFound (404)
    ├── MethodNotAllowed (405)
    ├── Conflict (409)
    ├── Gone (410)
    ├── PayloadTooLarge (413)
    ├── TooManyRequests (429)         carries Retry-After
    ├── NotImplementedYet (501)
    └── ServiceUnavailable (503)      e.g. MODEL_UNAVAILABLE
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}
        self.headers = headers or {}

    def to_body(self, request_id: str | None) -> dict[str, Any]:
        return {
            "error": {"code": self.code, "message": self.message, "details": self.details},
            "requestId": request_id,
        }


class BadRequest(GatewayError):
    status = 400
    code = "VALIDATION_ERROR"


class Unauthorized(GatewayError):
    status = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="killa"'})
        super().__init__(message, **kwargs)


class PaymentRequired(GatewayError):
    status = 402
    code = "INSUFFICIENT_FUNDS"


class Forbidden(GatewayError):
    status = 403
    code = "FORBIDDEN"


class NotFound(GatewayError):
    status = 404
    code = "NOT_FOUND"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(GatewayError):
    status = 409
    code = "CONFLICT"


class Gone(GatewayError):
    status = 410
    code = "GONE"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class TooManyRequests(GatewayError):
    status = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after_seconds: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after_seconds))})
        kwargs.setdefault("details", {"retryAfterSeconds": max(1, retry_after_seconds)})
        super().__init__(message, **kwargs)


class NotImplementedYet(GatewayError):
    status = 501
    code = "NOT_IMPLEMENTED"


class ServiceUnavailable(GatewayError):
    status = 503
    code = "SERVICE_UNAVAILABLE"
