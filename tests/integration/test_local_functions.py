"""Function workers: a handler runs in its own process with a Lambda-like environment and context.

Integration, not unit: most of these start worker processes, and two wait out a sleep or a timeout.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest

from local.functions import FunctionPool, LocalAws, WorkerProcess, applicable_overrides, lambda_environment
from local.template import FunctionSpec

HANDLER = """
import os, sys, time

IMPORTED_AT = time.time()

def handler(event, context):
    action = event.get("action")
    if action == "boom":
        raise ValueError("boom!")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "unserialisable":
        return {"value": object()}
    print("a log line")  # goes to the worker's stderr, never into the response
    return {
        "pid": os.getpid(),
        "importedAt": IMPORTED_AT,
        "event": event,
        "functionName": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "requestId": context.aws_request_id,
        "logGroup": context.log_group_name,
        "remaining": context.get_remaining_time_in_millis(),
        "layerValue": __import__("shared_lib").VALUE,
        "sysPath": sys.path[:2],
    }
"""


@pytest.fixture
def spec(tmp_path: Path) -> FunctionSpec:
    code = tmp_path / "code"
    layer = tmp_path / "layer"
    code.mkdir()
    layer.mkdir()
    (code / "probe_handler.py").write_text(dedent(HANDLER))
    (layer / "shared_lib.py").write_text("VALUE = 'from the layer'\n")
    return FunctionSpec(
        logical_id="ProbeFunction",
        code_uri=code,
        handler="probe_handler.handler",
        layer_dirs=[layer],
        environment={"BUCKET_NAME": "b", "LOG_LEVEL": "INFO", "EMPTY": ""},
        timeout=2,
        memory_mb=256,
        routes=[],
    )


AWS = LocalAws("http://127.0.0.1:9")


@pytest.fixture
def worker(spec: FunctionSpec) -> Iterator[WorkerProcess]:
    process = WorkerProcess(spec, lambda_environment(spec, AWS))
    yield process
    process.stop()


def test_environment_is_the_template_plus_lambda_and_local_values(spec: FunctionSpec) -> None:
    # Given the caller's shell has variables of its own
    os.environ["SHOULD_NOT_LEAK"] = "1"
    try:
        environment = lambda_environment(spec, AWS)
    finally:
        del os.environ["SHOULD_NOT_LEAK"]
    # Then the template's variables are there unchanged, the Lambda and local ones are added
    assert {key: environment[key] for key in spec.environment} == spec.environment
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "local-ProbeFunction"
    assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert environment["_HANDLER"] == "probe_handler.handler"
    assert environment["S3_ENDPOINT_URL"] == AWS.endpoint_url
    assert environment["AWS_ENDPOINT_URL_S3"] == AWS.endpoint_url
    assert (environment["AWS_ACCESS_KEY_ID"], environment["AWS_SECRET_ACCESS_KEY"]) == ("test", "test")
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == "us-east-1"
    assert environment["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "SHOULD_NOT_LEAK" not in environment
    assert "PYTHONPATH" not in environment


def test_env_vars_documents_override_only_declared_variables(spec: FunctionSpec) -> None:
    # SAM's format: "Parameters" for every function, the logical id's section wins
    document = {"Parameters": {"LOG_LEVEL": "DEBUG", "NEW": "x"}, "ProbeFunction": {"BUCKET_NAME": "other"}}
    assert applicable_overrides(spec, document) == {"LOG_LEVEL": "DEBUG", "BUCKET_NAME": "other"}
    assert applicable_overrides(spec, {"EMPTY": True, "UNKNOWN": "1"}) == {"EMPTY": "true"}
    assert lambda_environment(spec, AWS, document)["BUCKET_NAME"] == "other"


def test_a_worker_runs_the_handler_with_a_lambda_context(worker: WorkerProcess, spec: FunctionSpec) -> None:
    # When the handler is invoked twice
    first = worker.invoke({"n": 1}, request_id="req-1")
    second = worker.invoke({"n": 2})
    # Then it answers with its result; the module was imported once (a warm container)
    assert first.ok, first.error
    assert first.result["event"] == {"n": 1}
    assert first.result["requestId"] == "req-1"
    assert first.result["functionName"] == "local-ProbeFunction"
    assert first.result["memory"] == 256
    assert first.result["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:local-ProbeFunction"
    assert first.result["logGroup"] == "/aws/lambda/local-ProbeFunction"
    assert 0 < first.result["remaining"] <= 2000
    assert first.result["layerValue"] == "from the layer"
    assert first.result["sysPath"] == [str(spec.code_uri), str(spec.layer_dirs[0])]
    assert second.result["importedAt"] == first.result["importedAt"]
    assert second.result["pid"] == first.result["pid"]


def test_the_worker_sees_exactly_the_environment_it_was_given(worker: WorkerProcess, spec: FunctionSpec) -> None:
    environ = worker.describe()["environ"]
    # Python itself may add LC_CTYPE (locale coercion); the log stream name is per worker
    ignored = {"LC_CTYPE", "AWS_LAMBDA_LOG_STREAM_NAME"}
    expected = lambda_environment(spec, AWS)
    assert {k: v for k, v in environ.items() if k not in ignored} == {
        k: v for k, v in expected.items() if k not in ignored
    }


def test_handler_exceptions_become_lambda_error_documents(worker: WorkerProcess) -> None:
    failed = worker.invoke({"action": "boom"})
    assert not failed.ok
    assert failed.error["errorType"] == "ValueError"
    assert failed.error["errorMessage"] == "boom!"
    assert worker.invoke({}).ok  # the container survives a handler error


def test_unserialisable_results_are_marshal_errors(worker: WorkerProcess) -> None:
    failed = worker.invoke({"action": "unserialisable"})
    assert failed.error["errorType"] == "Runtime.MarshalError"


def test_a_timed_out_invocation_ends_the_worker(worker: WorkerProcess) -> None:
    failed = worker.invoke({"action": "sleep", "seconds": 30})
    assert failed.error["errorType"] == "Sandbox.Timedout"
    assert not worker.reusable


def test_an_import_error_is_reported_on_every_invocation(spec: FunctionSpec) -> None:
    (spec.code_uri / "probe_handler.py").write_text("import does_not_exist\n")
    process = WorkerProcess(spec, lambda_environment(spec, AWS))
    try:
        failed = process.invoke({})
        assert failed.error["errorType"] == "Runtime.ImportModuleError"
        assert not process.reusable  # Lambda retries the init on the next invocation
    finally:
        process.stop()


def test_the_pool_picks_up_code_changes(spec: FunctionSpec) -> None:
    pool = FunctionPool(spec, lambda_environment(spec, AWS))
    try:
        assert pool.invoke({}).ok
        handler = spec.code_uri / "probe_handler.py"
        handler.write_text("def handler(event, context):\n    return 'changed'\n")
        stat = handler.stat()
        os.utime(handler, (stat.st_atime, stat.st_mtime + 5))
        assert pool.invoke({}).result == "changed"
    finally:
        pool.close()


def test_the_pool_runs_concurrent_invocations_in_separate_workers(spec: FunctionSpec) -> None:
    # Given four invocations started together, each sleeping a second
    pool = FunctionPool(spec, lambda_environment(spec, AWS), max_workers=4)
    pids: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        outcome = pool.invoke({"action": "sleep", "seconds": 1})
        with lock:
            pids.append(outcome.result["pid"])

    threads = [threading.Thread(target=call) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pool.close()
    # Then they did not queue behind one worker
    assert len(pids) == 4
    assert len(set(pids)) > 1
