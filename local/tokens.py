"""Well-formed but unsigned JWTs for the local JWT authorizer emulation.

The local gateway reads a token's claims without checking its signature (local only), so a
token made here works against the local stack and nowhere else: a real API Gateway rejects it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_LIFETIME_SECONDS = 24 * 3600


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(
    sub: str,
    *,
    issuer: str,
    audience: str | Iterable[str],
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    scopes: Iterable[str] = (),
    claims: Mapping[str, Any] | None = None,
    now: int | None = None,
) -> str:
    """A JWT for ``sub`` with iss/aud/iat/exp; ``claims`` adds or replaces claims (None removes)."""
    issued_at = int(time.time()) if now is None else now
    audiences = [audience] if isinstance(audience, str) else list(audience)
    payload: dict[str, Any] = {
        "sub": sub,
        "iss": issuer,
        "aud": audiences[0] if len(audiences) == 1 else audiences,
        "iat": issued_at,
        "exp": issued_at + lifetime_seconds,
    }
    scope_list = list(scopes)
    if scope_list:
        payload["scope"] = " ".join(scope_list)
    for key, value in (claims or {}).items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    header = {"alg": "none", "typ": "JWT"}
    return ".".join(
        [
            b64url_encode(json.dumps(header, separators=(",", ":")).encode()),
            b64url_encode(json.dumps(payload, separators=(",", ":")).encode()),
            "",  # alg "none": an empty signature
        ]
    )
