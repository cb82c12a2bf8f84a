"""template.yaml, samconfig.toml and events/ checked against each other and the API contract.

Static checks on the parsed template (routes, handlers, policies, names, parameters), fast and
always on. What needs aws-sam-cli (sam validate, sam build, cfn-lint on the SAM-translated
template) lives in tests/infrastructure/.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from upload_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = ROOT / "samconfig.toml"
EVENTS = ROOT / "events"
REGION = "us-east-1"

# The API contract (DESIGN.md): route -> the function that serves it.
EXPECTED_ROUTES = {
    "POST /uploads": "UploadsFunction",
    "GET /uploads": "UploadsFunction",
    "POST /uploads/{uploadId}/parts": "UploadsFunction",
    "GET /uploads/{uploadId}/parts": "UploadsFunction",
    "POST /uploads/{uploadId}/complete": "UploadsFunction",
    "DELETE /uploads/{uploadId}": "UploadsFunction",
    "POST /uploads/form": "UploadsFunction",
    "POST /uploads/batch": "UploadsFunction",
    "GET /s3/params": "UploadsFunction",
    "POST /s3/multipart": "UploadsFunction",
    "GET /s3/multipart/{uploadId}/{partNumber}": "UploadsFunction",
    "GET /s3/multipart/{uploadId}/batch": "UploadsFunction",
    "GET /s3/multipart/{uploadId}": "UploadsFunction",
    "POST /s3/multipart/{uploadId}/complete": "UploadsFunction",
    "DELETE /s3/multipart/{uploadId}": "UploadsFunction",
    "POST /s3/sign": "UploadsFunction",
    "GET /objects/status": "UploadsFunction",
    "GET /openapi.json": "UploadsFunction",
    "GET /files": "FilesFunction",
    "GET /files/{fileId}": "FilesFunction",
    "GET /files/{fileId}/status": "FilesFunction",
    "DELETE /files/{fileId}": "FilesFunction",
    "POST /imports": "ImportsFunction",
}
PUBLIC_ROUTES = {"GET /openapi.json"}

# The bucket is referenced by this name everywhere a function could depend on it (template.yaml
# explains why: a function that depends on the bucket resource forms a cycle with the bucket's
# notification to that function).
BUCKET_NAME_EXPR = "${BucketNamePrefix}-${AWS::AccountId}-${AWS::Region}"
BUCKET_ARN_EXPR = f"arn:${{AWS::Partition}}:s3:::{BUCKET_NAME_EXPR}"
UPLOAD_PREFIX = "uploads"
OBJECTS_ARN_EXPR = f"{BUCKET_ARN_EXPR}/{UPLOAD_PREFIX}/*"

PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::StackName": "s3-direct-upload",
}

# --------------------------------------------------------------------------- helpers


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def references_to(value: Any, logical_id: str) -> list[str]:
    """Every way `value` refers to a resource: Ref, Fn::GetAtt or a ${Id} / ${Id.Attr} in Fn::Sub."""
    found: list[str] = []
    sub_pattern = re.compile(r"\$\{" + re.escape(logical_id) + r"(\.[^}]*)?\}")
    for node in walk(value):
        if not isinstance(node, dict):
            continue
        if node.get("Ref") == logical_id:
            found.append("Ref")
        getatt = node.get("Fn::GetAtt")
        if isinstance(getatt, list) and getatt and getatt[0] == logical_id:
            found.append("Fn::GetAtt")
        sub = node.get("Fn::Sub")
        text = sub[0] if isinstance(sub, list) and sub else sub
        if isinstance(text, str) and sub_pattern.search(text):
            found.append("Fn::Sub")
    return found


# Resources an environment variable may name, with a stand-in for the name CloudFormation gives.
REFERENCED_RESOURCES = {"RegistryTable": "stack-RegistryTable-ABC123"}
REGISTRY_ARN_EXPR = "${RegistryTable.Arn}"


def resolve(value: Any, parameters: dict[str, str]) -> str:
    """The few intrinsics an environment variable uses: Ref to a parameter and Fn::Sub."""
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
        if name in REFERENCED_RESOURCES:
            return REFERENCED_RESOURCES[name]
        if name not in PSEUDO_PARAMETERS and name not in parameters:
            raise AssertionError(f"an environment variable refers to {name}, which is not a parameter")
        return PSEUDO_PARAMETERS.get(name) or parameters[name]
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        return re.sub(r"\$\{([^}]+)\}", lambda match: resolve({"Ref": match.group(1)}, parameters), value["Fn::Sub"])
    raise AssertionError(f"unexpected intrinsic in an environment variable: {value!r}")


def parameter_problems(name: str, spec: dict[str, Any], value: str) -> list[str]:
    """What CloudFormation would refuse about `value` for this parameter (the rules it checks)."""
    problems: list[str] = []
    items = [item.strip() for item in value.split(",")] if spec["Type"] == "CommaDelimitedList" else [value]
    for item in items:
        if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], item):
            problems.append(f"{name}={item!r} does not match {spec['AllowedPattern']}")
        if "AllowedValues" in spec and item not in {str(allowed) for allowed in spec["AllowedValues"]}:
            problems.append(f"{name}={item!r} is not one of {spec['AllowedValues']}")
        if spec["Type"] == "Number":
            number = float(item)
            if "MinValue" in spec and number < spec["MinValue"]:
                problems.append(f"{name}={item} is below {spec['MinValue']}")
            if "MaxValue" in spec and number > spec["MaxValue"]:
                problems.append(f"{name}={item} is above {spec['MaxValue']}")
    return problems


def parse_overrides(overrides: str | list[str]) -> dict[str, str]:
    entries = overrides if isinstance(overrides, list) else overrides.split()
    return dict(entry.split("=", 1) for entry in entries)


def module_level_names(path: Path) -> set[str]:
    """Names a module binds at top level, read from its syntax tree (the module is not imported)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def functions(resources: dict[str, Any]) -> dict[str, Any]:
    return {name: res for name, res in resources.items() if res["Type"] == "AWS::Serverless::Function"}


@pytest.fixture(scope="module")
def routes(functions: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """route key -> (function logical id, the HttpApi event's properties)."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for function_id, function in functions.items():
        for event in (function["Properties"].get("Events") or {}).values():
            if event["Type"] != "HttpApi":
                continue
            properties = event["Properties"]
            route_key = f"{properties['Method'].upper()} {properties['Path']}"
            assert route_key not in found, f"{route_key} is declared twice"
            found[route_key] = (function_id, properties)
    return found


@pytest.fixture(scope="module")
def default_parameters(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(spec["Default"]) for name, spec in template["Parameters"].items() if "Default" in spec}


@pytest.fixture(scope="module")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG.open("rb") as handle:
        return tomllib.load(handle)


def _samconfig_environments() -> list[str]:
    with SAMCONFIG.open("rb") as handle:
        return [name for name, value in tomllib.load(handle).items() if isinstance(value, dict)]


def _event_files() -> list[Path]:
    return sorted(EVENTS.glob("*.json"))


# --------------------------------------------------------------------------- routes, handlers, events


def test_routes_are_exactly_the_api_contract(routes: dict[str, tuple[str, dict[str, Any]]]) -> None:
    # Given the HttpApi events of every function / Then they declare exactly the contract's routes
    assert {key: function for key, (function, _) in routes.items()} == EXPECTED_ROUTES


def test_every_route_is_on_the_http_api_and_only_openapi_is_public(
    routes: dict[str, tuple[str, dict[str, Any]]], resources: dict[str, Any]
) -> None:
    api_auth = resources["HttpApi"]["Properties"]["Auth"]
    assert api_auth["DefaultAuthorizer"] in api_auth["Authorizers"]
    for route_key, (_, properties) in routes.items():
        assert properties["ApiId"] == {"Ref": "HttpApi"}, route_key
        authorizer = (properties.get("Auth") or {}).get("Authorizer", api_auth["DefaultAuthorizer"])
        if route_key in PUBLIC_ROUTES:
            assert authorizer == "NONE", f"{route_key} must be public"
        else:
            assert authorizer == api_auth["DefaultAuthorizer"], f"{route_key} must require a JWT"


def test_jwt_authorizer_reads_issuer_and_audience_from_parameters(resources: dict[str, Any]) -> None:
    auth = resources["HttpApi"]["Properties"]["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert authorizer["IdentitySource"] == "$request.header.Authorization"
    # The Parameters when an external issuer is given, the stack's own user pool otherwise.
    assert authorizer["JwtConfiguration"] == {
        "issuer": {
            "Fn::If": [
                "CreateUserPool",
                {"Fn::Sub": "https://cognito-idp.${AWS::Region}.${AWS::URLSuffix}/${UserPool}"},
                {"Ref": "JwtIssuer"},
            ]
        },
        "audience": {"Fn::If": ["CreateUserPool", [{"Ref": "UserPoolClient"}], {"Ref": "JwtAudience"}]},
    }


@pytest.mark.parametrize("function_id", sorted(set(EXPECTED_ROUTES.values())))
def test_route_function_handler_exists_with_its_entry_point(
    routes: dict[str, tuple[str, dict[str, Any]]], functions: dict[str, Any], function_id: str
) -> None:
    # Given a function that serves routes
    assert function_id in {function for function, _ in routes.values()}
    properties = functions[function_id]["Properties"]
    module, _, attribute = properties["Handler"].rpartition(".")
    source = ROOT / properties["CodeUri"] / (module.replace(".", "/") + ".py")
    # Then its handler module exists under its CodeUri and binds the handler at module level
    assert source.is_file(), f"{function_id}: {source.relative_to(ROOT)} does not exist"
    assert attribute in module_level_names(source), f"{function_id}: {source.name} defines no {attribute}"


def test_handler_module_names_are_unique(functions: dict[str, Any]) -> None:
    # One test process imports every handler, so two `app.py` would shadow each other.
    modules = [function["Properties"]["Handler"].rpartition(".")[0] for function in functions.values()]
    assert len(modules) == len(set(modules)), modules


def test_every_route_has_a_sample_event(routes: dict[str, tuple[str, dict[str, Any]]]) -> None:
    route_keys_with_events = set()
    for path in _event_files():
        event = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(event, dict) and "routeKey" in event:
            route_keys_with_events.add(event["routeKey"])
    assert set(routes) - route_keys_with_events == set(), "routes without an events/*.json sample"


@pytest.mark.parametrize("path", _event_files(), ids=lambda path: path.name)
def test_event_file_is_a_consistent_http_api_v2_event(
    path: Path, routes: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    # Given a sample event / Then it is JSON
    event = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(event, dict)
    if "routeKey" not in event and "http" not in (event.get("requestContext") or {}):
        return  # a non-API trigger (S3, SQS): parsing is all that is checked here
    # And an API event is payload 2.0 for one of the template's routes
    assert event["version"] == "2.0"
    route_key = event["routeKey"]
    assert route_key in routes, f"{route_key} is not a route of the template"
    method, template_path = route_key.split(" ", 1)
    context = event["requestContext"]
    assert context["routeKey"] == route_key
    assert context["stage"] == "$default"
    assert context["http"]["method"] == method
    assert context["http"]["path"] == event["rawPath"]
    # And its path parameters fill the route's placeholders to give rawPath
    placeholders = re.findall(r"\{(\w+)\}", template_path)
    parameters = event.get("pathParameters") or {}
    assert sorted(parameters) == sorted(placeholders)
    expected_path = template_path
    for name, value in parameters.items():
        expected_path = expected_path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
    assert event["rawPath"] == expected_path
    # And its query string and parsed parameters agree
    query = dict(urllib.parse.parse_qsl(event["rawQueryString"], keep_blank_values=True))
    assert query == (event.get("queryStringParameters") or {})
    # And HTTP API's shapes: lower-case header names, a JSON string body, no base64
    headers = event["headers"]
    assert all(name == name.lower() for name in headers)
    assert event["isBase64Encoded"] is False
    if "body" in event:
        assert isinstance(event["body"], str)
        json.loads(event["body"])
        assert headers["content-type"] == "application/json"
    # And a token and its verified claims exactly when the route is protected
    if route_key in PUBLIC_ROUTES:
        assert "authorization" not in headers
        assert "authorizer" not in context
    else:
        assert headers["authorization"].startswith("Bearer ")
        claims = context["authorizer"]["jwt"]["claims"]
        assert claims["sub"] == "user-123"
        assert {"iss", "aud", "exp"} <= set(claims)


# --------------------------------------------------------------------------- no cycles by construction


def test_only_the_bucket_policy_refers_to_the_bucket_resource(template: dict[str, Any]) -> None:
    # Anything a function depends on (Globals, roles, policies, the functions themselves) must
    # use the bucket's computed name; only the bucket policy (which nothing depends on) and
    # Outputs may refer to the resource.
    allowed = {"UploadBucket", "UploadBucketPolicy"}
    offenders = {
        name: refs
        for name, resource in template["Resources"].items()
        if name not in allowed and (refs := references_to(resource, "UploadBucket"))
    }
    offenders.update({"Globals": refs} if (refs := references_to(template["Globals"], "UploadBucket")) else {})
    assert offenders == {}, "these depend on the bucket resource and would form a cycle with its notifications"


def test_every_use_of_the_bucket_name_is_the_same_expression(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["UploadBucket"]["Properties"]
    assert bucket["BucketName"] == {"Fn::Sub": BUCKET_NAME_EXPR}
    assert template["Globals"]["Function"]["Environment"]["Variables"]["BUCKET_NAME"] == {"Fn::Sub": BUCKET_NAME_EXPR}
    uses = [
        node["Fn::Sub"]
        for node in walk(template["Resources"])
        if isinstance(node, dict) and isinstance(node.get("Fn::Sub"), str) and "BucketNamePrefix" in node["Fn::Sub"]
    ]
    assert uses, "the bucket name is used nowhere"
    # The access log bucket is named after the upload bucket (tests/unit/test_operations_template.py).
    log_bucket_name = "${BucketNamePrefix}-logs-${AWS::AccountId}-${AWS::Region}"
    for text in uses:
        assert text in (BUCKET_NAME_EXPR, BUCKET_ARN_EXPR, log_bucket_name) or text.startswith(BUCKET_ARN_EXPR + "/"), (
            text
        )


@pytest.mark.parametrize(
    ("prefix", "accepted"),
    [
        ("s3-direct-upload", True),
        ("a1", True),
        ("x" * 30, True),
        ("x" * 31, False),
        ("My-Uploads", False),
        ("-leading-hyphen", False),
        ("xn--punycode", False),
        ("sthree-reserved", False),
        ("under_score", False),
    ],
)
def test_bucket_name_prefix_only_admits_valid_bucket_names(
    template: dict[str, Any], prefix: str, accepted: bool
) -> None:
    spec = template["Parameters"]["BucketNamePrefix"]
    assert (parameter_problems("BucketNamePrefix", spec, prefix) == []) is accepted
    if accepted:
        # The longest name: a 12-digit account and the longest region names (14 characters).
        longest = f"{prefix}-123456789012-ap-southeast-7"
        assert len(longest) <= 63
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", longest)


# --------------------------------------------------------------------------- permissions


EXPECTED_PERMISSIONS = {
    "UploadsFunction": {
        OBJECTS_ARN_EXPR: {
            "s3:PutObject",
            "s3:PutObjectTagging",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
            "s3:GetObject",
            "s3:GetObjectTagging",
        },
        f"{BUCKET_ARN_EXPR}/quarantine/{UPLOAD_PREFIX}/*": {"s3:GetObjectTagging"},
        # ListBucket only under an s3:prefix condition (tests/unit/test_operations_template.py).
        BUCKET_ARN_EXPR: {"s3:ListBucketMultipartUploads", "s3:ListBucket"},
        # Plans, usage and request counters: items only, no scans, no deletes.
        REGISTRY_ARN_EXPR: {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        },
    },
    "SweeperFunction": {
        OBJECTS_ARN_EXPR: {"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:GetObject"},
        BUCKET_ARN_EXPR: {"s3:ListBucketMultipartUploads", "s3:ListBucket"},
        f"{REGISTRY_ARN_EXPR}/index/OpenPlans": {"dynamodb:Query"},
        REGISTRY_ARN_EXPR: {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    },
    # Signs download links (s3:GetObject, under the read gate: never exempt from it) and deletes
    # every version of a file; reads and settles its own files and usage, lists one index.
    "FilesFunction": {
        OBJECTS_ARN_EXPR: {"s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"},
        f"{BUCKET_ARN_EXPR}/quarantine/{UPLOAD_PREFIX}/*": {"s3:DeleteObject", "s3:DeleteObjectVersion"},
        BUCKET_ARN_EXPR: {"s3:ListBucketVersions"},
        f"{REGISTRY_ARN_EXPR}/index/OwnerFiles": {"dynamodb:Query"},
        REGISTRY_ARN_EXPR: {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    },
    "ImportsFunction": {
        OBJECTS_ARN_EXPR: {"s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:GetObject"},
        BUCKET_ARN_EXPR: {"s3:ListBucketMultipartUploads", "s3:ListBucket"},
        REGISTRY_ARN_EXPR: {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:ConditionCheckItem",
        },
    },
}


@pytest.mark.parametrize("function_id", sorted(EXPECTED_PERMISSIONS))
def test_function_policies_are_explicit_and_least_privilege(functions: dict[str, Any], function_id: str) -> None:
    granted: dict[str, set[str]] = {}
    for policy in functions[function_id]["Properties"]["Policies"]:
        # Explicit statements only: no managed policies, no broad SAM policy templates.
        assert isinstance(policy, dict), policy
        assert set(policy) <= {"Version", "Statement"}, policy
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), actions
            resource = statement["Resource"]
            assert isinstance(resource, dict), resource
            assert set(resource) == {"Fn::Sub"}, resource
            granted.setdefault(resource["Fn::Sub"], set()).update(actions)
    assert granted == EXPECTED_PERMISSIONS[function_id]


def test_bucket_policy_denies_every_request_without_tls(resources: dict[str, Any]) -> None:
    statements = resources["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${UploadBucket}"},
            {"Fn::Sub": "arn:${AWS::Partition}:s3:::${UploadBucket}/*"},
        ],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in statements


# --------------------------------------------------------------------------- bucket, logs, layers


def test_bucket_is_private_encrypted_versioned_and_browser_ready(resources: dict[str, Any]) -> None:
    bucket = resources["UploadBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    # SSE-S3 unless BucketKmsKeyArn names a key.
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == {
        "Fn::If": ["UseBucketKmsKey", "aws:kms", "AES256"]
    }
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    # Browsers must read part ETags (Uppy stalls otherwise) and may send signed checksums.
    assert {"ETag", "Location"} <= set(cors["ExposedHeaders"])
    assert {"content-type", "x-amz-checksum-sha256", "x-amz-checksum-crc32c"} <= set(cors["AllowedHeaders"])
    # Parts are PUT and forms POSTed by the browser; Uppy 6 (signRequest) also creates, lists,
    # completes and aborts (DELETE) in S3 itself, sending the headers /s3/sign signed in.
    assert set(cors["AllowedMethods"]) == {"GET", "PUT", "POST", "DELETE", "HEAD"}
    assert {"x-amz-meta-*", "x-amz-tagging", "x-amz-mp-object-size", "if-none-match"} <= set(cors["AllowedHeaders"])
    assert cors["AllowedOrigins"] == {"Ref": "CorsAllowedOrigins"}
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert {"DaysAfterInitiation": {"Ref": "IncompleteUploadExpiryDays"}} in [
        rule.get("AbortIncompleteMultipartUpload") for rule in rules
    ]
    assert any("NoncurrentVersionExpiration" in rule for rule in rules)


def test_every_function_logs_to_its_own_group_with_retention(
    functions: dict[str, Any], resources: dict[str, Any]
) -> None:
    groups = []
    for function_id, function in functions.items():
        reference = function["Properties"]["LoggingConfig"]["LogGroup"]
        assert set(reference) == {"Ref"}, function_id
        group = resources[reference["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        groups.append(reference["Ref"])
    assert len(groups) == len(set(groups)), "functions share a log group"
    access_log = resources["HttpApi"]["Properties"]["AccessLogSettings"]["DestinationArn"]
    assert resources[access_log["Fn::GetAtt"][0]]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_globals_use_one_runtime_and_the_matching_powertools_layer(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    runtime = function_globals["Runtime"]
    (architecture,) = function_globals["Architectures"]
    assert runtime == "python3.13"
    core, powertools = function_globals["Layers"]
    assert core == {"Ref": "CoreLayer"}
    flavour = f"AWSLambdaPowertoolsPythonV3-{runtime.replace('.', '')}-{architecture}"
    assert re.fullmatch(
        r"arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:017000801446:layer:" + flavour + r":\d+",
        powertools["Fn::Sub"],
    )
    layer = template["Resources"]["CoreLayer"]
    assert runtime in layer["Properties"]["CompatibleRuntimes"]
    assert layer["Metadata"]["BuildMethod"] == runtime
    assert (ROOT / layer["Properties"]["ContentUri"] / "upload_core" / "__init__.py").is_file()
    assert (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").is_file()


def test_the_edge_layer_serves_the_api_functions_only(template: dict[str, Any]) -> None:
    # Given the HTTP adapters' layer (error mapping, caller identity, request bodies)
    layer = template["Resources"]["EdgeLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Metadata"]["BuildMethod"] == template["Globals"]["Function"]["Runtime"]
    assert (ROOT / layer["Properties"]["ContentUri"] / "upload_edge" / "__init__.py").is_file()
    # Then the API functions add it to the Globals' layers, and the validator (no HTTP) does not
    functions = {
        name: resource["Properties"].get("Layers", [])
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert {name for name, layers in functions.items() if {"Ref": "EdgeLayer"} in layers} == {
        "UploadsFunction",
        "ImportsFunction",
        "FilesFunction",
    }


def test_outputs_give_clients_and_e2e_tests_what_they_need(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert {
        "ApiUrl",
        "OpenApiUrl",
        "BucketName",
        "UploadPrefix",
        "Region",
        "UploadsFunctionName",
        "ImportsFunctionName",
        "FilesFunctionName",
        "FailureQueueUrl",
    } <= set(outputs)
    assert outputs["UploadPrefix"]["Value"] == UPLOAD_PREFIX
    assert outputs["ApiUrl"]["Value"] == {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"}


# --------------------------------------------------------------------------- settings and samconfig


SETTINGS_PARAMETERS = {
    "MAX_UPLOAD_BYTES": "MaxUploadBytes",
    "MAX_FORM_UPLOAD_BYTES": "MaxFormUploadBytes",
    "ALLOWED_CONTENT_TYPES": "AllowedContentTypes",
    "URL_EXPIRY_SECONDS": "UrlExpirySeconds",
    "MIN_PART_SIZE": "MinPartSize",
    "MAX_PART_SIZE": "MaxPartSize",
    "DEFAULT_PART_SIZE": "DefaultPartSize",
    "MAX_PARTS_PER_REQUEST": "MaxPartsPerRequest",
    "POWERTOOLS_LOG_LEVEL": "LogLevel",
    "LOG_LEVEL": "LogLevel",
}


def test_globals_pass_every_setting_from_its_parameter(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for variable, parameter in SETTINGS_PARAMETERS.items():
        assert variables[variable] == {"Ref": parameter}, variable
    assert variables["UPLOAD_PREFIX"] == UPLOAD_PREFIX
    # One namespace per stack, so environments sharing an account never mix their metrics.
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "S3DirectUpload/${AWS::StackName}"}


def test_each_function_names_its_service_and_imports_never_allow_private_destinations(
    functions: dict[str, Any],
) -> None:
    services = [
        function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for function in functions.values()
    ]
    assert len(services) == len(set(services))
    imports = functions["ImportsFunction"]["Properties"]
    assert imports["Environment"]["Variables"]["IMPORT_ALLOWED_DESTINATIONS"] == ""
    assert imports["Environment"]["Variables"]["IMPORT_TIMEOUT_SECONDS"] == {"Ref": "ImportTimeoutSeconds"}
    assert imports["Environment"]["Variables"]["IMPORT_MAX_BYTES"] == {"Ref": "ImportMaxBytes"}


def test_parameter_defaults_meet_their_own_constraints(template: dict[str, Any]) -> None:
    problems = [
        problem
        for name, spec in template["Parameters"].items()
        for problem in parameter_problems(name, spec, str(spec["Default"]))
    ]
    assert problems == []


def _environment_for(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, str]:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    return {"AWS_REGION": REGION, **{name: resolve(value, parameters) for name, value in variables.items()}}


def test_default_parameters_make_valid_settings(template: dict[str, Any], default_parameters: dict[str, str]) -> None:
    # Given the environment a function gets with every parameter at its default
    environment = _environment_for(template, default_parameters)
    # When the core parses it / Then it is accepted and means what the parameters say
    settings = Settings.from_env(environment)
    assert settings.bucket_name == f"s3-direct-upload-123456789012-{REGION}"
    assert settings.upload_prefix == UPLOAD_PREFIX
    assert settings.default_part_size == int(default_parameters["DefaultPartSize"])


@pytest.mark.parametrize("environment", _samconfig_environments())
def test_samconfig_overrides_are_known_valid_parameters(
    template: dict[str, Any], samconfig: dict[str, Any], default_parameters: dict[str, str], environment: str
) -> None:
    deploy = samconfig[environment]["deploy"]["parameters"]
    overrides = parse_overrides(deploy["parameter_overrides"])
    specs = template["Parameters"]
    assert set(overrides) <= set(specs), set(overrides) - set(specs)
    problems = [
        problem for name, value in overrides.items() for problem in parameter_problems(name, specs[name], value)
    ]
    assert problems == []
    Settings.from_env(_environment_for(template, {**default_parameters, **overrides}))
    assert deploy["confirm_changeset"] is True
    assert deploy["capabilities"] == "CAPABILITY_IAM"


def test_samconfig_environments_never_share_a_stack_or_a_bucket(samconfig: dict[str, Any]) -> None:
    # The bucket is named from BucketNamePrefix, account and region: two environments in one
    # account and region with the same prefix would fight over one bucket.
    stacks, prefixes = [], []
    for environment in _samconfig_environments():
        deploy = samconfig[environment]["deploy"]["parameters"]
        stacks.append(deploy["stack_name"])
        prefixes.append(parse_overrides(deploy["parameter_overrides"]).get("BucketNamePrefix"))
    assert len(set(stacks)) == len(stacks)
    assert None not in prefixes
    assert len(set(prefixes)) == len(prefixes)


@pytest.mark.parametrize("function_id", ["UploadsFunction", "ImportsFunction", "ValidatorFunction", "FilesFunction"])
def test_s3_client_patience_fits_in_the_function_timeout(template: dict[str, Any], function_id: str) -> None:
    # A stalled S3 must end in the function's own clean error, not in a Lambda timeout.
    function = template["Resources"][function_id]["Properties"]
    timeout = function.get("Timeout", template["Globals"]["Function"].get("Timeout", 3))
    variables = function.get("Environment", {}).get("Variables", {})
    settings = Settings.from_env(
        {"BUCKET_NAME": "b", **{k: str(v) for k, v in variables.items() if k.startswith("S3_")}}
    )
    worst = settings.s3_max_attempts * (settings.s3_connect_timeout_seconds + settings.s3_read_timeout_seconds)
    assert worst < timeout, (function_id, worst, timeout)


def test_the_role_that_signs_downloads_is_under_the_read_gate(resources: dict[str, Any]) -> None:
    # Given the bucket policy's read gate
    statements = resources["UploadBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    gate = next(statement for statement in statements if statement["Sid"] == "DenyReadsOfUnvalidatedUploads")
    exempt = gate["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    # Then the files function, which signs download links, is not exempt from it
    assert {"Fn::GetAtt": ["FilesFunctionRole", "Arn"]} not in exempt
    assert all("Files" not in str(principal) for principal in exempt)


def test_the_validator_publishes_verdicts_to_the_configured_bus_only(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    assert template["Parameters"]["EventBusName"]["Default"] == "default"
    variables = resources["ValidatorFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["EVENT_BUS_NAME"] == {"Ref": "EventBusName"}
    statements = resources["ValidatorFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    publish = next(statement for statement in statements if statement["Sid"] == "PublishVerdicts")
    assert publish["Action"] == ["events:PutEvents"]
    assert publish["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"
    }
