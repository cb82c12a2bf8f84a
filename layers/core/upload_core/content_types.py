"""Declared content types: normalised and checked against the allowlist."""

from __future__ import annotations

from upload_core.errors import UnsupportedType


def normalize_content_type(value: str) -> str:
    """`Image/PNG; charset=x` → `image/png`: parameters carry nothing an allowlist cares about."""
    return value.split(";", 1)[0].strip().lower()


def ensure_allowed(content_type: str, allowed: frozenset[str]) -> str:
    normalized = normalize_content_type(content_type)
    if normalized not in allowed:
        raise UnsupportedType(
            f"content type {normalized or '(empty)'!r} is not allowed; allowed: {', '.join(sorted(allowed))}",
            code="UnsupportedContentType",
        )
    return normalized
