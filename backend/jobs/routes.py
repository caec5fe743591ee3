"""`/api/v1/media/jobs*` (the spec's two plus the documented extensions) and job output links."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from backend.http.auth import require_principal
from backend.http.bodies import parse_body, read_json
from backend.http.context import app_context
from backend.http.responses import JSONResponse
from backend.jobs.callbacks import signing_secret
from backend.jobs.runtime import jobs_runtime
from backend.jobs.schemas import CancelJobRequest, ListJobsQuery, StatusQuery
from backend.jobs.service import jobs


async def submit_job(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    body = await read_json(request)
    submitted = await jobs.submit(
        app_context(request).db,
        jobs_runtime(request),
        principal,
        body,
        idempotency_header=request.headers.get("idempotency-key"),
    )
    headers = {"Idempotent-Replayed": "true"} if submitted.replayed else None
    return JSONResponse(submitted.body, status_code=submitted.status_code, headers=headers)


async def job_status(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    query = StatusQuery.from_query(request.query_params)
    body = await jobs.status(
        app_context(request).db,
        jobs_runtime(request),
        principal,
        query.job_id,
        include_details=query.include_details,
    )
    return JSONResponse(body)


async def quote_job(request: Request) -> JSONResponse:
    await require_principal(request)
    body = await read_json(request)
    return JSONResponse(await jobs.quote(app_context(request).db, jobs_runtime(request), body))


async def cancel_job(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    body = await parse_body(request, CancelJobRequest)
    status = await jobs.cancel(
        app_context(request).db, jobs_runtime(request), principal, body.job_id
    )
    return JSONResponse(status)


async def list_jobs(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    query = ListJobsQuery.from_query(request.query_params)
    page = await jobs.page(
        app_context(request).db,
        jobs_runtime(request),
        principal,
        limit=query.limit,
        cursor=query.cursor,
        status=query.status,
        task=query.task,
    )
    return JSONResponse(page)


async def callback_secret(request: Request) -> JSONResponse:
    principal = await require_principal(request)
    secret = signing_secret(app_context(request).settings.resolved_secret_key, principal.account_id)
    return JSONResponse(
        {
            "ok": True,
            "signingSecret": secret,
            "scheme": "Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature (v1)",
        }
    )


async def job_output(request: Request) -> Response:
    url = await jobs.output_redirect(
        app_context(request).db,
        jobs_runtime(request),
        token=request.path_params["token"],
        name=request.path_params["name"],
    )
    return RedirectResponse(url, status_code=307)


async def capabilities(request: Request) -> JSONResponse:
    rows = jobs_runtime(request).registry.availability()
    return JSONResponse(
        {
            "ok": True,
            "tasks": [
                {
                    "task": row.task,
                    "available": row.present,
                    "engine": row.family,
                    "device": row.device,
                    "reason": None if row.present else "no model is installed for this task",
                }
                for row in rows
            ],
        }
    )


routes = [
    Route("/api/v1/media/jobs", submit_job, methods=["POST"]),
    Route("/api/v1/media/jobs", job_status, methods=["GET"]),
    Route("/api/v1/media/jobs/quote", quote_job, methods=["POST"]),
    Route("/api/v1/media/jobs/cancel", cancel_job, methods=["POST"]),
    Route("/api/v1/media/jobs/list", list_jobs, methods=["GET"]),
    Route("/api/v1/media/jobs/callback-secret", callback_secret, methods=["GET"]),
    Route("/api/v1/capabilities", capabilities, methods=["GET"]),
    Route("/outputs/{token}/{name}", job_output, methods=["GET"]),
]
