"""Import a remote image into the bucket: fetch safely, check the magic bytes, stream into S3.

Memory stays flat whatever the size: two part buffers, one filled from the source while the
other is uploaded (streaming_upload.py). The first part only starts a multipart upload once a
byte beyond it shows the object needs more than one part; a body that fits in one part is stored
with a single PutObject. Any failure after a multipart upload was started aborts it, so nothing
is left behind (the bucket's lifecycle rule is the backstop for a Lambda that is killed
mid-import).

Idempotency: a client that gave up waiting (API Gateway stops at 30 s) retries with the same
``Idempotency-Key`` header. The key then decides the object's key (a hash of caller and
idempotency key instead of a random id), the object is written only if nothing is there yet
(If-None-Match), and a retry that finds it, before or after fetching, returns it instead of
storing a second copy.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from posixpath import basename
from urllib.parse import quote, unquote

from aws_lambda_powertools.metrics import MetricUnit

from upload_core import keys, object_meta
from upload_core.errors import Conflict, InvalidRequest, UnsupportedType, UploadError, UpstreamTimeout
from upload_core.image_types import SNIFF_BYTES, ImageType, looks_like_active_content, sniff_image_type
from upload_core.import_settings import ImportSettings
from upload_core.observability import logger, metrics
from upload_core.registry import PlanKind, PlanState, Registry, UploadPlan, registry_for
from upload_core.s3 import S3Gateway
from upload_core.safe_fetch import Connector, Deadline, FetchLimits, RemoteFile, SafeFetcher, open_socket
from upload_core.settings import Settings
from upload_core.ssrf import DestinationBlocked, Resolver, Target, parse_url, system_resolver
from upload_core.streaming_upload import StreamingUpload

# Time kept back from the Lambda's remaining time: a part upload in flight when the fetch
# deadline passes must finish, the multipart upload must be aborted and the response sent.
CLEANUP_RESERVE_SECONDS = 3.0
MAX_SOURCE_URL_META_CHARS = 512
DEFAULT_FILENAME = "image"
# An import lasts seconds; its reservation outlives a dead Lambda by this much before the sweeper ends it.
IMPORT_SETTLE_MARGIN_SECONDS = 3600
# Like the IETF draft's Idempotency-Key: an opaque client token; printable ASCII, no spaces.
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class ImportedObject:
    key: str
    size: int
    content_type: str
    etag: str
    source_url: str


class RemoteImportService:
    def __init__(
        self,
        settings: Settings,
        import_settings: ImportSettings,
        s3: S3Gateway | None = None,
        *,
        fetcher: SafeFetcher | None = None,
        clock: Callable[[], float] = time.monotonic,
        registry: Registry | None = None,
    ) -> None:
        self._settings = settings
        self._import_settings = import_settings
        self._s3 = s3 or S3Gateway(settings)
        self._fetcher = fetcher or fetcher_for(import_settings)
        self._clock = clock
        self._registry = registry or registry_for(settings)

    def import_url(
        self,
        owner: str,
        url: str,
        *,
        filename: str | None = None,
        remaining_ms: int | None = None,
        idempotency_key: str | None = None,
    ) -> ImportedObject:
        """Fetch `url` into `uploads/{owner}/...`. `remaining_ms` is the Lambda's remaining time,
        which caps the deadline. With `idempotency_key`, repeating the request returns the object
        the first one stored. Raises the domain errors listed in docs/imports.md."""
        keys.owner_segment(owner)  # a caller without identity fails before any network access
        if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise InvalidRequest(
                "the Idempotency-Key header must be 1 to 255 printable ASCII characters without spaces",
                code="InvalidIdempotencyKey",
            )
        self._registry.count_request(owner, self._settings.max_requests_per_minute)
        started = self._clock()
        source = _log_url(url)
        try:
            imported = self._import(owner, url, filename, remaining_ms, idempotency_key)
        except DestinationBlocked as error:
            metrics.add_metric(name="ImportsBlocked", unit=MetricUnit.Count, value=1)
            metrics.add_metric(name=error.reason.metric_name, unit=MetricUnit.Count, value=1)
            logger.warning(
                "import blocked",
                extra={"source_url": source, "reason": str(error.reason), "redirect": error.redirect},
            )
            raise
        except UploadError as error:
            metrics.add_metric(name="ImportsFailed", unit=MetricUnit.Count, value=1)
            logger.info("import failed", extra={"source_url": source, "code": error.code, "status": int(error.status)})
            raise
        finally:
            elapsed_ms = (self._clock() - started) * 1000
            metrics.add_metric(name="ImportDuration", unit=MetricUnit.Milliseconds, value=elapsed_ms)
        metrics.add_metric(name="ImportsCompleted", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="BytesImported", unit=MetricUnit.Bytes, value=imported.size)
        logger.info(
            "import completed",
            extra={
                "source_url": source,
                "key": imported.key,
                "size": imported.size,
                "content_type": imported.content_type,
                "duration_ms": round(elapsed_ms),
            },
        )
        return imported

    def _budget(self, remaining_ms: int | None) -> float:
        budget = self._import_settings.timeout_seconds
        if remaining_ms is not None:
            budget = min(budget, remaining_ms / 1000 - CLEANUP_RESERVE_SECONDS)
        if budget <= 0:
            raise UpstreamTimeout("not enough time is left to import the file", code="ImportTimeout")
        return budget

    def _import(
        self, owner: str, url: str, filename: str | None, remaining_ms: int | None, idempotency_key: str | None
    ) -> ImportedObject:
        deadline = Deadline(self._budget(remaining_ms), clock=self._clock)
        with self._fetcher.open(url, deadline) as remote:
            head = _read_head(remote)
            image = self._image_type(head)
            original_name = filename or _filename_from(remote.url)
            stored_name = _with_extension(original_name, image)
            source_url = _source_url(url)
            if idempotency_key is None:
                key = keys.new_key(self._settings.upload_prefix, owner, stored_name)
            else:
                key = idempotent_key(self._settings.upload_prefix, owner, idempotency_key, stored_name)
                # A repeated request: the rest of the remote body is never read.
                if (earlier := self._earlier_import(key, source_url)) is not None:
                    return earlier
            plan = self._reserve(owner, key)
            writer = StreamingUpload(
                self._s3,
                key,
                content_type=image.mime,
                metadata={
                    **object_meta.system_metadata(owner, original_name),
                    object_meta.SOURCE_URL_META: source_url,
                },
                part_size=self._import_settings.part_size,
            )
            try:
                writer.write(head)
                writer.read_from(remote.readinto)
                stored = writer.finish()
            except Conflict:
                writer.abort()
                self._registry.release(plan, PlanState.ABORTED)
                # If-None-Match lost the race against an attempt with the same Idempotency-Key.
                earlier = self._earlier_import(key, source_url) if idempotency_key is not None else None
                if earlier is None:
                    raise
                return earlier
            except BaseException:
                writer.abort()
                self._registry.release(plan, PlanState.ABORTED)
                raise
            self._registry.settle(plan, writer.size)
        return ImportedObject(
            key=key, size=writer.size, content_type=image.mime, etag=stored.etag, source_url=source_url
        )

    def _reserve(self, owner: str, key: str) -> UploadPlan:
        """An import may store up to ImportMaxBytes: that much is reserved against the owner's
        quota (and an upload slot) until it is stored, then settled with what it stored."""
        now = int(time.time())
        plan = UploadPlan(
            key=key,
            owner=owner,
            kind=PlanKind.IMPORT,
            reserved_bytes=self._import_settings.max_bytes,
            created_at=now,
            # A Lambda that dies mid-import leaves the plan to the sweeper after this.
            expires_at=now + IMPORT_SETTLE_MARGIN_SECONDS,
        )
        self._registry.reserve(plan)
        self._registry.open(key, None)
        return plan

    def _earlier_import(self, key: str, source_url: str) -> ImportedObject | None:
        """What an earlier request with the same Idempotency-Key stored at `key`, if anything."""
        head = self._s3.head_object(key)
        if head is None:
            return None
        metrics.add_metric(name="ImportsReplayed", unit=MetricUnit.Count, value=1)
        logger.info("import repeated with the same idempotency key", extra={"key": key})
        return ImportedObject(
            key=key,
            size=head.size,
            content_type=head.content_type or "application/octet-stream",
            etag=head.etag,
            source_url=head.metadata.get(object_meta.SOURCE_URL_META, source_url),
        )

    def _image_type(self, head: bytes) -> ImageType:
        image = sniff_image_type(head)
        if image is None:
            detail = "active content (SVG, HTML or XML)" if looks_like_active_content(head) else "not an image"
            raise UnsupportedType(
                f"the remote file is {detail}; allowed: {', '.join(sorted(self._settings.allowed_content_types))}",
                code="UnsupportedContentType",
            )
        if image.mime not in self._settings.allowed_content_types:
            raise UnsupportedType(f"{image.mime} images are not allowed", code="UnsupportedContentType")
        return image


def idempotent_key(upload_prefix: str, owner: str, idempotency_key: str, filename: str) -> str:
    """The key a request with this Idempotency-Key stores to: the random upload id of
    `keys.new_key` replaced by a hash of caller and idempotency key (the same 32 hex digits), so
    that no other caller, and no other idempotency key, can land on it."""
    digest = hashlib.sha256(f"{owner}\x00{idempotency_key}".encode()).hexdigest()[:32]
    return f"{keys.owner_prefix(upload_prefix, owner)}{digest}/{keys.sanitize_filename(filename)}"


def fetcher_for(
    import_settings: ImportSettings,
    *,
    resolver: Resolver = system_resolver,
    connector: Connector = open_socket,
    ssl_context: ssl.SSLContext | None = None,
) -> SafeFetcher:
    """The fetcher these settings describe; resolver, connector and TLS context are for tests."""
    return SafeFetcher(
        import_settings.destination_policy,
        FetchLimits(
            max_bytes=import_settings.max_bytes,
            connect_timeout=import_settings.connect_timeout_seconds,
            read_timeout=import_settings.read_timeout_seconds,
            max_redirects=import_settings.max_redirects,
        ),
        resolver=resolver,
        connector=connector,
        ssl_context=ssl_context,
    )


def _read_head(remote: RemoteFile) -> bytes:
    head = b""
    while len(head) < SNIFF_BYTES:
        data = remote.read(SNIFF_BYTES - len(head))
        if not data:
            break
        head += data
    return head


def _filename_from(target: Target) -> str:
    name = unquote(basename(target.path)).strip()
    return name or DEFAULT_FILENAME


def _with_extension(name: str, image: ImageType) -> str:
    """The key's file name ends with the detected type's extension (the original name is kept
    in the metadata)."""
    stem, dot, extension = name.rpartition(".")
    if dot and stem and extension.lower() in image.extensions:
        return name
    return f"{name}.{image.extensions[0]}"


def _source_url(url: str) -> str:
    """The caller's URL as stored in metadata: no query string (signatures and tokens live
    there), no fragment, no userinfo (refused anyway), ASCII only, bounded."""
    redacted = parse_url(url).redacted
    return quote(redacted, safe="/%:@!$&'()*+,;=-._~[]")[:MAX_SOURCE_URL_META_CHARS]


def _log_url(url: str) -> str:
    """What logs may show of a URL: its redacted form, or nothing when it does not parse."""
    try:
        return parse_url(url).redacted[:MAX_SOURCE_URL_META_CHARS]
    except UploadError:
        return "(invalid URL)"
