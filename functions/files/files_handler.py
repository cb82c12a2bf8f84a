"""HTTP API for the caller's finished files: list, fetch (a download link once valid), delete.

A function of its own so that its role, which signs the download links, is NOT exempt from the
bucket's read gate: a link it hands out for an object not tagged valid is refused by S3 itself.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Depends, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from files_models import FileOut, FilesOut
from upload_core.files import MAX_PAGE, FileService
from upload_core.observability import logger, metrics, tracer
from upload_core.registry import FileStatus
from upload_core.settings import get_settings
from upload_edge import openapi as docs
from upload_edge.identity import caller_id
from upload_edge.providers import Lazy
from upload_edge.resolver import http_resolver

settings = get_settings()  # fail at start, not on the first request, when a setting is wrong
app = http_resolver()

# The container's one service; tests replace it with app.dependency_overrides.
file_service = Lazy(lambda: FileService(settings))

Caller = Annotated[str, Depends(caller_id)]
Service = Annotated[FileService, Depends(file_service)]
# A fileId is 32 hex digits; any other id of a sane length is simply no file of the caller's (404).
FileId = Annotated[str, Path(min_length=1, max_length=64)]
NO_SUCH_FILE = {404: docs.error("No such file among the caller's (another owner's file is 404 too)")}


@app.get(
    "/files",
    summary="List the caller's files, newest first",
    responses=docs.responses(200, FilesOut, "One page of the caller's files"),
)
def list_files(
    caller: Caller,
    service: Service,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    status: Annotated[Literal["pending", "valid", "rejected"] | None, Query()] = None,
) -> FilesOut:
    wanted = FileStatus(status) if status else None
    return FilesOut.of(service.list(caller, limit=limit, cursor=cursor, status=wanted))


@app.get(
    "/files/<fileId>",
    summary="One of the caller's files; a download link when it is valid",
    responses=docs.responses(
        200,
        FileOut,
        "The file, with `download` (an attachment link for a few minutes)",
        NO_SUCH_FILE,
        {409: docs.error("NotValidated: the validator has not judged the file yet")},
        {410: docs.error("Rejected: the validator rejected the file; there is nothing to download")},
    ),
)
def get_file(fileId: FileId, caller: Caller, service: Service) -> FileOut:
    return FileOut.of(service.get(caller, fileId))


@app.get(
    "/files/<fileId>/status",
    summary="One of the caller's files, whatever its status, without a link",
    responses=docs.responses(200, FileOut, "The file and its verdict", NO_SUCH_FILE),
)
def file_status(fileId: FileId, caller: Caller, service: Service) -> FileOut:
    return FileOut.of(service.describe(caller, fileId))


@app.delete(
    "/files/<fileId>",
    summary="Delete one of the caller's files (idempotent)",
    responses=docs.responses(204, None, "Every version removed and the stored bytes released", NO_SUCH_FILE),
)
def delete_file(fileId: FileId, caller: Caller, service: Service) -> Response[None]:
    service.delete(caller, fileId)
    return Response(status_code=int(HTTPStatus.NO_CONTENT), body=None)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
