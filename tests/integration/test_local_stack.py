"""The local stack over real HTTP on 127.0.0.1, checked against template.yaml itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import requests

from local.dev import DEFAULT_API_PORT, DEFAULT_S3_PORT, walkthrough
from local.resources import CORS_NAMES, lifecycle_rule
from local.stack import LocalStack
from local.template import REPO_ROOT, Route, load_template
from local.tokens import SigningKey, make_token

GATEWAY_NOT_FOUND = {"message": "Not Found"}
UNAUTHORIZED = {"message": "Unauthorized"}


def concrete(path: str) -> str:
    """A request path for a route path: every {variable} filled in."""
    return re.sub(r"\{[^}]+\}", "x1", path)


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# --- routes and the authorizer -------------------------------------------------------------------


def test_every_template_route_reaches_its_function(stack: LocalStack, api: Any) -> None:
    # Given the routes the template declares
    routes = stack.template.routes()
    assert routes
    for route in routes:
        # When each is called with a valid token (and bodies the handlers may well reject)
        response = api.request(route.method, concrete(route.path), json={} if route.method == "POST" else None)
        # Then the gateway routed it: whatever the function says, it is not the gateway's 404 or 401
        assert json_or_none(response) != GATEWAY_NOT_FOUND, route.route_key
        assert response.status_code != 401, route.route_key


def test_unknown_paths_and_methods_are_not_found(stack: LocalStack, api: Any) -> None:
    declared = {(route.method, concrete(route.path)) for route in stack.template.routes()}
    # An undeclared method on every declared path, and paths nobody declared
    probes = [("PATCH", path) for _, path in declared] + [("GET", "/definitely/not/a/route"), ("GET", "/")]
    for method, path in probes:
        if (method, path) in declared:
            continue
        response = api.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json() == GATEWAY_NOT_FOUND


def authorized_route(stack: LocalStack) -> Route:
    return next(route for route in stack.template.routes() if route.authorized)


@pytest.mark.parametrize(
    "bad",
    ["missing", "malformed", "not-bearer", "without-sub", "expired", "other-issuer", "other-audience", "wrong-key"],
)
def test_authorized_routes_refuse_bad_tokens(stack: LocalStack, api: Any, bad: str) -> None:
    # Given a route behind the JWT authorizer and an unacceptable credential
    route = authorized_route(stack)
    audience = stack.template.jwt_authorizers()[route.authorizer or ""].audience[0]
    key = stack.signing_key
    tokens = {
        "malformed": "Bearer not.a-token",
        "not-bearer": "Basic YWxpY2U6c2VjcmV0",
        "without-sub": "Bearer " + make_token("x", audience=audience, key=key, claims={"sub": None}),
        "expired": "Bearer " + make_token("alice", audience=audience, key=key, lifetime_seconds=-60),
        "other-issuer": "Bearer "
        + make_token("alice", audience=audience, key=key, issuer="https://elsewhere.example/"),
        "other-audience": "Bearer " + make_token("alice", audience="someone-else", key=key),
        "wrong-key": "Bearer " + make_token("alice", audience=audience, key=SigningKey.generate()),
    }
    headers = {"Authorization": tokens[bad]} if bad in tokens else {}
    # When it is called
    response = api.request(route.method, concrete(route.path), user=None, headers=headers)
    # Then API Gateway's own 401 comes back
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


def test_routes_without_authorizer_need_no_token(stack: LocalStack, api: Any) -> None:
    public = [route for route in stack.template.routes() if not route.authorized]
    for route in public:
        response = api.request(route.method, concrete(route.path), user=None)
        assert response.status_code not in (401, 404), route.route_key


def test_preflight_returns_the_template_cors_without_a_token(stack: LocalStack, api: Any) -> None:
    # Given the HttpApi's CorsConfiguration
    cors = stack.template.http_api_cors()
    origin = "https://app.example.com"
    route = authorized_route(stack)
    # When a browser sends a preflight (no Authorization header)
    response = requests.options(
        api.url(concrete(route.path)),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": route.method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )
    # Then API Gateway answers it itself with the configured values
    assert response.status_code == 204
    expected_origin = "*" if "*" in cors["AllowOrigins"] else origin
    assert response.headers["access-control-allow-origin"] == expected_origin
    allowed = {item.strip().upper() for item in response.headers["access-control-allow-methods"].split(",")}
    assert route.method in allowed
    assert allowed == {str(method).upper() for method in cors["AllowMethods"]}
    allowed_headers = {item.strip() for item in response.headers["access-control-allow-headers"].split(",")}
    assert allowed_headers == {str(header).lower() for header in cors["AllowHeaders"]}
    assert response.headers["access-control-max-age"] == str(cors["MaxAge"])


def test_ordinary_responses_carry_the_allow_origin_header(stack: LocalStack, api: Any) -> None:
    route = next(route for route in stack.template.routes() if route.method == "GET" and "{" not in route.path)
    response = api.request("GET", route.path, headers={"Origin": "https://app.example.com"})
    assert "access-control-allow-origin" in response.headers


def test_request_bodies_over_10_mb_are_refused(stack: LocalStack, api: Any) -> None:
    route = next(route for route in stack.template.routes() if route.method == "POST")
    response = api.request("POST", route.path, data=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413


# --- the bucket ----------------------------------------------------------------------------------


def test_the_bucket_has_the_template_cors_lifecycle_and_versioning(stack: LocalStack, s3: Any, bucket: str) -> None:
    # Given the bucket the functions are configured with
    for function in stack.template.functions(stack.resource_values):
        if "BUCKET_NAME" in function.environment:
            assert function.environment["BUCKET_NAME"] == bucket
    # When its configuration is read back from the embedded S3
    cors = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    # Then it is what the template declares
    declared = stack.template.bucket_properties()
    expected_cors = [
        {CORS_NAMES[key]: value for key, value in rule.items() if key in CORS_NAMES}
        for rule in declared["CorsConfiguration"]["CorsRules"]
    ]
    assert [{key: rule[key] for key in sorted(rule) if key != "ID"} for rule in cors] == [
        {key: rule[key] for key in sorted(rule) if key != "ID"} for rule in expected_cors
    ]
    assert any("ETag" in rule.get("ExposeHeaders", []) for rule in cors)
    by_id = {rule.get("ID"): rule for rule in lifecycle}
    for rule in map(lifecycle_rule, declared["LifecycleConfiguration"]["Rules"]):
        stored = by_id[rule.get("ID")]
        assert {key: stored[key] for key in rule if key != "Filter"} == {k: v for k, v in rule.items() if k != "Filter"}
    assert any("AbortIncompleteMultipartUpload" in rule for rule in lifecycle)
    assert versioning == declared["VersioningConfiguration"]["Status"]


# --- processes and sockets -----------------------------------------------------------------------


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on, read from /proc."""
    inodes = set()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            address, port = fields[1].split(":")
            if width == 8:
                text = ".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0))
            else:
                text = "::" if set(address) == {"0"} else f"ipv6:{address}"
            found.append((text, int(port, 16)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_everything_listens_on_loopback_only(stack: LocalStack) -> None:
    # Given the running stack's embedded S3 (a child process) and gateway (this process)
    assert stack.s3_pid is not None
    s3_sockets = listening_sockets(stack.s3_pid)
    # Then MiniStack listens on 127.0.0.1:<S3 port> and nothing else (no IoT mTLS on 8883)
    assert s3_sockets == [("127.0.0.1", stack.s3_port)]
    gateway_sockets = [entry for entry in listening_sockets(os.getpid()) if entry[1] == stack.api_port]
    assert gateway_sockets == [("127.0.0.1", stack.api_port)]


# --- the functions' environment ------------------------------------------------------------------


def test_workers_get_the_template_environment_plus_local_endpoints(stack: LocalStack) -> None:
    assert stack.functions is not None
    for spec in stack.template.functions(stack.resource_values, stack.parameter_overrides):
        # When a worker of each function reports its environment
        described = stack.functions.pool(spec.logical_id).describe()
        environ = described["environ"]
        # Then every template variable has its resolved value, and the local overrides point here
        assert {key: environ.get(key) for key in spec.environment} == spec.environment
        assert environ["S3_ENDPOINT_URL"] == stack.s3_endpoint
        assert environ["AWS_ACCESS_KEY_ID"] == "test"
        assert environ["AWS_REGION"] == "us-east-1"
        assert environ["AWS_LAMBDA_FUNCTION_NAME"] == spec.function_name
        assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(spec.memory_mb)
        # And the handler's import path is its CodeUri, then its layers, as in Lambda
        assert described["sysPath"][: 1 + len(spec.layer_dirs)] == [str(spec.code_uri), *map(str, spec.layer_dirs)]


# --- the Docker-free invoke ----------------------------------------------------------------------


def run_invoke(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local.invoke", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def event_files_for(stack: LocalStack) -> dict[str, tuple[str, Path]]:
    """routeKey -> (function logical id, event file) for the sample events of template routes."""
    routes = {route.route_key: route.function_logical_id for route in stack.template.routes()}
    found = {}
    for path in sorted((REPO_ROOT / "events").glob("*.json")):
        route_key = json.loads(path.read_text()).get("routeKey")
        if route_key in routes:
            found[route_key] = (routes[route_key], path)
    return found


def test_invoke_runs_a_sample_event_against_the_running_stack(stack: LocalStack) -> None:
    events = event_files_for(stack)
    if not events:
        pytest.skip("no sample HTTP events in events/ yet")
    function_id, path = events.get("GET /uploads") or next(iter(events.values()))
    # When one sample event is run through the Docker-free invoke, against this stack's S3
    completed = run_invoke(function_id, str(path), "--s3-endpoint", stack.s3_endpoint)
    # Then the handler's response is printed as JSON and the exit status is 0
    assert completed.returncode == 0, completed.stderr
    response = json.loads(completed.stdout)
    assert 200 <= response["statusCode"] < 500


def test_invoke_starts_its_own_s3_when_none_is_given(stack: LocalStack, tmp_path: Path) -> None:
    events = event_files_for(stack)
    if not events:
        pytest.skip("no sample HTTP events in events/ yet")
    function_id, path = events.get("GET /uploads") or next(iter(events.values()))
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"Parameters": {"LOG_LEVEL": "DEBUG"}}))
    completed = run_invoke(function_id, str(path), "--env-vars", str(env_vars))
    assert completed.returncode == 0, completed.stderr
    assert "statusCode" in json.loads(completed.stdout)


def test_invoke_reports_handler_errors_with_a_failing_status(probe_template: Path, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"rawPath": "/boom"}))
    completed = run_invoke("ProbeFunction", str(event), "--template", str(probe_template))
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["errorType"] == "RuntimeError"
    assert "probe exploded" in completed.stderr  # the traceback is logged


def test_invoke_usage_errors_are_one_line(tmp_path: Path) -> None:
    completed = run_invoke("NoSuchFunction", str(tmp_path / "missing.json"))
    assert completed.returncode == 2
    assert completed.stderr.startswith("local.invoke: ")
    assert "Traceback" not in completed.stderr


# --- the printed walkthrough ---------------------------------------------------------------------


def readme_walkthrough() -> str:
    """The README's bash block between the walk-through markers."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    return block.strip().removeprefix("```bash").removesuffix("```").strip() + "\n"


def test_the_readme_walkthrough_is_the_one_make_dev_prints() -> None:
    default = walkthrough(
        f"http://127.0.0.1:{DEFAULT_API_PORT}", f"http://127.0.0.1:{DEFAULT_S3_PORT}", load_template().bucket_name()
    )
    assert readme_walkthrough() == default


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("bash")), reason="needs curl and bash")
@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_pasted(stack: LocalStack, tmp_path: Path) -> None:
    # Given the README's block, pointed at this stack through the variables it reads
    environment = {**os.environ, "API": stack.api_url, "S3": stack.s3_endpoint, "BUCKET": stack.bucket}
    environment["TOKEN"] = stack.token_for("walkthrough-user")
    environment["TMPDIR"] = str(tmp_path)
    # When it is pasted into bash in the repository's root (wherever the clone lives)
    completed = subprocess.run(
        ["bash"],
        input=readme_walkthrough(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        env=environment,
    )
    # Then the form upload is accepted, the 20 MB image validated and stored byte-identical
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = completed.stdout.splitlines()
    assert "form upload: 201" in lines
    assert "validation: valid" in lines
    assert lines[-1] == "identical"


# --- a stack built from a probe template (event sources, errors, concurrency) -------------------

PROBE_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Issuer:
    Type: String
    Default: https://issuer.example/
Globals:
  Function:
    Runtime: python3.13
    Timeout: 5
    Environment:
      Variables:
        BUCKET_NAME: !Ref Bucket
        QUEUE_URL: !Ref EventsQueue
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      NotificationConfiguration:
        QueueConfigurations:
          - Event: s3:ObjectCreated:*
            Queue: !GetAtt EventsQueue.Arn
            Filter: {S3Key: {Rules: [{Name: prefix, Value: incoming/}]}}
  EventsQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            JwtConfiguration: {issuer: !Ref Issuer, audience: [probe]}
  ProbeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: probe.handler
      Events:
        Echo: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: ANY, Path: "/echo/{proxy+}"}}
        Boom: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /boom}}
        Slow: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: GET, Path: /slow}}
  QueuedFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: probe.record_batch
      Environment: {Variables: {MARK: queued}}
      Events:
        Queued:
          Type: SQS
          Properties:
            Queue: !GetAtt EventsQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
"""

PROBE_CODE = """
import json, os, time
import boto3

s3 = boto3.client("s3")  # endpoint and credentials come from the worker's environment


def handler(event, context):
    if event.get("rawPath") == "/boom":
        raise RuntimeError("probe exploded")
    if event.get("rawPath") == "/slow":
        time.sleep(1)
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"pid": os.getpid(), "event": event})}


def _mark(record):
    key = record["s3"]["object"]["key"]
    s3.put_object(Bucket=os.environ["BUCKET_NAME"], Key=f"seen/{os.environ['MARK']}/{key}", Body=b"")


def record(event, context):
    for record in event["Records"]:
        _mark(record)


def record_batch(event, context):
    for message in event["Records"]:
        for record in json.loads(message["body"]).get("Records", []):
            _mark(record)
    return {"batchItemFailures": []}
"""


@pytest.fixture(scope="module")
def probe_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("probe")
    (root / "code").mkdir()
    (root / "code" / "probe.py").write_text(dedent(PROBE_CODE))
    template = root / "template.yaml"
    template.write_text(dedent(PROBE_TEMPLATE))
    return template


@pytest.fixture(scope="module")
def probe(probe_template: Path) -> Iterator[LocalStack]:
    with LocalStack(s3_port=0, api_port=0, template_path=probe_template) as running:
        yield running


def probe_request(probe: LocalStack, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {probe.token_for('alice')}", **kwargs.pop("headers", {})}
    return requests.request(method, probe.api_url + path, headers=headers, timeout=30, **kwargs)


def test_a_template_without_bucket_name_gets_the_local_bucket(probe: LocalStack) -> None:
    assert probe.bucket == "local-bucket"


def test_the_function_receives_a_real_2_0_event_over_http(probe: LocalStack) -> None:
    response = probe_request(
        probe, "PUT", "/echo/a%20b/c?x=1&x=2", data=b"\x00\x01binary", headers={"Content-Type": "image/png"}
    )
    assert response.status_code == 200
    event = response.json()["event"]
    assert event["routeKey"] == "ANY /echo/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a b/c"}
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["isBase64Encoded"] is True
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "alice"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_a_handler_exception_is_a_bare_502(probe: LocalStack) -> None:
    response = probe_request(probe, "POST", "/boom")
    assert response.status_code == 502
    assert response.json() == {"message": "Internal Server Error"}
    assert "probe exploded" not in response.text


def test_parallel_requests_are_served_by_several_workers(probe: LocalStack) -> None:
    pids: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        response = probe_request(probe, "GET", "/slow")
        with lock:
            pids.append(response.json()["pid"])

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pids) == 4
    assert len(set(pids)) > 1


def test_bucket_notifications_invoke_the_subscribed_functions(probe: LocalStack) -> None:
    # Given a function subscribed to the queue the bucket notifies
    assert probe.events is not None
    assert {(s.function_logical_id, s.kind) for s in probe.events.subscriptions} == {("QueuedFunction", "sqs")}
    s3 = probe.s3_client()
    # When objects are created inside and outside the filtered prefix
    s3.put_object(Bucket=probe.bucket, Key="incoming/photo.jpg", Body=b"data")
    s3.put_object(Bucket=probe.bucket, Key="elsewhere/photo.jpg", Body=b"data")
    deadline = time.monotonic() + 30
    expected = {"seen/queued/incoming/photo.jpg"}
    seen: set[str] = set()
    while time.monotonic() < deadline and not expected <= seen:
        probe.events.drain(timeout=5)
        seen = {item["Key"] for item in s3.list_objects_v2(Bucket=probe.bucket, Prefix="seen/").get("Contents", [])}
    # Then the function saw the object in the prefix, and nothing else
    assert seen == expected
