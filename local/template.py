"""template.yaml as data: the functions, routes, bucket and API settings the local stack builds from.

Everything local (routes, environments, bucket CORS and lifecycle, HTTP API CORS, the JWT
authorizer) is read from the template so the local stack cannot drift from the infrastructure.
CloudFormation intrinsics are resolved the way CloudFormation would, with local stand-ins for
pseudo parameters (region us-east-1, account 000000000000, stack "local") and for resource
attributes that only exist after a deployment (passed in as ``resource_values``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "000000000000"
LOCAL_STACK_NAME = "local"

PSEUDO_PARAMETERS: dict[str, Any] = {
    "AWS::Region": LOCAL_REGION,
    "AWS::AccountId": LOCAL_ACCOUNT_ID,
    "AWS::StackName": LOCAL_STACK_NAME,
    "AWS::StackId": (
        f"arn:aws:cloudformation:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:stack/{LOCAL_STACK_NAME}/"
        "00000000-0000-0000-0000-000000000000"
    ),
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}

FUNCTION_TYPE = "AWS::Serverless::Function"
BUCKET_TYPE = "AWS::S3::Bucket"
QUEUE_TYPE = "AWS::SQS::Queue"
HTTP_API_TYPE = "AWS::Serverless::HttpApi"
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
LIST_PARAMETER_TYPES = ("CommaDelimitedList", "List<")


class TemplateError(ValueError):
    """The template cannot be read or a value in it cannot be resolved locally."""


class _NoValue:
    """AWS::NoValue: the surrounding property or list item disappears."""


NO_VALUE = _NoValue()


# --------------------------------------------------------------------------- YAML loading


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
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise TemplateError(f"unsupported YAML node for !{tag_suffix}")
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_tag)


def load_yaml(text: str) -> dict[str, Any]:
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise TemplateError("a template must be a YAML mapping")
    return cast(dict[str, Any], document)


# --------------------------------------------------------------------------- public shapes


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
    name: str
    issuer: str
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
        if not self.function_name:
            self.function_name = f"{LOCAL_STACK_NAME}-{self.logical_id}"
        if not self.log_group:
            self.log_group = f"/aws/lambda/{self.function_name}"


# --------------------------------------------------------------------------- resolution


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_BUCKET_ATTRIBUTES: dict[str, Callable[[str], str]] = {
    "Arn": lambda name: f"arn:aws:s3:::{name}",
    "DomainName": lambda name: f"{name}.s3.amazonaws.com",
    "RegionalDomainName": lambda name: f"{name}.s3.{LOCAL_REGION}.amazonaws.com",
}
_ARN_BUILDERS: dict[str, Callable[[str], str]] = {
    QUEUE_TYPE: lambda name: f"arn:aws:sqs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{name}",
    FUNCTION_TYPE: lambda name: f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{name}",
    "AWS::Lambda::Function": lambda name: f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{name}",
    "AWS::SNS::Topic": lambda name: f"arn:aws:sns:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{name}",
    "AWS::Logs::LogGroup": lambda name: f"arn:aws:logs:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:log-group:{name}:*",
}


class Resolver:
    """Resolves intrinsic functions against parameters, conditions and known resource values.

    ``resource_values`` maps a logical id to what ``Ref`` returns for it, and
    ``"LogicalId.Attribute"`` to what ``Fn::GetAtt`` returns; anything missing is derived from
    the resource's name property where CloudFormation's rule is known, or raises TemplateError.
    """

    def __init__(
        self,
        document: Mapping[str, Any],
        parameters: Mapping[str, Any],
        resource_values: Mapping[str, str] | None = None,
    ) -> None:
        self._document = document
        self._parameters = parameters
        self._resource_values = dict(resource_values or {})
        self._resources: Mapping[str, Any] = document.get("Resources") or {}
        self._conditions: Mapping[str, Any] = document.get("Conditions") or {}
        self._mappings: Mapping[str, Any] = document.get("Mappings") or {}
        self._condition_cache: dict[str, bool] = {}

    def resolve(self, value: Any, where: str = "") -> Any:
        if isinstance(value, list):
            items = [self.resolve(item, where) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(argument, where)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument, where)
        resolved = {key: self.resolve(item, f"{where}.{key}" if where else key) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def resolve_string(self, value: Any, where: str) -> str:
        resolved = self.resolve(value, where)
        return stringify(resolved, where)

    def condition(self, name: str) -> bool:
        if name not in self._condition_cache:
            if name not in self._conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._condition_cache[name] = bool(self.resolve(self._conditions[name], f"Conditions.{name}"))
        return self._condition_cache[name]

    def ref(self, name: Any, where: str) -> Any:
        if not isinstance(name, str):
            raise TemplateError(f"{where}: Ref takes a name, got {name!r}")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self._parameters:
            return self._parameters[name]
        if name in self._resource_values:
            return self._resource_values[name]
        if name in (self._document.get("Parameters") or {}):
            raise TemplateError(f"{where}: parameter {name} has no Default; pass a parameter override")
        resource = self._resources.get(name)
        if resource is None:
            raise TemplateError(f"{where}: Ref to unknown parameter or resource {name!r}")
        own_name = self._resource_name(name, resource, where)
        if own_name is not None and resource.get("Type") != QUEUE_TYPE:  # a queue's Ref is its URL
            return own_name
        raise TemplateError(
            f"{where}: Ref {name} ({resource.get('Type')}) has no local value; pass it in resource_values[{name!r}]"
        )

    def get_att(self, resource_id: str, attribute: str, where: str) -> Any:
        key = f"{resource_id}.{attribute}"
        if key in self._resource_values:
            return self._resource_values[key]
        resource = self._resources.get(resource_id)
        if resource is None:
            raise TemplateError(f"{where}: GetAtt of unknown resource {resource_id!r}")
        resource_type = resource.get("Type", "")
        name = self._resource_values.get(resource_id) if resource_type != QUEUE_TYPE else None
        name = name or self._resource_name(resource_id, resource, where)
        if name is not None:
            if resource_type == BUCKET_TYPE and attribute in _BUCKET_ATTRIBUTES:
                return _BUCKET_ATTRIBUTES[attribute](name)
            if attribute == "Arn" and resource_type in _ARN_BUILDERS:
                return _ARN_BUILDERS[resource_type](name)
            if resource_type == QUEUE_TYPE and attribute == "QueueName":
                return name
        raise TemplateError(f"{where}: GetAtt {key} has no local value; pass it in resource_values[{key!r}]")

    def _resource_name(self, logical_id: str, resource: Mapping[str, Any], where: str) -> str | None:
        """The physical name a resource gets: its own *Name property, or a local stand-in."""
        resource_type = str(resource.get("Type", ""))
        properties = resource.get("Properties") or {}
        suffix = resource_type.rsplit("::", 1)[-1]
        for prop in (f"{suffix}Name", "Name"):
            if prop in properties:
                return self.resolve_string(properties[prop], f"{where} -> {logical_id}.{prop}")
        if resource_type in (FUNCTION_TYPE, "AWS::Lambda::Function"):
            return f"{LOCAL_STACK_NAME}-{logical_id}"
        if resource_type == QUEUE_TYPE:
            return f"{LOCAL_STACK_NAME}-{logical_id}"
        return None

    def _function(self, key: str, argument: Any, where: str) -> Any:
        handler = _FUNCTIONS.get(key)
        if handler is None:
            raise TemplateError(f"{where}: {key} is not supported locally")
        return handler(self, argument, where)

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, list) and len(argument) == 2:
            text, variables = argument[0], self.resolve(argument[1], where)
        elif isinstance(argument, str):
            text, variables = argument, {}
        else:
            raise TemplateError(f"{where}: Fn::Sub takes a string or [string, variables]")
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise TemplateError(f"{where}: Fn::Sub takes a string or [string, variables]")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            name = name.strip()
            if name in variables:
                return stringify(variables[name], where)
            if "." in name and not name.startswith("AWS::"):
                resource_id, _, attribute = name.partition(".")
                return stringify(self.get_att(resource_id, attribute, where), where)
            return stringify(self.ref(name, where), where)

        return _SUB_VARIABLE.sub(replace, text)

    def _get_att(self, argument: Any, where: str) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        resolved = self.resolve(argument, where)
        if not (isinstance(resolved, list) and len(resolved) == 2):
            raise TemplateError(f"{where}: Fn::GetAtt takes [resource, attribute]")
        return self.get_att(str(resolved[0]), str(resolved[1]), where)

    def _join(self, argument: Any, where: str) -> str:
        delimiter, items = self._pair(argument, "Fn::Join", where)
        if not isinstance(items, list):
            raise TemplateError(f"{where}: Fn::Join takes [delimiter, list]")
        return str(delimiter).join(stringify(item, where) for item in items)

    def _select(self, argument: Any, where: str) -> Any:
        index, items = self._pair(argument, "Fn::Select", where)
        if not isinstance(items, list):
            raise TemplateError(f"{where}: Fn::Select takes [index, list]")
        try:
            return items[int(index)]
        except (ValueError, IndexError):
            raise TemplateError(f"{where}: Fn::Select index {index!r} out of range") from None

    def _split(self, argument: Any, where: str) -> list[str]:
        delimiter, text = self._pair(argument, "Fn::Split", where)
        return stringify(text, where).split(str(delimiter))

    def _if(self, argument: Any, where: str) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3 and isinstance(argument[0], str)):
            raise TemplateError(f"{where}: Fn::If takes [condition, then, else]")
        branch = argument[1] if self.condition(argument[0]) else argument[2]
        return self.resolve(branch, where)

    def _equals(self, argument: Any, where: str) -> bool:
        left, right = self._pair(argument, "Fn::Equals", where)
        return stringify(left, where) == stringify(right, where)

    def _not(self, argument: Any, where: str) -> bool:
        values = self.resolve(argument, where)
        if not (isinstance(values, list) and len(values) == 1):
            raise TemplateError(f"{where}: Fn::Not takes [condition]")
        return not bool(values[0])

    def _and(self, argument: Any, where: str) -> bool:
        return all(bool(item) for item in self._list(argument, "Fn::And", where))

    def _or(self, argument: Any, where: str) -> bool:
        return any(bool(item) for item in self._list(argument, "Fn::Or", where))

    def _find_in_map(self, argument: Any, where: str) -> Any:
        values = self._list(argument, "Fn::FindInMap", where)
        if len(values) != 3:
            raise TemplateError(f"{where}: Fn::FindInMap takes [map, key, key]")
        try:
            return self.resolve(self._mappings[values[0]][values[1]][values[2]], where)
        except (KeyError, TypeError):
            raise TemplateError(f"{where}: Fn::FindInMap {values!r} not found") from None

    def _base64(self, argument: Any, where: str) -> str:
        return base64.b64encode(self.resolve_string(argument, where).encode()).decode()

    def _to_json_string(self, argument: Any, where: str) -> str:
        return json.dumps(self.resolve(argument, where), separators=(",", ":"))

    def _get_azs(self, argument: Any, where: str) -> list[str]:
        return [f"{LOCAL_REGION}{zone}" for zone in "abcdef"]

    def _pair(self, argument: Any, name: str, where: str) -> tuple[Any, Any]:
        values = self.resolve(argument, where)
        if not (isinstance(values, list) and len(values) == 2):
            raise TemplateError(f"{where}: {name} takes two arguments")
        return values[0], values[1]

    def _list(self, argument: Any, name: str, where: str) -> list[Any]:
        values = self.resolve(argument, where)
        if not isinstance(values, list):
            raise TemplateError(f"{where}: {name} takes a list")
        return values


_FUNCTIONS: dict[str, Callable[[Resolver, Any, str], Any]] = {
    "Fn::Sub": Resolver._sub,
    "Fn::GetAtt": Resolver._get_att,
    "Fn::Join": Resolver._join,
    "Fn::Select": Resolver._select,
    "Fn::Split": Resolver._split,
    "Fn::If": Resolver._if,
    "Fn::Equals": Resolver._equals,
    "Fn::Not": Resolver._not,
    "Fn::And": Resolver._and,
    "Fn::Or": Resolver._or,
    "Fn::FindInMap": Resolver._find_in_map,
    "Fn::Base64": Resolver._base64,
    "Fn::ToJsonString": Resolver._to_json_string,
    "Fn::GetAZs": Resolver._get_azs,
}


def stringify(value: Any, where: str) -> str:
    """A resolved scalar as CloudFormation passes it on (booleans lower case, numbers as text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {value!r}")


# --------------------------------------------------------------------------- the template


class Template:
    """A parsed SAM template with the views the local stack needs."""

    def __init__(self, document: Mapping[str, Any], base_dir: Path) -> None:
        self.document = document
        self.base_dir = base_dir
        self.resources: Mapping[str, Any] = document.get("Resources") or {}
        self.globals: Mapping[str, Any] = document.get("Globals") or {}

    # ---- parameters and resolution

    def parameters(self) -> dict[str, str]:
        """Every parameter's default as a string (list defaults joined with ",")."""
        result: dict[str, str] = {}
        for name, declaration in (self.document.get("Parameters") or {}).items():
            if "Default" not in declaration:
                continue
            default = declaration["Default"]
            if isinstance(default, list):
                result[name] = ",".join(stringify(item, f"Parameters.{name}") for item in default)
            else:
                result[name] = stringify(default, f"Parameters.{name}")
        return result

    def resolver(
        self,
        resource_values: Mapping[str, str] | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> Resolver:
        declared = self.document.get("Parameters") or {}
        unknown = set(parameter_overrides or {}) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameter override(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        raw = {**self.parameters(), **(parameter_overrides or {})}
        for name, declaration in declared.items():
            if name not in raw:
                continue  # only an error if something actually refers to it
            kind = str(declaration.get("Type", "String"))
            # Ref to a list parameter is a list in CloudFormation, so !Join works on it.
            values[name] = raw[name].split(",") if kind.startswith(LIST_PARAMETER_TYPES) else raw[name]
        return Resolver(self.document, values, resource_values)

    def resources_of_type(self, resource_type: str) -> dict[str, Mapping[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if isinstance(resource, dict) and resource.get("Type") == resource_type
        }

    # ---- functions

    def functions(
        self,
        resource_values: Mapping[str, str],
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> list[FunctionSpec]:
        resolver = self.resolver(resource_values, parameter_overrides)
        routes = self.routes(parameter_overrides)
        return [
            self._function_spec(logical_id, resource, resolver, routes)
            for logical_id, resource in self.resources_of_type(FUNCTION_TYPE).items()
        ]

    def function(
        self,
        logical_id: str,
        resource_values: Mapping[str, str],
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> FunctionSpec:
        for spec in self.functions(resource_values, parameter_overrides):
            if spec.logical_id == logical_id:
                return spec
        known = ", ".join(sorted(self.resources_of_type(FUNCTION_TYPE))) or "none"
        raise TemplateError(f"no function {logical_id!r} in the template (functions: {known})")

    def _function_properties(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """Globals.Function merged under the function's own properties, SAM's way."""
        merged: dict[str, Any] = dict(self.globals.get("Function") or {})
        for key, value in (resource.get("Properties") or {}).items():
            inherited = merged.get(key)
            if isinstance(inherited, dict) and isinstance(value, dict):
                merged[key] = _merge_maps(inherited, value)
            elif isinstance(inherited, list) and isinstance(value, list):
                merged[key] = inherited + value
            else:
                merged[key] = value
        return merged

    def _function_spec(
        self, logical_id: str, resource: Mapping[str, Any], resolver: Resolver, routes: list[Route]
    ) -> FunctionSpec:
        where = f"Resources.{logical_id}"
        properties = self._function_properties(resource)
        if "InlineCode" in properties or properties.get("PackageType") == "Image":
            raise TemplateError(f"{where}: only zip functions with a local CodeUri can run locally")
        code_uri = resolver.resolve(properties.get("CodeUri"), f"{where}.CodeUri")
        if not isinstance(code_uri, str):
            raise TemplateError(f"{where}.CodeUri must be a local directory")
        environment = resolver.resolve(
            (properties.get("Environment") or {}).get("Variables") or {}, f"{where}.Environment"
        )
        name = resolver.ref(logical_id, where)
        log_group = resolver.resolve((properties.get("LoggingConfig") or {}).get("LogGroup", ""), where)
        return FunctionSpec(
            logical_id=logical_id,
            code_uri=(self.base_dir / code_uri).resolve(),
            handler=resolver.resolve_string(properties.get("Handler"), f"{where}.Handler"),
            layer_dirs=self._layer_dirs(properties.get("Layers") or [], resolver, where),
            environment={
                key: stringify(value, f"{where}.Environment.Variables.{key}") for key, value in environment.items()
            },
            timeout=int(resolver.resolve(properties.get("Timeout", 3), f"{where}.Timeout")),
            memory_mb=int(resolver.resolve(properties.get("MemorySize", 128), f"{where}.MemorySize")),
            routes=[route for route in routes if route.function_logical_id == logical_id],
            function_name=stringify(name, where),
            log_group=stringify(log_group, f"{where}.LoggingConfig.LogGroup"),
            runtime=str(resolver.resolve(properties.get("Runtime", ""), f"{where}.Runtime")),
            events=dict(properties.get("Events") or {}),
        )

    def _layer_dirs(self, layers: list[Any], resolver: Resolver, where: str) -> list[Path]:
        """The template's own layers; public layer ARNs (Powertools) come from the venv locally."""
        directories: list[Path] = []
        for layer in layers:
            if not (isinstance(layer, dict) and set(layer) == {"Ref"}):
                continue
            resource = self.resources.get(layer["Ref"])
            if not isinstance(resource, dict) or resource.get("Type") not in LAYER_TYPES:
                continue
            properties = resource.get("Properties") or {}
            content = properties.get("ContentUri", properties.get("Content"))
            content = resolver.resolve(content, f"{where}.Layers")
            if not isinstance(content, str):
                raise TemplateError(f"layer {layer['Ref']} must have a local ContentUri")
            root = (self.base_dir / content).resolve()
            directories.append(root)
            # A pre-built layer keeps its packages under python/, as Lambda's /opt/python.
            if (root / "python").is_dir():
                directories.append(root / "python")
        return directories

    # ---- HTTP API

    def routes(self, parameter_overrides: Mapping[str, str] | None = None) -> list[Route]:
        resolver = self.resolver({}, parameter_overrides)
        routes: list[Route] = []
        seen: dict[str, str] = {}
        for logical_id, resource in self.resources_of_type(FUNCTION_TYPE).items():
            events = self._function_properties(resource).get("Events") or {}
            for event_name, event in events.items():
                if not isinstance(event, dict) or event.get("Type") != "HttpApi":
                    continue
                properties = event.get("Properties") or {}
                route = self._route(logical_id, event_name, properties, resolver)
                if route.route_key in seen:
                    raise TemplateError(
                        f"route {route.route_key} is declared by {seen[route.route_key]} and {logical_id}"
                    )
                seen[route.route_key] = logical_id
                routes.append(route)
        return routes

    def _route(self, logical_id: str, event_name: str, properties: Mapping[str, Any], resolver: Resolver) -> Route:
        where = f"Resources.{logical_id}.Events.{event_name}"
        method = str(resolver.resolve(properties.get("Method", "ANY"), where)).upper()
        if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
            method = "ANY"
        path = str(resolver.resolve(properties.get("Path", "$default"), where))
        api_auth = self._http_api_properties(properties.get("ApiId")).get("Auth") or {}
        event_auth = properties.get("Auth") or {}
        authorizer = event_auth.get("Authorizer", api_auth.get("DefaultAuthorizer"))
        scopes = event_auth.get("AuthorizationScopes") or []
        if authorizer in (None, "NONE"):
            return Route(method, path, logical_id, authorized=False)
        return Route(
            method,
            path,
            logical_id,
            authorized=True,
            authorizer=str(authorizer),
            scopes=tuple(str(scope) for scope in resolver.resolve(scopes, where)),
        )

    def _http_api_properties(self, api_ref: Any = None) -> dict[str, Any]:
        """The HttpApi's properties over Globals.HttpApi (the implicit API has only Globals)."""
        apis = self.resources_of_type(HTTP_API_TYPE)
        own: Mapping[str, Any] = {}
        if isinstance(api_ref, dict) and "Ref" in api_ref:
            own = (apis.get(api_ref["Ref"]) or {}).get("Properties") or {}
        elif api_ref is None and len(apis) == 1:
            own = next(iter(apis.values())).get("Properties") or {}
        return _merge_maps(dict(self.globals.get("HttpApi") or {}), dict(own))

    def http_api_cors(self, parameter_overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The HttpApi CorsConfiguration (empty when the API has none)."""
        cors = self._http_api_properties().get("CorsConfiguration")
        if cors is True:  # SAM's shorthand: everything allowed
            return {"AllowOrigins": ["*"], "AllowHeaders": ["*"], "AllowMethods": ["*"]}
        if not cors:
            return {}
        resolved = self.resolver({}, parameter_overrides).resolve(cors, "HttpApi.CorsConfiguration")
        if not isinstance(resolved, dict):
            raise TemplateError("HttpApi.CorsConfiguration must be a mapping or true")
        return resolved

    def jwt_authorizers(self, parameter_overrides: Mapping[str, str] | None = None) -> dict[str, JwtAuthorizer]:
        resolver = self.resolver({}, parameter_overrides)
        authorizers = (self._http_api_properties().get("Auth") or {}).get("Authorizers") or {}
        result: dict[str, JwtAuthorizer] = {}
        for name, declaration in authorizers.items():
            where = f"HttpApi.Auth.Authorizers.{name}"
            config = resolver.resolve(declaration.get("JwtConfiguration") or {}, where)
            if not config:
                continue  # a Lambda authorizer: not emulated
            audience = config.get("audience") or config.get("Audience") or []
            result[name] = JwtAuthorizer(
                name=name,
                issuer=stringify(config.get("issuer") or config.get("Issuer") or "", where),
                audience=tuple(stringify(item, where) for item in audience),
                identity_source=str(
                    resolver.resolve(declaration.get("IdentitySource", "$request.header.Authorization"), where)
                ),
            )
        return result

    # ---- the upload bucket

    def bucket_logical_id(self) -> str:
        buckets = self.resources_of_type(BUCKET_TYPE)
        if len(buckets) != 1:
            raise TemplateError(f"expected exactly one {BUCKET_TYPE} in the template, found {len(buckets)}")
        return next(iter(buckets))

    def _bucket_properties(self) -> Mapping[str, Any]:
        return self.resources[self.bucket_logical_id()].get("Properties") or {}

    def bucket_name(self, parameter_overrides: Mapping[str, str] | None = None) -> str:
        """The bucket's name as the template computes it (its BucketName, resolved locally)."""
        logical_id = self.bucket_logical_id()
        return stringify(self.resolver({}, parameter_overrides).ref(logical_id, logical_id), logical_id)

    def bucket_properties(
        self,
        resource_values: Mapping[str, str] | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """All of the bucket's Properties, resolved (CloudFormation shape)."""
        resolved = self.resolver(resource_values, parameter_overrides).resolve(
            dict(self._bucket_properties()), self.bucket_logical_id()
        )
        return cast(dict[str, Any], resolved)

    def bucket_cors(
        self,
        resource_values: Mapping[str, str] | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The bucket's CorsConfiguration in S3 API shape ({"CORSRules": [...]}), {} if none."""
        raw = self._bucket_properties().get("CorsConfiguration")
        if not raw:
            return {}
        resolved = self.resolver(resource_values, parameter_overrides).resolve(raw, "Bucket.CorsConfiguration")
        renames = {
            "Id": "ID",
            "AllowedHeaders": "AllowedHeaders",
            "AllowedMethods": "AllowedMethods",
            "AllowedOrigins": "AllowedOrigins",
            "ExposedHeaders": "ExposeHeaders",
            "MaxAge": "MaxAgeSeconds",
        }
        rules = [
            {renames[key]: (int(value) if key == "MaxAge" else value) for key, value in rule.items() if key in renames}
            for rule in resolved.get("CorsRules") or []
        ]
        return {"CORSRules": rules}

    def bucket_lifecycle(
        self,
        resource_values: Mapping[str, str] | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The bucket's LifecycleConfiguration in S3 API shape ({"Rules": [...]}), {} if none."""
        raw = self._bucket_properties().get("LifecycleConfiguration")
        if not raw:
            return {}
        resolved = self.resolver(resource_values, parameter_overrides).resolve(raw, "Bucket.LifecycleConfiguration")
        return {"Rules": [_lifecycle_rule(rule) for rule in resolved.get("Rules") or []]}

    def bucket_versioning(self, parameter_overrides: Mapping[str, str] | None = None) -> bool:
        raw = self._bucket_properties().get("VersioningConfiguration")
        if not raw:
            return False
        resolved = self.resolver({}, parameter_overrides).resolve(raw, "Bucket.VersioningConfiguration")
        return bool(resolved.get("Status") == "Enabled")

    def bucket_notifications(
        self,
        resource_values: Mapping[str, str] | None = None,
        parameter_overrides: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The bucket's own NotificationConfiguration, resolved (CFN shape), {} if none."""
        raw = self._bucket_properties().get("NotificationConfiguration")
        if not raw:
            return {}
        resolved = self.resolver(resource_values, parameter_overrides).resolve(raw, "Bucket.NotificationConfiguration")
        return cast(dict[str, Any], resolved)


def _merge_maps(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _merge_maps(merged[key], value)
        else:
            merged[key] = value
    return merged


def _lifecycle_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    """One CloudFormation lifecycle Rule as S3's PutBucketLifecycleConfiguration expects it."""
    result: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        result["ID"] = rule["Id"]
    conditions: dict[str, Any] = {}
    prefix = rule.get("Prefix")
    if prefix is not None:
        conditions["Prefix"] = prefix
    tags = [{"Key": tag["Key"], "Value": tag["Value"]} for tag in rule.get("TagFilters") or []]
    for key in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if key in rule:
            conditions[key] = int(rule[key])
    if len(conditions) + len(tags) > 1:
        result["Filter"] = {"And": {**conditions, **({"Tags": tags} if tags else {})}}
    elif tags:
        result["Filter"] = {"Tag": tags[0]}
    else:
        result["Filter"] = conditions or {"Prefix": ""}

    expiration: dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = bool(rule["ExpiredObjectDeleteMarker"])
    if expiration:
        result["Expiration"] = expiration
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        result["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}

    transitions = list(rule.get("Transitions") or []) + ([rule["Transition"]] if "Transition" in rule else [])
    if transitions:
        result["Transitions"] = [_transition(item, "Days") for item in transitions]
    noncurrent = list(rule.get("NoncurrentVersionTransitions") or [])
    if "NoncurrentVersionTransition" in rule:
        noncurrent.append(rule["NoncurrentVersionTransition"])
    if noncurrent:
        result["NoncurrentVersionTransitions"] = [_transition(item, "NoncurrentDays") for item in noncurrent]
    noncurrent_expiration: dict[str, Any] = {}
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent_expiration["NoncurrentDays"] = int(rule["NoncurrentVersionExpirationInDays"])
    if "NoncurrentVersionExpiration" in rule:
        declared = rule["NoncurrentVersionExpiration"]
        noncurrent_expiration["NoncurrentDays"] = int(declared["NoncurrentDays"])
        if "NewerNoncurrentVersions" in declared:
            noncurrent_expiration["NewerNoncurrentVersions"] = int(declared["NewerNoncurrentVersions"])
    if noncurrent_expiration:
        result["NoncurrentVersionExpiration"] = noncurrent_expiration
    return result


def _transition(item: Mapping[str, Any], days_key: str) -> dict[str, Any]:
    result: dict[str, Any] = {"StorageClass": item["StorageClass"]}
    if "TransitionInDays" in item:
        result[days_key] = int(item["TransitionInDays"])
    if "TransitionDate" in item:
        result["Date"] = item["TransitionDate"]
    if "NewerNoncurrentVersions" in item:
        result["NewerNoncurrentVersions"] = int(item["NewerNoncurrentVersions"])
    return result


def load_template(path: Path | None = None) -> Template:
    """Parse template.yaml (the repository's own by default)."""
    template_path = (path or DEFAULT_TEMPLATE).resolve()
    try:
        text = template_path.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(f"cannot read {template_path}: {error.strerror}") from None
    return Template(load_yaml(text), template_path.parent)
