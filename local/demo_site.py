"""The demo page (local/demo/) as the local gateway serves it under /demo/. LOCAL ONLY.

None of this is in template.yaml or the deployed API: the local gateway asks ``DemoSite`` only
for requests that no template route matches, so it can never shadow or change a product route.

    GET /demo/              the page on Uppy 6 (index.html, demo.js: signRequest against POST /s3/sign)
    GET /demo/uppy5/        the page on Uppy 5 (uppy5.html, uppy5.js: the Companion-style routes)
    GET /demo/vendor/...    the Uppy bundles from local/demo/node_modules (npm ci)
    GET /demo/config.json   the API's URL and a fresh local token for user "demo-user"

The token is signed with the local key (see local/tokens.py), which only the local authorizer
trusts; handing one for the demo user to whoever reaches 127.0.0.1 is the local stack's choice,
and no real API Gateway accepts it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local.gateway import GatewayResponse, Request, message

DEMO_DIR = Path(__file__).with_name("demo")
DEMO_USER = "demo-user"
PREFIX = "/demo"

# Only these files are served: a fixed map leaves no path to traverse.
_JS = "text/javascript; charset=utf-8"
_CSS = "text/css; charset=utf-8"
FILES: dict[str, tuple[str, str]] = {
    "/demo/": ("index.html", "text/html; charset=utf-8"),
    "/demo/uppy5/": ("uppy5.html", "text/html; charset=utf-8"),
    "/demo/common.js": ("common.js", _JS),
    "/demo/demo.js": ("demo.js", _JS),
    "/demo/files.js": ("files.js", _JS),
    "/demo/uppy5.js": ("uppy5.js", _JS),
    "/demo/demo.css": ("demo.css", _CSS),
    # Uppy 6: the prebuilt bundle of `uppy` 6.0.1, exactly what `npm install uppy` gives.
    "/demo/vendor/uppy.min.mjs": ("node_modules/uppy/dist/uppy.min.mjs", _JS),
    "/demo/vendor/uppy.min.mjs.map": ("node_modules/uppy/dist/uppy.min.mjs.map", "application/json"),
    "/demo/vendor/uppy.min.css": ("node_modules/uppy/dist/uppy.min.css", _CSS),
    # Uppy 5: `uppy` 5.2.4's prebuilt bundle (installed under the alias `uppy5`).
    "/demo/vendor/uppy5.min.mjs": ("node_modules/uppy5/dist/uppy.min.mjs", _JS),
    "/demo/vendor/uppy5.min.mjs.map": ("node_modules/uppy5/dist/uppy.min.mjs.map", "application/json"),
    "/demo/vendor/uppy5.min.css": ("node_modules/uppy5/dist/uppy.min.css", _CSS),
}
NOT_INSTALLED = "Uppy is not installed for the demo page: run scripts/bootstrap.sh (it runs `npm ci` in local/demo)."


@dataclass(frozen=True, slots=True)
class DemoSite:
    """Answers GET/HEAD under /demo; returns None for every other request.

    ``api_url`` and ``token`` are called per request: the API's URL is known only once the
    gateway listens, and each page load gets a token that has not expired.
    """

    api_url: Callable[[], str]
    token: Callable[[str], str]
    root: Path = DEMO_DIR
    user: str = DEMO_USER

    def __call__(self, request: Request) -> GatewayResponse | None:
        path = request.raw_path
        if request.method not in ("GET", "HEAD") or not (path == PREFIX or path.startswith(PREFIX + "/")):
            return None
        if path == PREFIX:
            return GatewayResponse(301, [("location", PREFIX + "/")])
        if path == f"{PREFIX}/config.json":
            return self._config()
        found = FILES.get(path)
        if found is None:
            return message(404, "Not Found")
        relative, content_type = found
        try:
            body = (self.root / relative).read_bytes()
        except FileNotFoundError:
            if relative.startswith("node_modules/"):
                return GatewayResponse(503, [("content-type", "text/plain; charset=utf-8")], NOT_INSTALLED.encode())
            return message(404, "Not Found")
        return GatewayResponse(200, [("content-type", content_type), ("cache-control", "no-cache")], body)

    def _config(self) -> GatewayResponse:
        document = {"apiUrl": self.api_url(), "user": self.user, "token": self.token(self.user)}
        return GatewayResponse(
            200,
            [("content-type", "application/json"), ("cache-control", "no-store")],
            json.dumps(document).encode(),
        )


def uppy_installed(root: Path = DEMO_DIR) -> bool:
    """Whether both Uppy bundles are there (``npm ci`` in local/demo has run)."""
    return all(
        (root / FILES[path][0]).is_file() for path in ("/demo/vendor/uppy.min.mjs", "/demo/vendor/uppy5.min.mjs")
    )
