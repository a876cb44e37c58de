"""The real CDK CLI (pinned in package.json) synthesizes both stages offline, and the
bundle it builds is fit for Lambda (arm64, CPython 3.12).

The only network traffic is the bundler's pip install from the package index: no AWS
credentials (the shared files are hidden and the test session's fake keys removed), no
version check, notices, telemetry or instance metadata; any AWS SDK call would go to
loopback.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import shutil
import sys
from pathlib import Path

import pytest

from infra.bundling import PACKAGE, STRIP_TOOLS, find_python312
from tests.infra.pins import installed_distributions, read_pins
from tests.support.processes import run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"
STAGES = ("dev", "prod")
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
ELF_MACHINE_AARCH64 = 183
UNCHECKED_HASH_FLAGS = 0b01  # hash-based .pyc, source never checked (PEP 552)
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def offline_env(bundle_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "CDK_DISABLE_VERSION_CHECK": "true",
            "CDK_DISABLE_CLI_TELEMETRY": "true",
            # A fresh cache: the bundle is really built (once: prod reuses dev's).
            "USERS_API_BUNDLE_CACHE": str(bundle_cache),
        }
    )
    return env


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CDK.exists():
        pytest.fail(f"{CDK} is missing: run `make node_modules/.installed` (npm ci)")
    out = tmp_path_factory.mktemp("cdk-cli")
    env = offline_env(out / "bundle-cache")
    for stage in STAGES:
        result = run(
            [CDK, "synth", "-c", f"stage={stage}", "--no-notices", "--quiet", "-o", out / stage],
            env=env,
            timeout=900,
        )
        assert result.returncode == 0, f"cdk synth {stage}:\n{result.stderr[-6000:]}"
    return out


def stack_template(cli_out: Path, stage: str) -> tuple[Path, dict]:
    """The stage's nested assembly (infra/stage.py) and its stack's template."""
    assembly = cli_out / stage / f"assembly-{stage.capitalize()}"
    manifest = json.loads((assembly / "manifest.json").read_text())
    (artifact,) = [
        a
        for a in manifest["artifacts"].values()
        if a["type"] == "aws:cloudformation:stack"
        and a["properties"]["stackName"] == f"UsersApi-{stage}"
    ]
    return assembly, json.loads((assembly / artifact["properties"]["templateFile"]).read_text())


def asset_dir(cli_out: Path, stage: str) -> Path:
    assembly, template = stack_template(cli_out, stage)
    paths = {
        r["Metadata"]["aws:asset:path"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler", "").startswith(f"{PACKAGE}.")
    }
    assert len(paths) == 1, f"the two functions should share one asset: {paths}"
    return (assembly / paths.pop()).resolve()


@pytest.fixture(scope="module")
def bundle(cli_out: Path) -> Path:
    path = asset_dir(cli_out, "dev")
    assert path.is_dir(), path
    return path


def test_both_stages_synthesize_with_the_same_bundle(cli_out: Path) -> None:
    assert asset_dir(cli_out, "dev").name == asset_dir(cli_out, "prod").name
    for stage in STAGES:
        _, template = stack_template(cli_out, stage)
        assert template["Resources"]


def test_bundle_fits_lambda(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
    with capsys.disabled():
        print(f"\n[infra] Lambda bundle: {size / 2**20:.1f} MiB unzipped ({bundle.name})")
    assert size < LAMBDA_UNZIPPED_LIMIT
    if any(shutil.which(tool) for tool in STRIP_TOOLS["aarch64"]):
        # The slimmed bundle (pruned, stripped, sourceless third-party bytecode): the
        # project's size budget, a deterministic count of bytes. It is for code: the static
        # files that /docs and /redoc serve (fastapi-offline's, 2.8 MB, never imported) are
        # counted apart.
        static = bundle / "fastapi_offline" / "static"
        docs_assets = sum(p.stat().st_size for p in static.rglob("*") if p.is_file())
        assert 0 < docs_assets < 3 * 10**6
        assert size - docs_assets < 25 * 10**6


def test_extensions_carry_no_debug_information(bundle: Path) -> None:
    if not any(shutil.which(tool) for tool in STRIP_TOOLS["aarch64"]):
        pytest.skip("no strip tool for arm64 ELF here (llvm-strip or aarch64-linux-gnu-strip)")
    for path in bundle.rglob("*.so"):
        sections = elf_section_names(path.read_bytes())
        assert ".text" in sections, path
        assert not [name for name in sections if name.startswith(".debug")], path


def elf_section_names(data: bytes) -> list[str]:
    """Section names of a 64-bit little-endian ELF file (what `readelf -S` lists)."""
    assert data[:4] == b"\x7fELF", "not an ELF file"
    assert (data[4], data[5]) == (2, 1), "not 64-bit little-endian"
    shoff = int.from_bytes(data[0x28:0x30], "little")
    shentsize = int.from_bytes(data[0x3A:0x3C], "little")
    shnum = int.from_bytes(data[0x3C:0x3E], "little")
    shstrndx = int.from_bytes(data[0x3E:0x40], "little")

    def header(index: int) -> bytes:
        return data[shoff + index * shentsize : shoff + (index + 1) * shentsize]

    strtab = header(shstrndx)
    str_offset = int.from_bytes(strtab[0x18:0x20], "little")
    names = []
    for index in range(shnum):
        name_offset = str_offset + int.from_bytes(header(index)[0:4], "little")
        names.append(data[name_offset : data.index(b"\0", name_offset)].decode())
    return names


def test_bundle_holds_the_package(bundle: Path) -> None:
    source = ROOT / "functions" / PACKAGE
    for name in ("__init__.py", "handler.py", "migrate.py"):
        assert (bundle / PACKAGE / name).is_file(), name
    expected = {
        p.relative_to(source).as_posix()
        for p in source.rglob("*.py")
        if "__pycache__" not in p.parts and "tests" not in p.parts
    }
    bundled = {p.relative_to(bundle / PACKAGE).as_posix() for p in (bundle / PACKAGE).rglob("*.py")}
    assert bundled == expected


def test_extensions_are_cpython312_aarch64(bundle: Path) -> None:
    extensions = sorted(bundle.rglob("*.so"))
    names = {p.name.split(".")[0] for p in extensions}
    assert {"_pydantic_core", "_greenlet", "protocol"} <= names  # pydantic, greenlet, asyncpg
    for path in extensions:
        assert "cpython-312" in path.name, path
        assert "aarch64" in path.name, path
        header = path.read_bytes()[:20]
        assert header[:4] == b"\x7fELF", path
        assert int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, path


def test_no_tests_stubs_or_stale_records(bundle: Path) -> None:
    assert [p for p in bundle.rglob("tests") if p.is_dir()] == []
    assert list(bundle.rglob("*.pyi")) == []
    assert list(bundle.glob("*.dist-info/RECORD")) == []
    assert not (bundle / "bin").exists()


def test_bytecode_is_unchecked_hash_for_python312(bundle: Path) -> None:
    if find_python312() is None:
        # No 3.12 on this machine: the bundler warned and shipped sources only.
        assert list(bundle.rglob("*.pyc")) == []
        return
    magic = importlib.util.MAGIC_NUMBER if sys.version_info[:2] == (3, 12) else None
    # The project's own code: sources, with unchecked-hash bytecode in __pycache__.
    sources = list((bundle / PACKAGE).rglob("*.py"))
    assert sources
    compiled = [
        source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc" for source in sources
    ]
    # Third-party packages: sourceless bytecode (foo.pyc in place of foo.py).
    third_party = [p for p in bundle.rglob("*.pyc") if "__pycache__" not in p.parts]
    assert len(third_party) > 500
    assert [p for p in bundle.rglob("*.py") if p.parts[len(bundle.parts)] != PACKAGE] == []
    for pyc in compiled + third_party:
        assert pyc.is_file(), f"not byte-compiled: {pyc.relative_to(bundle)}"
        header = pyc.read_bytes()[:16]
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_FLAGS, pyc
        if magic is not None:
            assert header[:4] == magic, pyc


def test_bundled_versions_equal_the_pins(bundle: Path) -> None:
    assert installed_distributions(bundle) == read_pins(ROOT / "requirements" / "function.txt")


def test_bytecode_records_the_lambda_path_not_the_build_folder(bundle: Path) -> None:
    """A traceback on Lambda names /var/task/..., never the build machine's folder."""
    if find_python312() is None or sys.version_info[:2] != (3, 12):
        pytest.skip("needs Python 3.12 both to have compiled the bundle and to read its code")
    pycs = sorted(bundle.rglob("*.pyc"))
    assert len(pycs) > 500
    for pyc in pycs:
        code = marshal.loads(pyc.read_bytes()[16:])  # noqa: S302 - our own build output
        relative = pyc.relative_to(bundle)
        assert code.co_filename.startswith("/var/task/"), (relative, code.co_filename)
        # The file's own place in the bundle (a sourceless foo.pyc records foo.py).
        recorded = Path(code.co_filename.removeprefix("/var/task/"))
        if "__pycache__" not in relative.parts:
            assert recorded == relative.with_suffix(".py"), (relative, recorded)


def test_bundle_ships_the_rds_ca_bundle_at_the_configured_path(bundle: Path) -> None:
    from infra.bundling import RDS_CA_BUNDLE, RDS_CA_BUNDLE_PATH, rds_ca_bundle

    assert f"/var/task/{RDS_CA_BUNDLE}" == RDS_CA_BUNDLE_PATH
    assert (bundle / RDS_CA_BUNDLE).read_text() == rds_ca_bundle()


def test_the_local_tools_default_template_is_the_dev_stack(cli_out: Path) -> None:
    """`make invoke`, `make run-lambda` and the sam targets read the dev stack from where
    `make synth` writes it (cdk.out/dev/): its Stage's nested assembly."""
    import re

    from devtools.local_function import DEFAULT_TEMPLATE

    relative = DEFAULT_TEMPLATE.relative_to("cdk.out/dev")
    assert (cli_out / "dev" / relative).is_file()
    sam_mk = (ROOT / "sam.mk").read_text()
    match = re.search(r"^SAM_DEFAULT_TEMPLATE := (\S+)$", sam_mk, re.MULTILINE)
    assert match is not None
    assert match.group(1) == DEFAULT_TEMPLATE.as_posix()
