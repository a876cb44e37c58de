"""`sam local invoke` and `sam local start-api` on Docker, Finch or podman, in one command.

    python -m devtools.sam_local invoke -e events/http-api/health.json
    python -m devtools.sam_local start-api --port 3000

(with the project's virtualenv: `.venv/bin/python`, PYTHONPATH=functions:. as the Makefile
sets; `make sam-invoke` and `make sam-start-api` call these.)

The database is migrated first. With Docker or Finch, sam runs as it would by hand. With
podman (its Docker API service started by devtools/container_engine.py and stopped after),
nothing is pulled and nothing emulated: the local look-alike image (devtools/lambda_image.py,
built on first use), a copy of the template for this machine's architecture with the bundle
built for it, and PostgreSQL relayed (devtools/tcp_proxy.py) from loopback to the gateway of
the project's network, which env.json's host.docker.internal is mapped to. Every sam command
runs offline, with AWS_MAX_ATTEMPTS=1. docs/local-lambda.md tells why each of these.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools import container_engine, lambda_image, postgres
from devtools.container_engine import Engine, NoEngine, podman
from devtools.lambda_runtime import OFFLINE_AWS
from devtools.local_function import DEFAULT_TEMPLATE
from devtools.processes import port_open, wait_until_ready
from devtools.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent
SAM = ROOT / ".venv-sam" / "bin" / "sam"
SAM_HOME = ROOT / ".venv-sam" / "sam-home"
BUILD_DIR = ROOT / ".build" / "sam-local"
DEFAULT_FUNCTION = "UsersApiFunction"
NETWORK = "users-api-sam"
# A /24 of the project's own for that network; SAM_NETWORK_SUBNET when it collides.
SUBNET = os.environ.get("SAM_NETWORK_SUBNET", "10.89.213.0/24")
DB_ALIAS = "host.docker.internal"  # env.json's DB_HOST: the host as sam's containers see it
FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")


def sam_environment(engine: Engine | None = None) -> dict[str, str]:
    """sam.mk's environment: no telemetry, no update check, nothing off loopback."""
    SAM_HOME.mkdir(parents=True, exist_ok=True)
    metadata = SAM_HOME / "metadata.json"
    if not metadata.exists():
        # SAM asks the package index for its newest version unless its last check is less
        # than a week old: a stamp in 2100 keeps it from asking.
        metadata.write_text('{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}')
    return {
        **os.environ,
        **OFFLINE_AWS,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "SAM_CLI_TELEMETRY": "0",
        "__SAM_CLI_APP_DIR": str(SAM_HOME),
        **(engine.env if engine else {}),
    }


# --- the template ---------------------------------------------------------------------


def asset_hash(template: Path, function: str) -> str:
    """The function's asset hash in the template: a hash of the bundle's inputs (pins,
    sources, recipe; infra/bundling.py), so it names the host-arch bundle too."""
    resources = json.loads(template.read_text(encoding="utf-8"))["Resources"]
    for logical_id, resource in resources.items():
        metadata = resource.get("Metadata") or {}
        if function in (logical_id, metadata.get("SamResourceId")):
            return str(metadata["aws:asset:path"]).rpartition("asset.")[2]
    raise SystemExit(f"{template} has no function {function}")


def host_bundle(architecture: str, key: str) -> Path:
    """The function's bundle for this machine's architecture, built once per asset hash
    (the CDK, and so Node.js, start only when it has to be built)."""
    out = BUILD_DIR / f"bundle-{architecture}-{key[:16]}"
    if not out.is_dir():
        from infra import bundling

        platforms = bundling.X86_64_PLATFORMS if architecture == "x86_64" else bundling.PLATFORMS
        staging = out.with_name(out.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        bundling.build_bundle(staging, platforms)
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
    return out


def local_template(template: Path, architecture: str, bundle: Path, out: Path) -> Path:
    """A copy of the template whose Python functions run here: `architecture`, `bundle` as
    their code, every other function (the CDK's Node.js custom-resource handlers, which
    sam never runs for an API call) left out, since only a Python image is built."""
    data: dict[str, Any] = json.loads(template.read_text(encoding="utf-8"))
    resources = data["Resources"]
    for logical_id, resource in list(resources.items()):
        if resource.get("Type") not in FUNCTION_TYPES:
            continue
        properties = resource.setdefault("Properties", {})
        if not str(properties.get("Runtime", "")).startswith("python3.12"):
            del resources[logical_id]
            continue
        properties["Architectures"] = [architecture]
        code = {"aws:asset:path": str(bundle), "aws:asset:property": "Code"}
        resource.setdefault("Metadata", {}).update(code)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return out


# --- the database -----------------------------------------------------------------------


def migrate(variables: dict[str, str], db_host: str, db_port: int) -> None:
    """Migrate the database env.json names, reached from this machine at db_host:db_port."""
    user, name = variables.get("DB_USER", "postgres"), variables.get("DB_NAME", "postgres")
    postgres.migrate(f"postgresql://{user}@{db_host}:{db_port}/{name}")


def ensure_network() -> str:
    """The project's podman network; returns its gateway address."""
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        podman("network", "create", "--subnet", SUBNET, NETWORK)
    inspect = podman("network", "inspect", NETWORK)
    (network,) = json.loads(inspect.stdout)
    return str(network["subnets"][0]["gateway"])


# --- one session: engine, images, template, relay ---------------------------------------


@contextlib.contextmanager
def _removing_containers(architecture: str) -> Iterator[None]:
    """Afterwards, remove any container of the local image that sam left (a warm container
    whose removal raced with sam's exit): only the project's own image's containers."""
    try:
        yield
    finally:
        image = lambda_image.rapid_image(architecture)
        left = podman("ps", "-a", "-q", "--filter", f"ancestor={image}", check=False).stdout
        if left.split():
            podman("rm", "-f", *left.split(), check=False)


@dataclass
class Session:
    engine: Engine
    template: Path
    args: list[str]  # what sam local invoke / start-api get beside the template


@contextlib.contextmanager
def session(
    template: Path,
    env_vars: Path,
    function: str = DEFAULT_FUNCTION,
    db: tuple[str, int] = ("127.0.0.1", 5432),
) -> Iterator[Session]:
    """The engine found (a podman service started for the block), the images, the template
    and the database relay, for as long as the block runs."""
    if not template.is_file():
        raise SystemExit(f"{template} does not exist: run `make synth` first")
    data = json.loads(env_vars.read_text(encoding="utf-8"))
    variables = {**data.get("Parameters", {}), **data.get(function, {})}
    migrate(variables, *db)
    engine = container_engine.find_engine()
    try:
        args = ["--env-vars", str(env_vars)]
        if engine.name != "podman":
            yield Session(engine, template, args)
            return
        architecture = lambda_image.host_architecture()
        if not lambda_image.images_ready(architecture):
            print("building the local Lambda images (devtools/lambda_image.py)", file=sys.stderr)
            lambda_image.build(architecture)
        copy = local_template(
            template,
            architecture,
            host_bundle(architecture, asset_hash(template, function)),
            BUILD_DIR / template.name,
        )
        gateway = ensure_network()
        db_port = int(variables.get("DB_PORT", "5432"))
        with TcpProxy(*db, listen=(gateway, db_port)), _removing_containers(architecture):
            yield Session(
                engine,
                copy,
                [
                    *args,
                    "--skip-pull-image",
                    "--invoke-image", lambda_image.base_image(architecture),
                    "--docker-network", NETWORK,
                    "--add-host", f"{DB_ALIAS}:{gateway}",
                ],
            )  # fmt: skip
    finally:
        container_engine.stop(engine)


def invoke(s: Session, function: str, event: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the SAM CLI with arguments built here
        [str(SAM), "local", "invoke", "-t", str(s.template), function, "-e", str(event), *s.args],
        env=sam_environment(s.engine),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@contextlib.contextmanager
def start_api(
    s: Session, port: int, *, warm: bool = False, log: Path | None = None
) -> Iterator[str]:
    """`sam local start-api` until the block ends; yields its base URL once it answers."""
    command = [str(SAM), "local", "start-api", "-t", str(s.template), *s.args]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    if warm:
        command += ["--warm-containers", "EAGER"]
    out = log.open("ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 - the SAM CLI with arguments built here
        command, env=sam_environment(s.engine), stdout=out, stderr=out, start_new_session=True
    )
    try:
        # The port, not a request: each request would start a container.
        wait_until_ready(
            process,
            lambda: port_open(port),
            what="sam local start-api",
            seconds=120,
            interval=0.2,
            output=lambda: f"see {log}",
        )
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # sam removes its containers on SIGINT
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sam_local")
    parser.add_argument("command", choices=("invoke", "start-api"))
    parser.add_argument("-t", "--template", type=Path, default=DEFAULT_TEMPLATE)
    parser.add_argument("-f", "--function", default=DEFAULT_FUNCTION)
    parser.add_argument("-e", "--event", type=Path, default=Path("events/http-api/health.json"))
    parser.add_argument("-n", "--env-vars", type=Path, default=Path("env.json"))
    parser.add_argument("--db", default="127.0.0.1:5432", help="the database on this machine")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--warm", action="store_true", help="--warm-containers EAGER")
    args = parser.parse_args(argv)
    db_host, _, db_port = args.db.rpartition(":")
    try:
        with session(args.template, args.env_vars, args.function, (db_host, int(db_port))) as s:
            print(f"sam local on {s.engine.name}", file=sys.stderr)
            if args.command == "invoke":
                result = invoke(s, args.function, args.event)
                sys.stderr.write(result.stderr)
                sys.stdout.write(result.stdout)
                return result.returncode
            with start_api(s, args.port, warm=args.warm) as url:
                print(f"serving the API on {url} (Ctrl-C stops it)", file=sys.stderr)
                with contextlib.suppress(KeyboardInterrupt):
                    signal.pause()
    except NoEngine as exc:
        print(f"sam local needs a container engine: {exc}", file=sys.stderr)
        return 1
    except lambda_image.CannotBuild as exc:
        print(f"cannot build the local Lambda images: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
