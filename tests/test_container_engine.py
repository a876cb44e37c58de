"""Which engine sam local gets, and the template copy it runs on podman."""

from __future__ import annotations

import json
import socketserver
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from devtools import container_engine, sam_local
from tests.support.processes import serving_in_thread


class _Ping(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/_ping" else 404
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *_args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def docker_api(tmp_path: Path) -> Iterator[str]:
    """Something answering the Docker API's ping on a unix socket, as Docker does."""
    path = tmp_path / "docker.sock"
    with serving_in_thread(_UnixHTTPServer(str(path), _Ping)):
        yield f"unix://{path}"


def test_a_docker_api_that_answers_comes_first(
    docker_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_api)
    engine = container_engine.find_engine(start=False)
    assert (engine.name, engine.docker_host, engine.service) == ("docker", docker_api, None)
    assert engine.env == {"DOCKER_HOST": docker_api}


def test_a_dead_socket_is_not_an_engine(tmp_path: Path) -> None:
    assert not container_engine.docker_api_answers(f"unix://{tmp_path}/none.sock")


def test_the_local_template_runs_the_python_functions_here(tmp_path: Path) -> None:
    template = {
        "Resources": {
            "Api": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Runtime": "python3.12", "Architectures": ["arm64"]},
                "Metadata": {"aws:asset:path": "asset.abc", "SamResourceId": "UsersApiFunction"},
            },
            "Provider": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Runtime": "nodejs22.x"},
            },
            "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        }
    }
    source = tmp_path / "cdk.out" / "T.template.json"
    source.parent.mkdir()
    source.write_text(json.dumps(template))
    bundle = tmp_path / "bundle"
    copy = sam_local.local_template(source, "x86_64", bundle, tmp_path / "sam" / source.name)
    resources = json.loads(copy.read_text())["Resources"]
    assert sorted(resources) == ["Api", "Queue"]
    assert resources["Api"]["Properties"]["Architectures"] == ["x86_64"]
    assert resources["Api"]["Metadata"]["aws:asset:path"] == str(bundle)
    assert resources["Api"]["Metadata"]["SamResourceId"] == "UsersApiFunction"
    assert sam_local.asset_hash(source, "UsersApiFunction") == "abc"
    assert json.loads(source.read_text()) == template  # the deployed template is untouched


def test_sam_commands_fail_fast_offline() -> None:
    """One attempt per AWS call (sam's STS call would otherwise retry for ~10 s), fake
    credentials, every endpoint on a closed loopback port, no telemetry."""
    env = sam_local.sam_environment()
    assert env["AWS_MAX_ATTEMPTS"] == "1"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["SAM_CLI_TELEMETRY"] == "0"
