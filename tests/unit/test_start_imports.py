"""What a function's start leaves out: each check runs in a fresh interpreter, as a Lambda start does.

The timings are in bench/cold_start.py; these only pin down that the deferred work stays deferred
and that it is still done when a request needs it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PATHS = [ROOT / "layers" / "core", ROOT / "layers" / "edge", ROOT / "functions" / "uploads"]


def fresh(code: str, **environment: str) -> dict[str, object]:
    """Runs `code` in a new interpreter with the layers on the path; it prints one JSON value."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(path) for path in PATHS),
        "BUCKET_NAME": "unit-uploads",
        **environment,
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_disabled_tracer_does_not_load_the_xray_sdk() -> None:
    # Given tracing off (the local stack, sam local, tests) / When the shared tracer is made
    loaded = fresh(
        "import json, sys; from upload_core.observability import tracer;"
        "print(json.dumps({'xray': 'aws_xray_sdk.core' in sys.modules, 'disabled': tracer.disabled}))",
        POWERTOOLS_TRACE_DISABLED="true",
    )
    # Then the X-Ray SDK's recorder (and wrapt and asyncio with it) is never imported
    assert loaded == {"xray": False, "disabled": True}


def test_an_enabled_tracer_patches_only_what_the_functions_call_through() -> None:
    # Given tracing on, as in Lambda with Tracing: Active
    loaded = fresh(
        "import json, sys; from upload_core.observability import tracer;"
        "from aws_xray_sdk.core.patcher import _PATCHED_MODULES as patched;"
        "print(json.dumps({'disabled': tracer.disabled, 'patched': sorted(patched),"
        " 'sqlite3': 'sqlite3' in sys.modules}))",
        POWERTOOLS_TRACE_DISABLED="false",
        LAMBDA_TASK_ROOT=str(ROOT),
    )
    # Then boto3's calls and the fetcher's HTTP are traced, and nothing else is imported to be patched
    assert loaded == {"disabled": False, "patched": ["botocore", "httplib"], "sqlite3": False}


def test_pillow_is_imported_for_the_first_small_object_only() -> None:
    picture = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 40, 90)).save(picture, format="PNG")
    # Given the inspection module loaded (the validator's start) / When it judges a small PNG
    loaded = fresh(
        "import json, os, sys\n"
        "from upload_core.inspection import InspectionLimits, inspect_bytes\n"
        "at_start = 'PIL' in sys.modules\n"
        "limits = InspectionLimits(max_object_bytes=1 << 20, max_pixels=100, max_width=10, max_height=10,\n"
        "                          max_frames=1, allowed_types=frozenset({'image/png'}))\n"
        "verdict = inspect_bytes(bytes.fromhex(os.environ['PNG_HEX']), 'a.png', 'image/png', limits)\n"
        "print(json.dumps({'at_start': at_start, 'after': 'PIL.Image' in sys.modules, 'status': verdict.status}))",
        PNG_HEX=picture.getvalue().hex(),
    )
    # Then Pillow was not loaded at start, and the small object still got Pillow's opinion
    assert loaded == {"at_start": False, "after": True, "status": "valid"}


def test_request_bodies_are_built_when_first_used() -> None:
    # Given the uploads function's models imported / When one validates a body
    loaded = fresh(
        "import json; import upload_models as m;"
        "before = m.CreateUploadRequest.__pydantic_complete__;"
        "m.CreateUploadRequest.model_validate({'filename': 'a.png', 'contentType': 'image/png', 'size': 1});"
        "print(json.dumps({'before': before, 'after': m.CreateUploadRequest.__pydantic_complete__,"
        " 'other': m.FormUploadRequest.__pydantic_complete__}))"
    )
    # Then only that model's validator was built
    assert loaded == {"before": False, "after": True, "other": False}


def test_settings_load_no_validation_library() -> None:
    loaded = fresh(
        "import json, sys; from upload_core.settings import get_settings; get_settings();"
        "print(json.dumps({'pydantic': 'pydantic' in sys.modules}))"
    )
    assert loaded == {"pydantic": False}
