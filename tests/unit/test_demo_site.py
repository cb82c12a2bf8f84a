"""The local-only demo page: what the gateway serves under /demo/, and that it never shadows the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.demo_site import DEMO_DIR, DEMO_USER, FILES, DemoSite, uppy_installed
from local.functions import Invocation
from local.gateway import Gateway, Request, authorize
from local.stack import token_for
from local.template import Route, load_template

API_URL = "http://127.0.0.1:3000"


def site(root: Path = DEMO_DIR) -> DemoSite:
    return DemoSite(api_url=lambda: API_URL, token=lambda sub: token_for(load_template(), sub), root=root)


def get(path: str, method: str = "GET") -> Request:
    return Request(method, path, "", [], b"")


@pytest.fixture
def fake_demo(tmp_path: Path) -> Path:
    """A demo directory with every served file, each holding its own relative path."""
    for relative, _ in FILES.values():
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(relative)
    (tmp_path / "package.json").write_text("{}")
    return tmp_path


class Invoked:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, logical_id: str, event: dict[str, Any]) -> Invocation:
        self.calls.append(event["routeKey"])
        return Invocation(True, "id", result={"statusCode": 200, "body": "from the function"})


# --- what is served ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "relative"),
    [
        ("/demo/", "text/html; charset=utf-8", "index.html"),
        ("/demo/uppy5/", "text/html; charset=utf-8", "uppy5.html"),
        ("/demo/demo.js", "text/javascript; charset=utf-8", "demo.js"),
        ("/demo/common.js", "text/javascript; charset=utf-8", "common.js"),
        ("/demo/uppy5.js", "text/javascript; charset=utf-8", "uppy5.js"),
        ("/demo/demo.css", "text/css; charset=utf-8", "demo.css"),
        ("/demo/vendor/uppy.min.mjs", "text/javascript; charset=utf-8", "node_modules/uppy/dist/uppy.min.mjs"),
        ("/demo/vendor/uppy.min.css", "text/css; charset=utf-8", "node_modules/uppy/dist/uppy.min.css"),
        ("/demo/vendor/uppy5.min.mjs", "text/javascript; charset=utf-8", "node_modules/uppy5/dist/uppy.min.mjs"),
        ("/demo/vendor/uppy5.min.css", "text/css; charset=utf-8", "node_modules/uppy5/dist/uppy.min.css"),
    ],
)
def test_each_page_file_is_served_with_its_type(fake_demo: Path, path: str, content_type: str, relative: str) -> None:
    # Given the demo directory; When a page file is requested
    response = site(fake_demo)(get(path))

    # Then it is that file, with a type a browser runs (module scripts need a JavaScript type)
    assert response is not None
    assert response.status == 200
    assert response.header("content-type") == content_type
    assert response.body == relative.encode()


def test_the_bare_prefix_redirects_to_the_page(fake_demo: Path) -> None:
    response = site(fake_demo)(get("/demo"))
    assert response is not None
    assert (response.status, response.header("location")) == (301, "/demo/")


@pytest.mark.parametrize(
    "path",
    [
        "/demo/package.json",
        "/demo/package-lock.json",
        "/demo/node_modules/uppy/package.json",
        "/demo/../template.yaml",
        "/demo/%2e%2e/template.yaml",
        "/demo/vendor/../../local/tokens.py",
        "/demo/index.html/",
    ],
)
def test_nothing_outside_the_fixed_file_map_is_served(fake_demo: Path, path: str) -> None:
    # Given files that exist but are not page files; When they (or a traversal) are requested
    response = site(fake_demo)(get(path))

    # Then the answer is API Gateway's 404, not a file
    assert response is not None
    assert response.status == 404
    assert json.loads(response.body) == {"message": "Not Found"}


@pytest.mark.parametrize(("method", "path"), [("POST", "/demo/"), ("DELETE", "/demo/"), ("GET", "/uploads")])
def test_other_methods_and_paths_are_left_to_the_gateway(fake_demo: Path, method: str, path: str) -> None:
    assert site(fake_demo)(get(path, method)) is None


def test_head_is_answered_like_get(fake_demo: Path) -> None:
    response = site(fake_demo)(get("/demo/", "HEAD"))
    assert response is not None
    assert response.status == 200


def test_a_missing_uppy_install_says_how_to_fix_it(fake_demo: Path) -> None:
    # Given a demo directory where npm ci has not run
    (fake_demo / "node_modules/uppy/dist/uppy.min.mjs").unlink()

    # When Uppy's bundle is requested
    response = site(fake_demo)(get("/demo/vendor/uppy.min.mjs"))

    # Then the answer names the fix
    assert response is not None
    assert response.status == 503
    assert b"scripts/bootstrap.sh" in response.body
    assert not uppy_installed(fake_demo)
    assert uppy_installed(DEMO_DIR) == (DEMO_DIR / "node_modules/uppy/dist/uppy.min.mjs").is_file()


def test_the_config_names_the_api_and_carries_a_demo_user_token_the_authorizer_accepts() -> None:
    # Given the site; When its configuration is requested twice
    first = site()(get("/demo/config.json"))
    second = site()(get("/demo/config.json"))

    # Then it is never cached, names the API, and its token is demo-user's for the template's authorizer
    assert first is not None and second is not None
    assert first.header("cache-control") == "no-store"
    config = json.loads(first.body)
    assert config["apiUrl"] == API_URL
    assert config["user"] == DEMO_USER == "demo-user"
    authorizer = next(iter(load_template().jwt_authorizers().values()))
    principal = authorize(f"Bearer {config['token']}", authorizer)
    assert principal.claims["sub"] == DEMO_USER


# --- inside the gateway --------------------------------------------------------------------------


def test_the_gateway_serves_the_page_only_where_no_template_route_matches(fake_demo: Path) -> None:
    # Given a gateway whose template had a route under /demo (it has none) and the demo site
    invoked = Invoked()
    routes = [Route("GET", "/demo/demo.js", "Fn", False), Route("GET", "/health", "Fn", False)]
    gateway = Gateway(routes, invoked, local_pages=site(fake_demo))

    # When the route's path, a page path and an unknown path are requested
    routed = gateway.dispatch(get("/demo/demo.js"))
    page = gateway.dispatch(get("/demo/"))
    unknown = gateway.dispatch(get("/nothing"))

    # Then the template route wins, the page is served, and the rest is still 404
    assert (routed.status, routed.body) == (200, b"from the function")
    assert invoked.calls == ["GET /demo/demo.js"]
    assert (page.status, page.body) == (200, b"index.html")
    assert unknown.status == 404


def test_a_gateway_without_local_pages_has_no_demo(fake_demo: Path) -> None:
    gateway = Gateway([], Invoked())
    assert gateway.dispatch(get("/demo/")).status == 404


def test_the_template_declares_no_route_under_the_demo_prefix() -> None:
    paths = [route.path for route in load_template().routes()]
    assert paths, "the template has routes"
    assert not [path for path in paths if path == "/demo" or path.startswith("/demo/")]


# --- the pinned Uppy -----------------------------------------------------------------------------


def test_the_lockfile_pins_the_uppy_package_as_npm_install_uppy_gives_it_and_uppy_5_for_the_companion_page() -> None:
    # Given the demo's package.json and lockfile
    lock = json.loads((DEMO_DIR / "package-lock.json").read_text())
    packages = lock["packages"]
    manifest = json.loads((DEMO_DIR / "package.json").read_text())
    # Then the Uppy 6 page depends on the `uppy` package alone, exactly pinned, with its own
    # @uppy/aws-s3 (6.1.0: signRequest answers are used for `url` and `key` only)
    assert manifest["dependencies"] == {"uppy": "6.0.1", "uppy5": "npm:uppy@5.2.4"}
    assert packages["node_modules/uppy"]["version"] == "6.0.1"
    assert packages["node_modules/uppy/node_modules/@uppy/aws-s3"]["version"] == "6.1.0"
    # And Uppy 5's page keeps the aws-s3 release whose `endpoint` takes `headers` (the bearer token)
    assert packages["node_modules/uppy5"]["version"] == "5.2.4"
    assert packages["node_modules/uppy5/node_modules/@uppy/aws-s3"]["version"] == "5.1.0"
    # And every package is pinned by its registry integrity hash, and nothing runs at install
    assert all(entry.get("integrity", "").startswith("sha512-") for name, entry in packages.items() if name)
    assert not [name for name, entry in packages.items() if name and entry.get("hasInstallScript")]
    assert "scripts" not in manifest
