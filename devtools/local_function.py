"""A Lambda function of the synthesized template, set up and called in this process.

What `sam local` reads from the template (handler, runtime, architecture, code directory,
environment, timeout, memory) and how it applies `--env-vars`, without a container: the
Docker-free `python -m devtools.invoke` and `python -m devtools.lambda_server` share it.

Environment, as sam builds it (highest wins):
  4. `--set KEY=VALUE`: any variable, declared by the template or not (ours; sam has none);
  3. env.json: the function's section (by logical id, SamResourceId or aws:cdk:path) over
     its "Parameters" section; only variables the template declares for the function;
  2. the invoking shell: again only variables the template declares;
  1. the template's value. A CloudFormation intrinsic that cannot be resolved here (a `Ref`
     or `Fn::GetAtt` of a resource: the proxy endpoint, the secret ARN) is dropped unless a
     higher level gives a value (sam passes an empty string instead).
Plus the variables the Lambda runtime sets (AWS_LAMBDA_FUNCTION_NAME, ...), fake credentials
and an AWS endpoint on a closed loopback port, so no AWS call can leave this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.lambda_runner import InitError, LambdaRunner
from devtools.lambda_runtime import OFFLINE_AWS

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
# `make synth`'s dev stack, in its Stage's nested assembly (tests/infra/test_cli_synth.py).
DEFAULT_TEMPLATE = Path("cdk.out/dev/assembly-Dev/DevUsersApidevB2E2013F.template.json")
DEFAULT_HANDLER = "users_api.handler.handler"
# What sam's intrinsic resolver assumes for the pseudo parameters.
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "local",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/local/local",
    "AWS::URLSuffix": "amazonaws.com",
}
# Variables of this process kept in the function's environment (a container has its own
# PATH and locale; everything else the function sees comes from the template and overrides).
HOST_VARIABLES = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}
    | {"SSL_CERT_FILE", "SSL_CERT_DIR", "VIRTUAL_ENV"}
)
# The host as sam's containers see it (Docker; podman) names nothing on the host itself.
CONTAINER_HOST_ALIASES = ("host.docker.internal", "host.containers.internal")


class SetupError(Exception):
    """Something the user must fix before the function can run (the message says what)."""


def cannot_start(tool: str, exc: SetupError | InitError) -> int:
    """Say why the function cannot run (an init failure with its traceback): exit status 2."""
    if isinstance(exc, InitError):
        traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
        print(f"{tool}: init failed: {exc}", file=sys.stderr)
    else:
        print(f"{tool}: {exc}", file=sys.stderr)
    return 2


def read_json(path: Path, what: str, missing: str = "") -> dict[str, Any]:
    """The JSON object in a file the user names, else a SetupError (`missing`: how to fix)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SetupError(f"{what} {path} does not exist{missing}") from None
    except json.JSONDecodeError as exc:
        raise SetupError(f"{what} {path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SetupError(f"{what} {path} is not a JSON object")
    return data


def masked(name: str, value: str) -> str:
    """A value fit to print: never one of a secret-looking key, nor a password in a URL."""
    if any(marker in name.upper() for marker in ("PASSWORD", "SECRET", "TOKEN")):
        return "***"
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", value)


@dataclass
class FunctionSpec:
    """One function of the template, as sam local sees it."""

    logical_id: str
    name: str  # the SamResourceId when there is one, else the logical id
    handler: str
    runtime: str | None = None
    architecture: str = "x86_64"
    timeout_s: float = 3.0
    memory_mb: int = 128
    code_dir: Path | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    cdk_path: str | None = None

    def runner(self) -> LambdaRunner:
        return LambdaRunner(
            self.handler,
            function_name=self.name,
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
        )

    @property
    def section_names(self) -> list[str]:
        """The env.json keys that address this function, in sam's order of precedence."""
        names = [self.logical_id, self.name]
        if self.cdk_path:
            names += [self.cdk_path, self.cdk_path.removesuffix("/Resource")]
        return list(dict.fromkeys(names))


def _spec(logical_id: str, resource: dict[str, Any], template_dir: Path) -> FunctionSpec:
    properties = resource.get("Properties", {})
    metadata = resource.get("Metadata", {}) or {}
    # cdk's asset directory (for Code, or CodeUri of a SAM function), else a SAM CodeUri.
    is_code = metadata.get("aws:asset:property") in ("Code", "CodeUri")
    code = (is_code and metadata.get("aws:asset:path")) or properties.get("CodeUri")
    variables = (properties.get("Environment") or {}).get("Variables")
    return FunctionSpec(
        logical_id=logical_id,
        name=str(metadata.get("SamResourceId") or logical_id),
        handler=str(properties.get("Handler", "")),
        runtime=properties.get("Runtime"),
        architecture=str((properties.get("Architectures") or ["x86_64"])[0]),
        timeout_s=float(properties.get("Timeout", 3)),
        memory_mb=int(properties.get("MemorySize", 128)),
        code_dir=(template_dir / code).resolve() if isinstance(code, str) else None,
        variables=dict(variables or {}),
        cdk_path=metadata.get("aws:cdk:path"),
    )


def find_function(template: dict[str, Any], template_path: Path, wanted: str) -> FunctionSpec:
    """The function named by its SamResourceId, logical id or aws:cdk:path."""
    specs = [
        _spec(logical_id, resource, template_path.resolve().parent)
        for logical_id, resource in (template.get("Resources") or {}).items()
        if isinstance(resource, dict)
        and resource.get("Type") in ("AWS::Lambda::Function", "AWS::Serverless::Function")
    ]
    found = [s for s in specs if wanted in s.section_names]
    if len(found) == 1:
        return found[0]
    listing = ", ".join(f"{s.name} ({s.logical_id}: {s.handler})" for s in specs) or "none"
    problem = "matches several functions" if found else "is no function"
    raise SetupError(f"{wanted!r} {problem} of {template_path}; its functions: {listing}")


def load_function(template_path: Path | None, wanted: str) -> FunctionSpec:
    """`find_function` in the template; without one, the app's handler from functions/ with
    the dev stage's timeout and memory."""
    if template_path is not None:
        hint = ": run `make synth` first (or pass --template)."
        return find_function(read_json(template_path, "template", hint), template_path, wanted)
    return FunctionSpec(
        logical_id=wanted,
        name=wanted,
        handler=DEFAULT_HANDLER,
        architecture=host_architecture(),
        timeout_s=15.0,
        memory_mb=512,
        code_dir=FUNCTIONS_DIR,
    )


def add_function_options(parser: argparse.ArgumentParser, template: Path | None) -> None:
    """The options that choose the function, as sam local names them."""
    parser.add_argument(
        "-t", "--template", type=Path, default=template,
        help="the synthesized template (`make synth` writes "
        f"{DEFAULT_TEMPLATE}){'' if template else '; default: functions/, no template'}",
    )  # fmt: skip
    parser.add_argument(
        "-f", "--function", default="UsersApiFunction",
        help="SamResourceId, logical id or aws:cdk:path (default %(default)s)",
    )  # fmt: skip


def module_file(code_dir: Path, handler: str) -> Path | None:
    """The file the handler's module is loaded from under `code_dir`, if it is there."""
    module = handler.rpartition(".")[0]
    base = code_dir.joinpath(*module.split("."))
    candidates = (base.with_name(f"{base.name}.py"), base / "__init__.py") if module else ()
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def resolve_intrinsic(value: Any) -> str | None:
    """A template value as a string, or None when it needs the deployed stack."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref" and argument in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[argument]
        if function == "Fn::Join" and isinstance(argument, list) and len(argument) == 2:
            parts = [resolve_intrinsic(p) for p in argument[1]]
            if all(p is not None for p in parts):
                return str(argument[0]).join(p for p in parts if p is not None)
    return None


def load_env_vars(path: Path, *, required: bool) -> dict[str, dict[str, Any]]:
    """An env.json file as sam reads it: {function or "Parameters": {NAME: value}}."""
    if not (required or path.is_file()):
        return {}
    data = read_json(path, "--env-vars")
    if not all(isinstance(v, dict) for v in data.values()):
        raise SetupError(f"{path}: expected {{function id: {{NAME: value}}}} (as sam reads it)")
    return data


@dataclass
class Environment:
    """The function's own variables, where each came from, and what was left out and why."""

    variables: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def function_environment(
    spec: FunctionSpec,
    env_vars: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, str],
    shell_env: Mapping[str, str],
    env_vars_name: str = "env.json",
) -> Environment:
    env = Environment()
    file_values: dict[str, Any] = dict(env_vars.get("Parameters", {}))
    file_values.update(next((env_vars[n] for n in spec.section_names if n in env_vars), {}))
    ignored = sorted(k for k in file_values if k not in spec.variables)
    if ignored:
        env.notes.append(
            f"{env_vars_name}: ignored {', '.join(ignored)}: not declared by {spec.name} in "
            "the template (sam ignores them too; --set KEY=VALUE adds any variable)"
        )
    for name in dict.fromkeys([*spec.variables, *overrides]):  # declared, then any --set
        raw = spec.variables.get(name)
        value, source = resolve_intrinsic(raw), "template"
        if name in shell_env:
            value, source = shell_env[name], "shell"
        if name in file_values:
            value, source = resolve_intrinsic(file_values[name]), env_vars_name
        if name in overrides:
            value, source = overrides[name], "--set"
        if value is None:
            env.notes.append(
                f"dropped {name}: the template's {json.dumps(raw)} only resolves in a deployed "
                f"stack (give it a value in {env_vars_name} or with --set {name}=...)"
            )
        else:
            env.variables[name], env.sources[name] = value, source
    return env


def resolves(name: str) -> bool:
    try:
        return bool(socket.getaddrinfo(name, None))
    except OSError:
        return False


def map_container_host(env: Environment, resolves: Callable[[str], bool] = resolves) -> None:
    """DB_HOST from env.json names the host as a container sees it; in this process, on
    the host, that is loopback (unless the name resolves here, or --set gave it)."""
    host = env.variables.get("DB_HOST")
    if host not in CONTAINER_HOST_ALIASES or env.sources["DB_HOST"] == "--set" or resolves(host):
        return
    env.variables["DB_HOST"] = "127.0.0.1"
    env.sources["DB_HOST"] += f", {host} mapped to 127.0.0.1"
    env.notes.append(
        f"DB_HOST {host} is the host as sam's containers see it; on the host it is 127.0.0.1 "
        "(--set DB_HOST=... for another)"
    )


def enter(spec: FunctionSpec, variables: Mapping[str, str] | None = None) -> tuple[Path, list[str]]:
    """Make the handler importable (`add_code_path`) and give this process the function's
    environment: `variables` over the Lambda runtime's, over this shell's PATH, locale and
    the like (all of the shell with None). Returns the code directory and notes for the user."""
    code_dir, notes = add_code_path(spec)
    shell = {
        k: v
        for k, v in os.environ.items()
        if variables is None or k in HOST_VARIABLES or k.startswith(("LC_", "PYTHON"))
    }
    runtime = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": str(code_dir),
        "_HANDLER": spec.handler,
        **OFFLINE_AWS,
    }
    os.environ.clear()
    os.environ.update({**shell, **runtime, **(variables or {})})
    return code_dir, notes


def host_architecture() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def add_code_path(spec: FunctionSpec) -> tuple[Path, list[str]]:
    """Make the handler importable as the runtime does, from the function's code directory.

    The code directory goes first on sys.path, as /var/task is on Lambda. When the bundle
    holds wheels built for another OS, CPU or Python (arm64 on an x86_64 machine), only the
    handler's own package is taken from it and its dependencies from this interpreter's
    site-packages (the same pins). Without the bundle, the package comes from functions/.
    """
    sys.dont_write_bytecode = True  # never write into the bundle
    code_dir = spec.code_dir
    if code_dir is None or module_file(code_dir, spec.handler) is None:
        where = f"{code_dir} has no {spec.handler}" if code_dir else "no asset directory"
        sys.path.insert(0, str(FUNCTIONS_DIR))
        return FUNCTIONS_DIR, [
            f"{where} (synthesized without bundling?): importing {spec.handler} from "
            f"{FUNCTIONS_DIR}/ instead"
        ]
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    here = f"{sys.platform}/{host_architecture()} {python}"
    if here == f"linux/{spec.architecture} {spec.runtime or python}":
        sys.path.insert(0, str(code_dir))
        return code_dir, []
    # Drop every other place the handler's package could come from, then look in the
    # bundle last: its pure-Python package is found, its foreign wheels are not.
    top = spec.handler.split(".", 1)[0]
    sys.path[:] = [
        p
        for p in sys.path
        if not (Path(p or ".", top).is_dir() or Path(p or ".", f"{top}.py").is_file())
    ]
    sys.path.append(str(code_dir))
    return code_dir, [
        f"the bundle's compiled wheels are for linux/{spec.architecture} {spec.runtime}, this "
        f"is {here}: {top} comes from the bundle, its dependencies from {sys.prefix} (the "
        "same pins, requirements/function.txt)"
    ]
