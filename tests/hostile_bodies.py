"""Requests built to hurt the API functions (issue 11's attacks), shared by the unit and the HTTP tests.

Every route of the uploads and imports functions is called with a query, path values and (for a
check that must get past validation) a valid body of its own.
"""

from __future__ import annotations

import re
from typing import Any

MIB = 1024 * 1024
KEY = "uploads/alice/" + "0" * 32 + "/a.png"
QUERY = {"key": KEY, "filename": "a.png", "type": "image/png", "partNumbers": "1"}
PATH_VALUES = {"uploadId": "an-upload", "partNumber": "1"}

NESTED = "[" * 100_000 + "]" * 100_000
LONG_NUMBER = '{"filename": "a.png", "contentType": "image/png", "size": ' + "9" * 5_000 + "}"
OVERSIZED = '{"filename": "' + "a" * MIB + '"}'
# name: (body, status, code) every route answers it with
HOSTILE = {
    "nested-100k": (NESTED, 400, "InvalidJson"),
    "5000-digits": (LONG_NUMBER, 400, "InvalidJson"),
    "over-1MiB": (OVERSIZED, 413, "BodyTooLarge"),
}
# A valid body for each route that reads one.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "/uploads": {"filename": "a.png", "contentType": "image/png", "size": 10},
    "/uploads/form": {"filename": "a.png", "contentType": "image/png", "size": 10},
    "/uploads/batch": {
        "files": [{"filename": "a.png", "contentType": "image/png", "size": 10, "checksumCrc32": "AAAAAA=="}]
    },
    "/uploads/{uploadId}/parts": {"key": KEY, "partNumbers": [1]},
    "/uploads/{uploadId}/complete": {"key": KEY},
    "/s3/multipart": {"filename": "a.png", "type": "image/png"},
    "/s3/multipart/{uploadId}/complete": {"parts": [{"PartNumber": 1, "ETag": '"e"'}]},
    "/s3/sign": {"method": "PUT", "key": "u-a.png", "contentType": "image/png", "size": 10, "name": "a.png"},
    "/imports": {"url": "https://images.example.com/a.png"},
}
# A `sub` whose key segment no S3 key can hold, and the longest OIDC allows (each character escaped).
OVERLONG_SUBJECT = "x" * 1_000
LONGEST_OIDC_SUBJECT = "|" * 255


def path_params(route: str) -> dict[str, str]:
    return {name: PATH_VALUES[name] for name in re.findall(r"{(\w+)}", route)}


def concrete(route: str) -> str:
    return route.format(**path_params(route))
