"""The whole local stack, built from template.yaml, as one context manager.

    with LocalStack() as stack:          # S3_PORT / API_PORT from the environment, else free ports
        requests.post(f"{stack.api_url}/uploads", headers={"authorization": f"Bearer {stack.token_for('alice')}"}, ...)
        stack.s3_client().get_object(Bucket=stack.bucket, Key=...)

Start order: embedded S3 (MiniStack) -> the template's queues and bucket -> function workers ->
event sources (bucket notifications, queue pollers) -> the HTTP gateway. Everything listens on
127.0.0.1 only. ``stop`` undoes it in reverse order and leaves no process behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from local.demo_site import DemoSite
from local.events import EventSources, scheduled_event
from local.functions import Functions, LocalAws, LogSink
from local.gateway import AccessLog, Gateway, GatewayServer, JwksVerifier
from local.resources import provision
from local.s3server import EmbeddedS3, PortInUseError, ensure_port_free, s3_client, sqs_client
from local.template import LOCAL_REGION, Template, TemplateError, load_template
from local.tokens import DEFAULT_LIFETIME_SECONDS, SigningKey, default_key, make_token
from local.verdicts import VerdictWatcher


def port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{name} must be between 0 and 65535, got {port}")
    return port


class LocalStack:
    """Embedded S3 + the template's bucket, queues, functions, event sources and HTTP API.

    ``s3_port`` / ``api_port``: None reads S3_PORT / API_PORT from the environment (0 if unset);
    0 picks a free port. ``parameter_overrides`` work like ``sam deploy --parameter-overrides``;
    ``env_overrides`` like ``sam local invoke --env-vars``. ``data_dir`` keeps the S3 data
    across restarts (default: nothing is kept). ``demo_page`` serves the local-only demo page
    (Uppy) at ``demo_url``, outside the template's routes. ``signing_key`` signs and verifies
    the local tokens (default: the key kept in .local-data/, shared with ``make token``).
    ``access_log`` is called once per API request and ``log_sink`` with every line a function
    writes (local/console.py makes them readable); by default the functions log to stderr.
    ``request_log`` appends every request the emulator serves to a file as a JSON line, for the
    benchmarks that count and price them (bench/aws_usage.py); None (the default) logs nothing.
    """

    def __init__(
        self,
        *,
        s3_port: int | None = None,
        api_port: int | None = None,
        template_path: Path | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
        env_overrides: Mapping[str, Any] | None = None,
        data_dir: Path | None = None,
        max_workers: int = 4,
        access_log: AccessLog | None = None,
        signing_key: SigningKey | None = None,
        log_sink: LogSink | None = None,
        s3_log_level: str = "WARNING",
        s3_events: bool = True,
        demo_page: bool = True,
        request_log: Path | None = None,
    ) -> None:
        self._s3_port = port_from_env("S3_PORT", 0) if s3_port is None else s3_port
        self._api_port = port_from_env("API_PORT", 0) if api_port is None else api_port
        self.template: Template = load_template(template_path)
        self.parameter_overrides = dict(parameter_overrides or {})
        self.template.check_overrides(self.parameter_overrides)
        self.signing_key = signing_key or default_key()
        self._env_overrides = passthrough_overrides(os.environ, env_overrides or {})
        self._max_workers = max_workers
        self._request_log = request_log
        self._access_log = access_log
        self._log_sink = log_sink
        # Off only for tests of the upload path itself, which check bytes at their upload key
        # (the validator would quarantine their synthetic, non-image payloads).
        self._s3_events = s3_events
        # The local-only demo page under /demo/ (local/demo_site.py); never a template route.
        self._demo_page = demo_page
        self._s3 = EmbeddedS3(self._s3_port, data_dir=data_dir, log_level=s3_log_level, request_log=request_log)
        self.region = LOCAL_REGION
        self.bucket = self.template.bucket_name(self.parameter_overrides)
        self.resource_values: dict[str, str] = {}
        self.functions: Functions | None = None
        self.events: EventSources | None = None
        self.verdicts: VerdictWatcher | None = None
        self.gateway: Gateway | None = None
        self._server: GatewayServer | None = None

    # ---- lifecycle

    def start(self) -> LocalStack:
        if self._api_port:
            ensure_port_free(self._api_port, "API_PORT")  # fail before anything starts
        try:
            self._s3.start()
            self._create_resources()
            self._start_functions()
            self._start_gateway()
        except BaseException:
            self.stop()
            raise
        return self

    def _create_resources(self) -> None:
        self.bucket, self.resource_values = provision(
            self.s3_client(), self.sqs_client(), self.dynamodb_client(), self.template, self.parameter_overrides
        )

    def _start_functions(self) -> None:
        specs = self.template.functions(self.resource_values, self.parameter_overrides)
        self.functions = Functions(
            specs,
            LocalAws(self._s3.endpoint_url),
            self._env_overrides,
            max_workers=self._max_workers,
            log_sink=self._log_sink,
            sdk_app_ids=self._request_log is not None,
        )
        self.events = EventSources(
            self.template,
            specs,
            self.functions.invoke,
            s3=self.s3_client(),
            sqs=self.sqs_client(),
            bucket=self.bucket,
            resource_values=self.resource_values,
            parameter_overrides=self.parameter_overrides,
        )
        if self._s3_events:
            self.events.wire().start()
            self.verdicts = (
                VerdictWatcher(self._s3.emulator_client("events"), self.sqs_client(), bus_name=self._event_bus())
                .wire()
                .start()
            )

    def _event_bus(self) -> str:
        """The bus the validator publishes to (the template's EventBusName; `default` without one)."""
        if "EventBusName" not in (self.template.document.get("Parameters") or {}):
            return "default"
        resolver = self.template.resolver({}, self.parameter_overrides)
        return str(resolver.resolve({"Ref": "EventBusName"}, "EventBusName"))

    def _start_gateway(self) -> None:
        assert self.functions is not None
        self.gateway = Gateway(
            self.template.routes(self.parameter_overrides),
            self.functions.invoke,
            cors=self.template.http_api_cors(self.parameter_overrides),
            authorizers=self.template.jwt_authorizers(self.parameter_overrides),
            local_pages=DemoSite(api_url=lambda: self.api_url, token=self.token_for) if self._demo_page else None,
            verifier=JwksVerifier(self.signing_key.jwks()),
        )
        try:
            self._server = GatewayServer(self.gateway, self._api_port, access_log=self._access_log).start()
        except OSError as error:
            raise PortInUseError(f"127.0.0.1:{self._api_port} (API_PORT) is not available: {error.strerror}") from None

    def stop(self) -> None:
        """Stops everything that was started; safe to call more than once."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.verdicts is not None:
            self.verdicts.stop()
            self.verdicts = None
        if self.events is not None:
            self.events.stop()
            self.events = None
        if self.functions is not None:
            self.functions.close()
            self.functions = None
        self._s3.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # ---- what callers use

    @property
    def s3_endpoint(self) -> str:
        return self._s3.endpoint_url

    @property
    def s3_port(self) -> int:
        return self._s3.port

    @property
    def s3_pid(self) -> int | None:
        return self._s3.pid

    @property
    def api_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stack is not running")
        return self._server.url

    @property
    def api_port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stack is not running")
        return self._server.port

    @property
    def demo_url(self) -> str:
        """The local-only demo page (Uppy), served by the gateway."""
        return f"{self.api_url}/demo/"

    def s3_client(self) -> Any:
        """boto3 S3 client for the embedded S3 (path style, SigV4, credentials test/test)."""
        return s3_client(self.s3_endpoint, self.region)

    def run_scheduled(self, function_logical_id: str) -> Any:
        """Invoke a scheduled function (the sweeper) now, as its schedule would; its result."""
        assert self.functions is not None, "the stack is not running"
        invocation = self.functions.invoke(function_logical_id, scheduled_event(f"{function_logical_id}-now"))
        if not invocation.ok:
            raise RuntimeError(f"{function_logical_id} failed: {invocation.error}")
        return invocation.result

    def dynamodb_client(self) -> Any:
        return self._s3.dynamodb_client()

    def sqs_client(self) -> Any:
        return sqs_client(self.s3_endpoint, self.region)

    def token_for(
        self,
        sub: str,
        *,
        lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
        scopes: Iterable[str] = (),
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A local bearer token for ``sub`` that the template's JWT authorizer (emulated) accepts."""
        return token_for(
            self.template,
            sub,
            parameter_overrides=self.parameter_overrides,
            key=self.signing_key,
            lifetime_seconds=lifetime_seconds,
            scopes=scopes,
            claims=claims,
        )


def token_for(
    template: Template,
    sub: str,
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    key: SigningKey | None = None,
    lifetime_seconds: int = DEFAULT_LIFETIME_SECONDS,
    scopes: Iterable[str] = (),
    claims: Mapping[str, Any] | None = None,
) -> str:
    """A token of the local issuer for the first audience of the template's JWT authorizer."""
    authorizers = list(template.jwt_authorizers(parameter_overrides).values())
    if len(authorizers) > 1:
        raise TemplateError("the template has several JWT authorizers; make tokens with local.tokens.make_token")
    audience = authorizers[0].audience[:1] if authorizers and authorizers[0].audience else ("local",)
    return make_token(sub, audience=audience, key=key, lifetime_seconds=lifetime_seconds, scopes=scopes, claims=claims)


# Variables the local stack hands from its own environment to every function that declares them
# (for example to let a local import reach a test server on 127.0.0.1; empty on AWS by default).
PASSTHROUGH_VARIABLES = ("IMPORT_ALLOWED_DESTINATIONS",)


def passthrough_overrides(environ: Mapping[str, str], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` plus the pass-through variables set in `environ`; explicit overrides win."""
    from_environment = {name: environ[name] for name in PASSTHROUGH_VARIABLES if environ.get(name)}
    if not from_environment:
        return dict(overrides)
    if any(isinstance(value, dict) for value in overrides.values()) or not overrides:
        sections = dict(overrides)
        sections["Parameters"] = {**from_environment, **(sections.get("Parameters") or {})}
        return sections
    return {**from_environment, **overrides}
