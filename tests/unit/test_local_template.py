"""The local stack's template reader: short tags, and the intrinsics the template uses (Ref, Sub, GetAtt, If)."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from local.resources import lifecycle_rule
from local.template import Template, TemplateError, load_template, load_yaml

BASE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Prefix:
    Type: String
    Default: demo
  Origins:
    Type: CommaDelimitedList
    Default: "https://a.example,https://b.example"
  Limit:
    Type: Number
    Default: 42
  Stage:
    Type: String
    Default: dev
  Secretless:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [!Condition IsProd]
Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    MemorySize: 128
    Layers:
      - !Ref Core
      - !Sub arn:aws:lambda:${AWS::Region}:017000801446:layer:Powertools:1
    Environment:
      Variables:
        SHARED: from-globals
        OVERRIDDEN: from-globals
Resources:
  Core:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/core/
  Bucket:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub ${Prefix}-${AWS::AccountId}-${AWS::Region}
      VersioningConfiguration: {Status: Enabled}
  Queue:
    Type: AWS::SQS::Queue
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            JwtConfiguration:
              issuer: !Sub https://issuer.example/${Prefix}
              audience: !Ref Origins
      CorsConfiguration:
        AllowOrigins: !Ref Origins
        AllowMethods: [GET, POST]
        MaxAge: 600
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Handler: fn_handler.lambda_handler
      Timeout: 30
      MemorySize: 256
      Environment:
        Variables:
          OVERRIDDEN: own
          BUCKET: !Ref Bucket
          BUCKET_ARN: !GetAtt Bucket.Arn
          QUEUE_URL: !Ref Queue
          QUEUE_ARN: !GetAtt Queue.Arn
          LIMIT: !Ref Limit
          ROLE_ARN: !GetAtt FnRole.Arn
          MODE: !If [IsProd, production, development]
          NOT_PROD: !If [NotProd, "yes", "no"]
          OPTIONAL: !If [IsProd, set, !Ref AWS::NoValue]
          FLAG: true
          STACK: !Sub "${AWS::StackName}/${AWS::Partition}/${AWS::URLSuffix}"
          LITERAL: !Sub "${!NotAVariable}-${Prefix}"
          WITH_VARS: !Sub
            - "${Name}@${Prefix}"
            - Name: !Ref Stage
          FUNCTION_NAME: !Ref Fn
      Events:
        Create:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: post, Path: /things}
        Read:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: GET, Path: "/things/{id}"}
        Public:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /health
            Auth: {Authorizer: NONE}
"""


def template_from(text: str, base_dir: Path = Path("/repo")) -> Template:
    return Template(load_yaml(dedent(text)), base_dir)


def resolved_environment(template: Template, **values: str) -> dict[str, str]:
    (spec,) = template.functions({"Queue": "http://q.local/000000000000/local-Queue", **values})
    return spec.environment


def test_short_tags_become_long_form_intrinsics() -> None:
    # Given YAML with CloudFormation short tags
    document = load_yaml(
        "a: !Ref X\nb: !GetAtt R.Arn\nc: !Sub x\nd: !Join [',', [a]]\ne: !Condition C\nf: !GetAtt [R, Arn]\n"
    )
    # Then each is the JSON form CloudFormation documents
    assert document == {
        "a": {"Ref": "X"},
        "b": {"Fn::GetAtt": ["R", "Arn"]},
        "c": {"Fn::Sub": "x"},
        "d": {"Fn::Join": [",", ["a"]]},
        "e": {"Condition": "C"},
        "f": {"Fn::GetAtt": ["R", "Arn"]},
    }


def test_dates_stay_strings() -> None:
    assert load_yaml("v: 2010-09-09\n") == {"v": "2010-09-09"}


def test_parameters_are_defaults_as_strings() -> None:
    parameters = template_from(BASE).parameters()
    assert parameters["Limit"] == "42"
    assert parameters["Origins"] == "https://a.example,https://b.example"
    assert "Secretless" not in parameters  # no default, nothing invented


def test_environment_resolves_every_intrinsic() -> None:
    # Given the template above / When the function's environment is resolved locally
    environment = resolved_environment(template_from(BASE))
    # Then parameters, pseudo parameters, resources and conditions resolve (deploy-time attributes
    # such as a role's ARN get a recognisable stand-in)
    assert environment == {
        "SHARED": "from-globals",
        "OVERRIDDEN": "own",
        "BUCKET": "demo-000000000000-us-east-1",
        "BUCKET_ARN": "arn:aws:s3:::demo-000000000000-us-east-1",
        "QUEUE_URL": "http://q.local/000000000000/local-Queue",
        "QUEUE_ARN": "arn:aws:sqs:us-east-1:000000000000:local-Queue",
        "LIMIT": "42",
        "ROLE_ARN": "local-FnRole-Arn",
        "MODE": "development",
        "NOT_PROD": "yes",
        "FLAG": "true",
        "STACK": "local/aws/amazonaws.com",
        "LITERAL": "${NotAVariable}-demo",
        "WITH_VARS": "dev@demo",
        "FUNCTION_NAME": "local-Fn",
    }


def test_parameter_overrides_flow_through_conditions() -> None:
    template = template_from(BASE)
    (spec,) = template.functions({"Queue": "url"}, {"Stage": "prod", "Prefix": "other"})
    assert spec.environment["MODE"] == "production"
    assert spec.environment["OPTIONAL"] == "set"
    assert spec.environment["BUCKET"] == "other-000000000000-us-east-1"


def test_resource_values_win_over_derived_names() -> None:
    environment = resolved_environment(template_from(BASE), Bucket="given-bucket")
    assert environment["BUCKET"] == "given-bucket"
    assert environment["BUCKET_ARN"] == "arn:aws:s3:::given-bucket"


def test_function_spec_merges_globals_sam_style() -> None:
    (spec,) = template_from(BASE, Path("/repo")).functions({"Queue": "url"})
    assert spec.code_uri == Path("/repo/functions/fn")
    assert spec.handler == "fn_handler.lambda_handler"
    assert spec.timeout == 30  # own value beats Globals
    assert spec.memory_mb == 256
    assert spec.layer_dirs == [Path("/repo/layers/core")]  # the public layer ARN is not a directory
    assert spec.function_name == "local-Fn"
    assert spec.log_group == "/aws/lambda/local-Fn"
    assert [route.route_key for route in spec.routes] == ["POST /things", "GET /things/{id}", "GET /health"]


def test_unresolvable_values_fail_with_the_place_named() -> None:
    # Given a queue Ref without a local value (CloudFormation's Ref of a queue is its URL)
    template = template_from(BASE)
    with pytest.raises(TemplateError, match=r"Fn\.Environment\.Variables\.QUEUE_URL.*resource_values\['Queue'\]"):
        template.functions({})


def test_parameter_without_default_must_be_overridden() -> None:
    text = BASE.replace("FLAG: true", "FLAG: !Ref Secretless")
    with pytest.raises(TemplateError, match="Secretless has no Default"):
        resolved_environment(template_from(text))
    (spec,) = template_from(text).functions({"Queue": "url"}, {"Secretless": "given"})
    assert spec.environment["FLAG"] == "given"


def test_unknown_references_and_overrides_are_errors() -> None:
    with pytest.raises(TemplateError, match="unknown parameter or resource 'Nope'"):
        resolved_environment(template_from(BASE.replace("FLAG: true", "FLAG: !Ref Nope")))
    with pytest.raises(TemplateError, match="unknown parameter override"):
        template_from(BASE).functions({"Queue": "url"}, {"Typo": "x"})
    with pytest.raises(TemplateError, match="no function 'Missing'"):
        template_from(BASE).function("Missing", {"Queue": "url"})


def test_unsupported_intrinsic_is_named() -> None:
    text = BASE.replace("FLAG: true", 'FLAG: !Join [",", [a, b]]')  # the template uses none: not resolved
    with pytest.raises(TemplateError, match="Fn::Join is not supported locally"):
        resolved_environment(template_from(text))


def test_non_scalar_environment_value_is_refused() -> None:
    text = BASE.replace("FLAG: true", "FLAG: !Ref Origins")  # a list, which Lambda cannot take
    with pytest.raises(TemplateError, match="FLAG: expected a string"):
        resolved_environment(template_from(text))


def test_routes_follow_default_and_route_level_authorizers() -> None:
    routes = {route.route_key: route for route in template_from(BASE).routes()}
    assert routes["POST /things"].authorized is True
    assert routes["POST /things"].authorizer == "Jwt"
    assert routes["POST /things"].function_logical_id == "Fn"
    assert routes["GET /health"].authorized is False


def test_duplicate_route_is_an_error() -> None:
    # Given a second event with the same method and path
    document: dict[str, Any] = load_yaml(dedent(BASE))
    document["Resources"]["Fn"]["Properties"]["Events"]["Public"]["Properties"].update(Method="POST", Path="/things")
    with pytest.raises(TemplateError, match="POST /things is declared by Fn and Fn"):
        Template(document, Path("/repo")).routes()


def test_http_api_cors_and_authorizer_are_resolved() -> None:
    template = template_from(BASE)
    assert template.http_api_cors() == {
        "AllowOrigins": ["https://a.example", "https://b.example"],
        "AllowMethods": ["GET", "POST"],
        "MaxAge": 600,
    }
    authorizer = template.jwt_authorizers()["Jwt"]
    assert authorizer.audience == ("https://a.example", "https://b.example")


def test_sam_cors_shorthand_allows_everything() -> None:
    document = load_yaml(dedent(BASE))
    document["Resources"]["Api"]["Properties"]["CorsConfiguration"] = True
    assert Template(document, Path("/repo")).http_api_cors()["AllowOrigins"] == ["*"]


def test_bucket_properties_resolve_and_lifecycle_rules_take_s3_api_shape() -> None:
    # Given the template's own bucket and its lifecycle rules
    template = load_template()
    rules = template.bucket_properties()["LifecycleConfiguration"]["Rules"]
    # When they are converted for S3's PutBucketLifecycleConfiguration
    converted = [lifecycle_rule(rule) for rule in rules]
    # Then they use S3's names and numbers, and nothing the template says is lost
    assert {key: converted[0][key] for key in ("ID", "Status", "Filter")} == {
        "ID": "AbortIncompleteMultipartUploads",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
    }
    assert converted[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] >= 1
    expiring = next(rule for rule in converted if "NoncurrentVersionExpiration" in rule)
    assert expiring["NoncurrentVersionExpiration"] == {"NoncurrentDays": 7}
    assert expiring["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert template_from(BASE).bucket_name() == "demo-000000000000-us-east-1"


def test_the_upload_bucket_is_the_only_one_or_the_one_that_notifies() -> None:
    template = template_from(BASE)
    assert template.bucket_logical_id() == "Bucket"
    # Given a second bucket (access logs) that sends no notifications, the notifying one is chosen
    document = load_yaml(dedent(BASE))
    document["Resources"]["Bucket"].setdefault("Properties", {})["NotificationConfiguration"] = {}
    document["Resources"]["Logs"] = {"Type": "AWS::S3::Bucket"}
    assert Template(document, Path("/repo")).bucket_logical_id() == "Bucket"
    # Two buckets and no way to tell them apart is an error
    document["Resources"]["Bucket"]["Properties"].pop("NotificationConfiguration")
    with pytest.raises(TemplateError, match="one upload AWS::S3::Bucket"):
        Template(document, Path("/repo")).bucket_logical_id()


def test_the_repository_template_loads_and_names_real_directories() -> None:
    # Given the real template.yaml / When its functions are resolved as the local stack does
    template = load_template()
    resource_values = {
        logical_id: f"http://127.0.0.1:1/000000000000/{logical_id}"
        for logical_id in template.resources_of_type("AWS::SQS::Queue")
    }
    specs = template.functions(resource_values)
    # Then every function has a code directory and layer directories that exist, and routes
    assert specs
    for spec in specs:
        assert spec.code_uri.is_dir(), spec.code_uri
        assert all(path.is_dir() for path in spec.layer_dirs)
        assert spec.environment["BUCKET_NAME"] == template.bucket_name()
    assert template.routes()
