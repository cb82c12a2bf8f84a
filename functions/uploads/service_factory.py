"""The container's one UploadService (and so one boto3 client), shared by the native and Companion routes."""

from __future__ import annotations

from functools import cache

from upload_core.settings import get_settings
from upload_core.uploads import UploadService


@cache
def service() -> UploadService:
    return UploadService(get_settings())
