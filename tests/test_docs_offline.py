"""/docs and /redoc work offline: the pages' scripts and styles come from the app itself
(the pinned fastapi-offline package), on every serving, and Swagger UI renders in a real
browser that can reach nothing but loopback."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import assume, given
from hypothesis import strategies as st

from devtools.lambda_runtime import LambdaContext, http_api_event, response_body
from tests.support.browser import chromium
from tests.support.serving import Configure, ensure_event_loop
from users_api.app import create_app
from users_api.routes.docs import ASSETS, assets_dir

ROOT = Path(__file__).resolve().parents[1]
LINKED = re.compile(r'(?:src|href)="([^"]+)"')
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_pages_link_only_to_the_apps_own_assets(client: TestClient, page: str) -> None:
    html = client.get(page).text
    links = LINKED.findall(html)
    assert links, html
    for link in links:
        assert link.startswith("/docs/assets/"), link
        asset = client.get(link)
        assert asset.status_code == 200, link
        expected = CONTENT_TYPES[Path(link).suffix]
        assert asset.headers["content-type"].startswith(expected)
        assert asset.content == (assets_dir() / Path(link).name).read_bytes()
    assert "cdn" not in html.lower()


@given(name=st.one_of(st.sampled_from(sorted(ASSETS)), st.text(min_size=1)))
def test_only_the_listed_assets_are_served(client: TestClient, name: str) -> None:
    assume(name not in (".", ".."))  # dot segments: the client resolves them away
    response = client.get(f"/docs/assets/{quote(name, safe='')}")
    if name in ASSETS:
        assert response.status_code == 200
    else:
        assert response.status_code in (404, 405), (name, response.status_code)


def test_assets_come_through_the_lambda_handler_behind_a_stage(
    clean_sqlite: str, configure: Configure
) -> None:
    configure(DATABASE_URL=clean_sqlite, API_ROOT_PATH="/prod", AWS_LAMBDA_FUNCTION_NAME="fn")
    from users_api.handler import build_adapter, instrument
    from users_api.settings import get_settings

    ensure_event_loop()
    handler = instrument(build_adapter(get_settings()))
    page = handler(http_api_event("GET", "/docs", stage="prod"), LambdaContext())
    assert '"/prod/docs/assets/swagger-ui-bundle.js"' in response_body(page).decode()
    script = handler(
        http_api_event("GET", "/docs/assets/swagger-ui-bundle.js", stage="prod"), LambdaContext()
    )
    assert script["statusCode"] == 200
    assert response_body(script) == (assets_dir() / "swagger-ui-bundle.js").read_bytes()


def _loopback_only_namespace() -> list[str]:
    """`unshare` with a network namespace holding only loopback, if this kernel allows it."""
    wrapper = ["unshare", "--net", "--map-root-user", "sh", "-c", 'ip link set lo up && exec "$@"']
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run([*wrapper, "sh", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [*wrapper, "sh"]
    print("no network namespace here: Chromium's own flags keep it on loopback")
    return []


@pytest.mark.slow
def test_swagger_ui_renders_every_operation_in_headless_chromium_offline() -> None:
    if chromium() is None:
        pytest.fail("chromium is not installed: `make chromium` (part of `make test`) installs it")
    command = [*_loopback_only_namespace(), sys.executable, "-m", "tests.support.browser", "/docs"]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rendered = set(re.findall(r'id="operations-([^"]+)"', result.stdout))
    spec = create_app().openapi()
    expected = {
        f"{operation['tags'][0]}-{operation['operationId']}"
        for item in spec["paths"].values()
        for operation in item.values()
    }
    assert expected, spec
    assert expected <= rendered, sorted(expected - rendered)
