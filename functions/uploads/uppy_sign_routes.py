"""`POST /s3/sign`: Uppy 6's `signRequest` backend (the domain is upload_core.uppy_signing)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from uppy_sign_models import SignedRequestOut, SignRequestIn

from service_factory import uppy_signer
from upload_core.uppy_signing import UppySigner
from upload_edge import openapi as docs
from upload_edge.identity import caller_id

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

Caller = Annotated[str, Depends(caller_id)]
Signer = Annotated[UppySigner, Depends(uppy_signer)]


@router.post(
    "/s3/sign",
    summary="Uppy 6 (signRequest): presign one S3 request of the caller's upload",
    responses=docs.responses(
        200, SignedRequestOut, "The presigned request to send to S3", docs.UNSUPPORTED, docs.FORBIDDEN, docs.NOT_FOUND
    ),
)
def sign_request(request: Annotated[SignRequestIn, Body()], caller: Caller, signer: Signer) -> SignedRequestOut:
    return SignedRequestOut.from_domain(signer.sign(caller, request.to_domain()))
