"""API function: HTTP API (payload 2.0) -> Powertools resolver -> JobService, for the caller the authorizer names."""

from __future__ import annotations

# First: the garbage collector pauses while the imports below run (coldinit.done(), the last line, resumes it).
from jobq.handlers import coldinit

# isort: split
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths

from jobq import __version__
from jobq.caching import per_process
from jobq.domain import errors
from jobq.domain.documents import (
    DeadLetterDocument,
    DeadLetterPageDocument,
    JobDocument,
    JobListDocument,
    JobPageDocument,
    JobTypeListDocument,
    RedriveDocument,
    RedriveItem,
    RedriveRequest,
    SubmitBatchRequest,
    SubmitJobRequest,
)
from jobq.domain.identity import Caller
from jobq.domain.models import JobStatus, ListQuery
from jobq.domain.redrive import Redriver
from jobq.domain.registry import JobRegistry
from jobq.domain.service import JobService
from jobq.handlers.http import doc, json_response, parse_json_object, register_error_mapping, treat_body_as_json
from jobq.handlers.identity import caller_of
from jobq.handlers.openapi import JobqResolver
from jobq.observability import instrument
from jobq.settings import get_api_settings
from jobq.wiring import get_idempotency_gate, get_job_service, get_redriver, get_registry

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@dataclass(frozen=True)
class ApiDependencies:
    """What the routes use, each built on first use."""

    service: Callable[[], JobService]
    redriver: Callable[[], Redriver]
    max_body_bytes: Callable[[], int]
    admins: Callable[[], frozenset[str]]
    registry: Callable[[], JobRegistry] = get_registry


IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Same key and body: the same result, nothing sent again; same key, other body: 409.",
    ),
]


SIGNED = {
    401: doc("No authenticated caller (JWT mode: the token is missing or invalid)"),
    403: doc("API Gateway refused the caller: a bad signature, or IAM does not allow the call"),
}
"""What every authenticated route may answer before its own code runs (API Gateway's authorizer)."""


def signed(responses: dict[int, OpenAPIResponse]) -> dict[int, OpenAPIResponse]:
    """``responses`` plus the authorizer's; a route's own 403 description comes first."""
    merged = dict(SIGNED) | responses
    if 403 in responses:
        merged[403] = doc(f"{responses[403]['description']}; or API Gateway refused the caller (bad signature, IAM)")
    return merged


def build_app(deps: ApiDependencies) -> JobqResolver:
    """The HTTP API: routes, validation, OpenAPI document, and the single error mapping."""
    app = JobqResolver(
        registry=deps.registry,
        enable_validation=True,
        json_body_deserializer=lambda text: parse_json_object(deps.max_body_bytes())(text),  # noqa: PLW0108 - read on first use
    )
    service = deps.service

    def caller() -> Caller:
        """Who calls, as the authorizer in front of the API vouched (401 if none did)."""
        found = caller_of(app.current_event.raw_event, deps.admins())
        if found is None:
            raise errors.UnauthenticatedError("the request carries no authenticated identity")
        return found

    @app.post(
        "/jobs",
        summary="Submit a job",
        responses=signed(
            {
                202: doc("Accepted; poll `status_url` (also in the Location header)", JobDocument),
                400: doc("Body is not a JSON object"),
                413: doc("Body over the size limit"),
                200: doc(
                    "The job an earlier request with the same Idempotency-Key created (nothing new sent)", JobDocument
                ),
                409: doc("Idempotency-Key reused with a different request, or its first request still in progress"),
                422: doc("Invalid fields, unknown job type, or payload invalid for the type"),
                503: doc("Queue or table unavailable; nothing was enqueued"),
            }
        ),
    )
    def submit_job(
        request: Annotated[SubmitJobRequest, Body()], idempotency_key: IdempotencyKey = None
    ) -> Response[JobDocument]:
        if idempotency_key is None:
            job, created = service().submit(request, caller()), True
        else:
            job, created = service().submit_once(request, idempotency_key, caller())
        status = HTTPStatus.ACCEPTED if created else HTTPStatus.OK
        return json_response(status, JobDocument.of(job), {"Location": job.status_url})

    @app.post(
        "/jobs/batch",
        summary="Submit up to 25 jobs, all or none",
        responses=signed(
            {
                202: doc("Accepted: the jobs, in request order", JobListDocument),
                200: doc("The jobs an earlier request with the same Idempotency-Key created", JobListDocument),
                400: doc("Body is not a JSON object"),
                409: doc("Idempotency-Key reused with a different request, or its first request still in progress"),
                413: doc("Body over the size limit, or a job too large to store"),
                422: doc("Invalid fields, or invalid jobs: `details` names each by its index; none was submitted"),
                503: doc("Queue or table unavailable; no job of the batch was left behind"),
            }
        ),
    )
    def submit_jobs(
        request: Annotated[SubmitBatchRequest, Body()], idempotency_key: IdempotencyKey = None
    ) -> Response[JobListDocument]:
        if idempotency_key is None:
            jobs, created = service().submit_batch(request.jobs, caller()), True
        else:
            jobs, created = service().submit_batch_once(request.jobs, idempotency_key, caller())
        document = JobListDocument(items=[JobDocument.of(job) for job in jobs])
        return json_response(HTTPStatus.ACCEPTED if created else HTTPStatus.OK, document)

    @app.get(
        "/jobs",
        summary="List jobs, newest first",
        responses=signed(
            {
                200: doc("A page of jobs", JobPageDocument),
                400: doc("Bad status, limit or cursor"),
                503: doc("Table unavailable"),
            }
        ),
    )
    def list_jobs(
        status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
        type: Annotated[str | None, Query(max_length=64, description="Only jobs of this type")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=4096, description="`next_cursor` of the last page")] = None,
        owner: Annotated[
            str | None, Query(min_length=1, max_length=2048, description="Admins: only this owner's jobs")
        ] = None,
    ) -> Response[JobPageDocument]:
        query = ListQuery(status=status, type=type, owner=owner, limit=limit, cursor=cursor)
        page = service().list(query, caller())
        document = JobPageDocument(items=[JobDocument.of(job) for job in page.items], next_cursor=page.next_cursor)
        return json_response(HTTPStatus.OK, document)

    @app.get(
        "/jobs/<job_id>",
        summary="Read a job",
        responses=signed({200: doc("The job", JobDocument), 404: doc("No such job"), 503: doc("Table unavailable")}),
    )
    def get_job(job_id: str) -> Response[JobDocument]:
        return json_response(HTTPStatus.OK, JobDocument.of(service().get(job_id, caller())))

    @app.post(
        "/jobs/<job_id>/cancel",
        summary="Cancel a job",
        responses=signed(
            {
                200: doc("Cancelled (it was queued)", JobDocument),
                202: doc(
                    "Still running, with `cancel_requested`: the handler stops at its next progress check", JobDocument
                ),
                404: doc("No such job"),
                409: doc("Already succeeded, failed or cancelled"),
                503: doc("Table unavailable"),
            }
        ),
    )
    def cancel_job(job_id: str) -> Response[JobDocument]:
        job = service().cancel(job_id, caller())
        status = HTTPStatus.OK if job.status is JobStatus.CANCELLED else HTTPStatus.ACCEPTED
        return json_response(status, JobDocument.of(job))

    @app.post(
        "/jobs/<job_id>/retry",
        summary="Run a failed or cancelled job again",
        responses=signed(
            {
                202: doc("Queued again", JobDocument),
                404: doc("No such job"),
                409: doc("Not failed or cancelled"),
                503: doc("Queue or table unavailable"),
            }
        ),
    )
    def retry_job(job_id: str) -> Response[JobDocument]:
        job = service().retry(job_id, caller())
        return json_response(HTTPStatus.ACCEPTED, JobDocument.of(job), {"Location": job.status_url})

    @app.get(
        "/dlq",
        summary="List the dead-letter queue (admins)",
        responses=signed(
            {
                200: doc("Messages and their jobs", DeadLetterPageDocument),
                403: doc("Not an admin"),
                503: doc("Queue or table unavailable"),
            }
        ),
    )
    def list_dead_letters() -> Response[DeadLetterPageDocument]:
        redriver = deps.redriver()
        views = redriver.list(caller())
        items = [
            DeadLetterDocument(
                message_id=view.letter.message_id,
                body=view.letter.body,
                job=None if view.job is None else JobDocument.of(view.job),
            )
            for view in views
        ]
        return json_response(HTTPStatus.OK, DeadLetterPageDocument(items=items, more=len(views) >= redriver.limit))

    @app.post(
        "/dlq/redrive",
        summary="Queue the dead-lettered jobs again (admins)",
        responses=signed(
            {
                200: doc("What the redrive did", RedriveDocument),
                400: doc("Body is not a JSON object"),
                403: doc("Not an admin"),
                413: doc("Body over the size limit"),
                422: doc("Invalid fields"),
                503: doc("Queue or table unavailable"),
            }
        ),
    )
    def redrive_dead_letters(request: Annotated[RedriveRequest, Body()]) -> Response[RedriveDocument]:
        report = deps.redriver().redrive(caller(), request.job_id)
        document = RedriveDocument(
            redriven=report.redriven,
            dropped=[RedriveItem(key=key, reason=why) for key, why in report.dropped],
            kept=[RedriveItem(key=key, reason=why) for key, why in report.kept],
            more=report.more,
        )
        return json_response(HTTPStatus.OK, document)

    @app.get(
        "/types",
        summary="List the job types",
        responses=signed({200: doc("Every registered job type and its payload schema", JobTypeListDocument)}),
    )
    def list_job_types() -> Response[JobTypeListDocument]:
        caller()
        return json_response(HTTPStatus.OK, JobTypeListDocument(items=service().job_types()))

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_document() -> Response[Any]:
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=app.get_openapi_json_schema(title="jobq", version=__version__),
        )

    app.enable_swagger_on_first_use(path="/docs", title="jobq", version=__version__)
    register_error_mapping(app)
    return app


@per_process
def _entrypoint() -> Callable[[Mapping[str, Any], LambdaContext], dict[str, Any]]:
    app = build_app(
        ApiDependencies(
            service=get_job_service,
            redriver=get_redriver,
            max_body_bytes=lambda: get_api_settings().max_body_bytes,
            admins=lambda: get_api_settings().admins,
        )
    )

    def handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        get_idempotency_gate().register_lambda_context(context)
        return app.resolve(treat_body_as_json(event), context)

    return instrument(handle, correlation_id_path=correlation_paths.API_GATEWAY_HTTP)


def lambda_handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point of the API function."""
    return _entrypoint()(event, context)


coldinit.done()
