"""template.yaml as data: the functions, routes, bucket and API settings the local stack builds from.

Everything local (routes, environments, bucket settings, HTTP API CORS, the JWT authorizer's
audience) is read from the template so the local stack cannot drift from the infrastructure.
Only the intrinsics the template uses are resolved: Ref, Fn::Sub and Fn::GetAtt, plus Fn::If over
Conditions built with Fn::Equals / Fn::Not (the shape of an optional resource). Pseudo parameters
get local stand-ins (region us-east-1, account 000000000000, stack "local"); a resource's Ref is
its own name property, a value the local stack created (``resource_values``), or "local-<Id>".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "000000000000"
LOCAL_STACK_NAME = "local"

PSEUDO_PARAMETERS: dict[str, str] = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT_ID,
    "AWS::StackName": LOCAL_STACK_NAME,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}

FUNCTION_TYPE = "AWS::Serverless::Function"
BUCKET_TYPE = "AWS::S3::Bucket"
QUEUE_TYPE = "AWS::SQS::Queue"
TABLE_TYPE = "AWS::DynamoDB::Table"
HTTP_API_TYPE = "AWS::Serverless::HttpApi"
LAYER_TYPE = "AWS::Serverless::LayerVersion"
# GetAtt <Id>.Arn of these types, from the resource's local name.
ARN_FORMATS = {
    BUCKET_TYPE: "arn:aws:s3:::{name}",
    QUEUE_TYPE: f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{{name}}",
    FUNCTION_TYPE: f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{{name}}",
    "AWS::Logs::LogGroup": f"arn:aws:logs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:log-group:{{name}}:*",
    TABLE_TYPE: f"arn:aws:dynamodb:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:table/{{name}}",
}


class TemplateError(ValueError):
    """The template cannot be read or a value in it cannot be resolved locally."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation short tags (!Ref, !Sub, !GetAtt, ...)."""


# CloudFormation reads 2024-01-01 as a string, not a date; drop YAML 1.1's timestamp resolver.
_CfnLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_short_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_tag)


def load_yaml(text: str) -> dict[str, Any]:
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise TemplateError("a template must be a YAML mapping")
    return cast(dict[str, Any], document)


@dataclass(frozen=True, slots=True)
class Route:
    """One HttpApi event of a function: ``method`` is upper case ("ANY" for any method)."""

    method: str
    path: str
    function_logical_id: str
    authorized: bool
    authorizer: str | None = None
    scopes: tuple[str, ...] = ()

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class JwtAuthorizer:
    """The template's JWT authorizer; locally its issuer is the local stack's (local/tokens.py)."""

    name: str
    audience: tuple[str, ...]
    identity_source: str = "$request.header.Authorization"


@dataclass(slots=True)
class FunctionSpec:
    """What a Lambda container for one function needs: code, layers, environment and limits."""

    logical_id: str
    code_uri: Path
    handler: str
    layer_dirs: list[Path]
    environment: dict[str, str]
    timeout: int
    memory_mb: int
    routes: list[Route]
    function_name: str = ""
    log_group: str = ""
    runtime: str = "python3.13"
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.function_name = self.function_name or f"{LOCAL_STACK_NAME}-{self.logical_id}"
        self.log_group = self.log_group or f"/aws/lambda/{self.function_name}"


def stringify(value: Any, where: str) -> str:
    """A resolved scalar as CloudFormation passes it on (booleans lower case, numbers as text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {value!r}")


class Resolver:
    """Resolves Ref, Fn::Sub, Fn::GetAtt and Fn::If against parameters and local resource values."""

    def __init__(self, template: Template, parameters: Mapping[str, Any], resource_values: Mapping[str, str]):
        self._template = template
        self._parameters = parameters
        self._values = resource_values

    def resolve(self, value: Any, where: str = "") -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(item, where) for item in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument, where)
            if key == "Fn::Sub":
                return self._sub(argument, where)
            if key == "Fn::GetAtt":
                resource_id, attribute = (str(part) for part in self.resolve(argument, where))
                return self.get_att(resource_id, attribute, where)
            if key == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve(when_true if self.condition(condition) else when_false, where)
            if key.startswith("Fn::"):
                raise TemplateError(f"{where}: {key} is not supported locally")
        resolved = {key: self.resolve(item, f"{where}.{key}" if where else key) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def resolve_string(self, value: Any, where: str) -> str:
        return stringify(self.resolve(value, where), where)

    def condition(self, name: str) -> bool:
        conditions = self._template.document.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}")
        return self._truth(conditions[name], f"Conditions.{name}")

    def _truth(self, value: Any, where: str) -> bool:
        ((key, argument),) = value.items()
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            left, right = (self.resolve_string(item, where) for item in argument)
            return left == right
        if key == "Fn::Not":
            return not self._truth(argument[0], where)
        raise TemplateError(f"{where}: {key} is not supported locally")

    def ref(self, name: Any, where: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self._parameters:
            return self._parameters[name]
        if name in self._values:
            return self._values[name]
        if name in (self._template.document.get("Parameters") or {}):
            raise TemplateError(f"{where}: parameter {name} has no Default; pass a parameter override")
        resource = self._template.resources.get(name)
        if resource is None:
            raise TemplateError(f"{where}: Ref to unknown parameter or resource {name!r}")
        if resource.get("Type") == QUEUE_TYPE:  # a queue's Ref is its URL, known once it exists
            raise TemplateError(f"{where}: Ref {name} (a queue URL) needs resource_values[{name!r}]")
        return self._name(name, resource, where)

    def get_att(self, resource_id: str, attribute: str, where: str) -> Any:
        key = f"{resource_id}.{attribute}"
        if key in self._values:
            return self._values[key]
        resource = self._template.resources.get(resource_id)
        functions = self._template.resources_of_type(FUNCTION_TYPE)
        if resource is None and any(resource_id.startswith(function) for function in functions):
            return f"local-{resource_id}-{attribute}"  # a resource SAM generates for a function (its Role)
        if resource is None:
            raise TemplateError(f"{where}: GetAtt of unknown resource {resource_id!r}")
        name = self._name(resource_id, resource, where)
        if attribute == "QueueName" and resource.get("Type") == QUEUE_TYPE:
            return name
        if attribute == "Arn" and resource.get("Type") in ARN_FORMATS:
            own = name if resource["Type"] == QUEUE_TYPE else self._values.get(resource_id, name)  # Ref: a URL
            return ARN_FORMATS[resource["Type"]].format(name=own)
        # Attributes that exist only after a deployment (role ARNs, ...): a recognisable stand-in.
        return f"local-{resource_id}-{attribute}"

    def _name(self, logical_id: str, resource: Mapping[str, Any], where: str) -> str:
        """The physical name: the resource's own <Type>Name / Name property, or "local-<Id>"."""
        properties = resource.get("Properties") or {}
        for prop in (f"{str(resource.get('Type', '')).rsplit('::', 1)[-1]}Name", "Name"):
            if prop in properties:
                return self.resolve_string(properties[prop], f"{where} -> {logical_id}.{prop}")
        name = f"{LOCAL_STACK_NAME}-{logical_id}"
        return name.lower() if resource.get("Type") == BUCKET_TYPE else name  # bucket names are lower case

    def _sub(self, argument: Any, where: str) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], self.resolve(argument[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return stringify(variables[name], where)
            if "." in name and not name.startswith("AWS::"):
                resource_id, attribute = name.split(".", 1)
                return stringify(self.get_att(resource_id, attribute, where), where)
            return stringify(self.ref(name, where), where)

        return re.sub(r"\$\{([^}]*)\}", replace, text)


_NO_VALUE = object()  # AWS::NoValue: the surrounding property or list item disappears


class Template:
    """A parsed SAM template with the views the local stack needs."""

    def __init__(self, document: Mapping[str, Any], base_dir: Path) -> None:
        self.document = document
        self.base_dir = base_dir
        self.resources: Mapping[str, Any] = document.get("Resources") or {}
        self.globals: Mapping[str, Any] = document.get("Globals") or {}

    def parameters(self) -> dict[str, str]:
        """Every parameter's default as a string (list defaults joined with ",")."""
        return {
            name: ",".join(map(str, default)) if isinstance(default, list) else stringify(default, name)
            for name, declaration in (self.document.get("Parameters") or {}).items()
            if (default := declaration.get("Default")) is not None
        }

    def check_overrides(self, parameter_overrides: Mapping[str, str] | None) -> None:
        unknown = set(parameter_overrides or {}) - set(self.document.get("Parameters") or {})
        if unknown:
            declared = ", ".join(sorted(self.document.get("Parameters") or {}))
            raise TemplateError(f"unknown parameter override(s): {', '.join(sorted(unknown))} (parameters: {declared})")

    def resolver(
        self, resource_values: Mapping[str, str] | None = None, parameter_overrides: Mapping[str, str] | None = None
    ) -> Resolver:
        self.check_overrides(parameter_overrides)
        declared = self.document.get("Parameters") or {}
        raw = {**self.parameters(), **(parameter_overrides or {})}
        # Ref to a list parameter is a list in CloudFormation.
        values = {
            name: text.split(",")
            if str(declared[name].get("Type", "")).startswith(("CommaDelimitedList", "List<"))
            else text
            for name, text in raw.items()
        }
        return Resolver(self, values, dict(resource_values or {}))

    def resources_of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        return {key: value for key, value in self.resources.items() if value.get("Type") == resource_type}

    # ---- functions

    def functions(
        self, resource_values: Mapping[str, str], parameter_overrides: Mapping[str, str] | None = None
    ) -> list[FunctionSpec]:
        resolver = self.resolver(resource_values, parameter_overrides)
        routes = self.routes(parameter_overrides)
        return [
            self._function_spec(logical_id, resolver, routes) for logical_id in self.resources_of_type(FUNCTION_TYPE)
        ]

    def function(
        self, logical_id: str, resource_values: Mapping[str, str], parameter_overrides: Mapping[str, str] | None = None
    ) -> FunctionSpec:
        for spec in self.functions(resource_values, parameter_overrides):
            if spec.logical_id == logical_id:
                return spec
        known = ", ".join(sorted(self.resources_of_type(FUNCTION_TYPE))) or "none"
        raise TemplateError(f"no function {logical_id!r} in the template (functions: {known})")

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """Globals.Function under the function's own properties, SAM's way (maps merge, lists add)."""
        merged: dict[str, Any] = dict(self.globals.get("Function") or {})
        for key, value in (self.resources[logical_id].get("Properties") or {}).items():
            inherited = merged.get(key)
            if isinstance(inherited, dict) and isinstance(value, dict):
                merged[key] = _merge_maps(inherited, value)
            else:
                merged[key] = inherited + value if isinstance(inherited, list) and isinstance(value, list) else value
        return merged

    def _function_spec(self, logical_id: str, resolver: Resolver, routes: list[Route]) -> FunctionSpec:
        where = f"Resources.{logical_id}"
        properties = self.function_properties(logical_id)
        code_uri = properties.get("CodeUri")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{where}: only zip functions with a local CodeUri can run locally")
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        environment = resolver.resolve(variables, f"{where}.Environment.Variables")
        log_group = resolver.resolve((properties.get("LoggingConfig") or {}).get("LogGroup", ""), where)
        return FunctionSpec(
            logical_id=logical_id,
            code_uri=(self.base_dir / code_uri).resolve(),
            handler=resolver.resolve_string(properties.get("Handler"), f"{where}.Handler"),
            layer_dirs=self._layer_dirs(properties.get("Layers") or []),
            environment={
                key: stringify(value, f"{where}.Environment.Variables.{key}") for key, value in environment.items()
            },
            timeout=int(resolver.resolve(properties.get("Timeout", 3), where)),
            memory_mb=int(resolver.resolve(properties.get("MemorySize", 128), where)),
            routes=[route for route in routes if route.function_logical_id == logical_id],
            function_name=resolver.resolve_string({"Ref": logical_id}, where),
            log_group=stringify(log_group, f"{where}.LoggingConfig.LogGroup"),
            runtime=str(resolver.resolve(properties.get("Runtime", ""), where)),
            events=dict(properties.get("Events") or {}),
        )

    def _layer_dirs(self, layers: list[Any]) -> list[Path]:
        """The template's own layers, in order; public layer ARNs (Powertools) come from the venv."""
        directories: list[Path] = []
        for layer in layers:
            resource = self.resources.get(str(layer.get("Ref"))) if isinstance(layer, dict) else None
            if resource is None or resource.get("Type") != LAYER_TYPE:
                continue
            root = (self.base_dir / str(resource["Properties"]["ContentUri"])).resolve()
            # A pre-built layer keeps its packages under python/, as Lambda's /opt/python.
            directories.extend([root, root / "python"] if (root / "python").is_dir() else [root])
        return directories

    # ---- HTTP API

    def routes(self, parameter_overrides: Mapping[str, str] | None = None) -> list[Route]:
        resolver = self.resolver({}, parameter_overrides)
        api_auth = self._http_api_properties().get("Auth") or {}
        routes: dict[str, Route] = {}
        for logical_id in self.resources_of_type(FUNCTION_TYPE):
            for event_name, event in (self.function_properties(logical_id).get("Events") or {}).items():
                if event.get("Type") != "HttpApi":
                    continue
                properties = resolver.resolve(event.get("Properties") or {}, f"{logical_id}.Events.{event_name}")
                method = str(properties.get("Method", "ANY")).upper().replace("X-AMAZON-APIGATEWAY-ANY-METHOD", "ANY")
                auth = properties.get("Auth") or {}
                authorizer = auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
                route = Route(
                    method,
                    str(properties.get("Path", "$default")),
                    logical_id,
                    authorized=authorizer not in (None, "NONE"),
                    authorizer=None if authorizer in (None, "NONE") else str(authorizer),
                    scopes=tuple(auth.get("AuthorizationScopes") or ()),
                )
                if route.route_key in routes:
                    first = routes[route.route_key].function_logical_id
                    raise TemplateError(f"route {route.route_key} is declared by {first} and {logical_id}")
                routes[route.route_key] = route
        return list(routes.values())

    def _http_api_properties(self) -> dict[str, Any]:
        """The HttpApi's properties over Globals.HttpApi (the implicit API has only Globals)."""
        apis = list(self.resources_of_type(HTTP_API_TYPE).values())
        own = (apis[0].get("Properties") or {}) if len(apis) == 1 else {}
        return _merge_maps(dict(self.globals.get("HttpApi") or {}), dict(own))

    def http_api_cors(self, parameter_overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The HttpApi CorsConfiguration (empty when the API has none; SAM's ``true`` allows all)."""
        cors = self._http_api_properties().get("CorsConfiguration")
        if cors is True:
            return {"AllowOrigins": ["*"], "AllowHeaders": ["*"], "AllowMethods": ["*"]}
        return cast(dict[str, Any], self.resolver({}, parameter_overrides).resolve(cors or {}, "CorsConfiguration"))

    def jwt_authorizers(self, parameter_overrides: Mapping[str, str] | None = None) -> dict[str, JwtAuthorizer]:
        resolver = self.resolver({}, parameter_overrides)
        result: dict[str, JwtAuthorizer] = {}
        for name, declaration in ((self._http_api_properties().get("Auth") or {}).get("Authorizers") or {}).items():
            config = declaration.get("JwtConfiguration")
            if not config:
                continue  # a Lambda authorizer: not emulated
            audience = resolver.resolve(config.get("audience") or config.get("Audience") or [], name)
            result[name] = JwtAuthorizer(
                name=name,
                audience=tuple(
                    stringify(item, name) for item in ([audience] if isinstance(audience, str) else audience)
                ),
                identity_source=str(declaration.get("IdentitySource", "$request.header.Authorization")),
            )
        return result

    # ---- the upload bucket

    def bucket_logical_id(self) -> str:
        """The upload bucket: the template's only bucket, or the one that sends notifications
        (others, such as the access-log bucket, are not emulated)."""
        buckets = self.resources_of_type(BUCKET_TYPE)
        if len(buckets) > 1:
            buckets = {
                logical_id: bucket
                for logical_id, bucket in buckets.items()
                if "NotificationConfiguration" in (bucket.get("Properties") or {})
            }
        if len(buckets) != 1:
            raise TemplateError(f"expected one upload {BUCKET_TYPE} (the one with notifications), found {len(buckets)}")
        return next(iter(buckets))

    def bucket_name(self, parameter_overrides: Mapping[str, str] | None = None) -> str:
        """The bucket's name as the template computes it (its BucketName, resolved locally)."""
        return self.resolver({}, parameter_overrides).resolve_string({"Ref": self.bucket_logical_id()}, "bucket")

    def bucket_properties(
        self, resource_values: Mapping[str, str] | None = None, parameter_overrides: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """All of the bucket's Properties, resolved (CloudFormation shape)."""
        properties = self.resources[self.bucket_logical_id()].get("Properties") or {}
        return cast(dict[str, Any], self.resolver(resource_values, parameter_overrides).resolve(properties, "bucket"))


def _merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        both_maps = isinstance(merged.get(key), dict) and isinstance(value, dict)
        merged[key] = _merge_maps(merged[key], value) if both_maps else value
    return merged


def load_template(path: Path | None = None) -> Template:
    """Parse template.yaml (the repository's own by default)."""
    template_path = (path or DEFAULT_TEMPLATE).resolve()
    try:
        text = template_path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(f"cannot read {template_path}: {error.strerror}") from None
    return Template(load_yaml(text), template_path.parent)
