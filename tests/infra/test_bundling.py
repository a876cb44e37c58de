"""The local bundler's parts, without pip or Node (fast)."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from infra import bundling
from tests.infra.pins import read_pins

ROOT = Path(__file__).resolve().parents[2]


def test_function_requirements_are_exact_pins_without_boto3() -> None:
    pins = read_pins(ROOT / "requirements" / "function.txt")
    assert "sqlalchemy" in pins
    assert "greenlet" in pins  # what sqlalchemy[asyncio] needs, pinned since --no-deps
    assert "boto3" not in pins
    assert "botocore" not in pins


def test_both_manylinux_platforms_are_requested() -> None:
    assert bundling.PLATFORMS == ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
    assert bundling.PYTHON_VERSION == "3.12"


def test_prune_drops_dead_weight_and_keeps_metadata(tmp_path: Path) -> None:
    files = [
        "pkg/__init__.py",
        "pkg/__pycache__/__init__.cpython-312.pyc",
        "pkg/tests/test_pkg.py",
        "pkg/sub/test/test_sub.py",
        "pkg/core.pyi",
        "pkg/_speedups.c",
        "pkg/_speedups.cpython-312-aarch64-linux-gnu.so",
        "pkg/py.typed",
        "pkg/only_stubs/x.pyi",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/RECORD",
        "pkg-1.0.dist-info/INSTALLER",
        "pkg-1.0.dist-info/entry_points.txt",
        "bin/pkg-cli",
        "include/site/python3.12/pkg/pkg.h",
    ]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    bundling._prune(tmp_path)

    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == [
        "pkg",
        "pkg-1.0.dist-info",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/entry_points.txt",
        "pkg/__init__.py",
        "pkg/_speedups.cpython-312-aarch64-linux-gnu.so",
        "pkg/py.typed",
    ]  # pkg/sub and pkg/only_stubs were left empty, so they went too


def _fake_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    functions = tmp_path / "functions"
    package = functions / bundling.PACKAGE
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text("handler = None\n")
    requirements = tmp_path / "function.txt"
    requirements.write_text("fastapi==1.0\n")
    monkeypatch.setattr(bundling, "FUNCTIONS_DIR", functions)
    monkeypatch.setattr(bundling, "REQUIREMENTS", requirements)
    return package, requirements


def test_source_hash_follows_code_and_pins_but_not_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package, requirements = _fake_sources(tmp_path, monkeypatch)
    first = bundling.source_hash()
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"\0")
    assert bundling.source_hash() == first
    (package / "handler.py").write_text("handler = 1\n")
    second = bundling.source_hash()
    assert second != first
    requirements.write_text("fastapi==1.1\n")
    assert bundling.source_hash() not in (first, second)


def test_python312_lookup_finds_an_interpreter_that_runs() -> None:
    found = bundling.find_python312()
    if sys.version_info[:2] == (3, 12):
        assert found is not None  # at worst the interpreter running these tests
    if found is not None:
        version = subprocess.run(
            [found, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert version == "(3, 12)"


def test_local_bundler_caches_by_hash_and_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[Path] = []

    def fake_build(out_dir: Path) -> None:
        builds.append(out_dir)
        (out_dir / "users_api").mkdir(parents=True)
        (out_dir / "users_api" / "__init__.py").write_text("")

    monkeypatch.setattr(bundling, "build_bundle", fake_build)
    monkeypatch.setenv("USERS_API_BUNDLE_CACHE", str(tmp_path / "cache"))
    bundler = bundling.LocalBundler("abc123")
    for stage in ("dev", "prod"):
        out = tmp_path / stage
        out.mkdir()
        assert bundler.try_bundle(str(out)) is True
        assert (out / "users_api" / "__init__.py").is_file()
    assert builds == [tmp_path / "dev"]  # prod reused the cached bundle
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["abc123"]

    def failing_build(out_dir: Path) -> None:
        (out_dir / "partial").write_text("x")
        raise subprocess.CalledProcessError(1, ["pip"])

    # One recipe: a failed build fails the synthesis (no Docker fallback), and nothing
    # half-built reaches the cache.
    monkeypatch.setattr(bundling, "build_bundle", failing_build)
    monkeypatch.setenv("USERS_API_BUNDLE_CACHE", str(tmp_path / "cache2"))
    out = tmp_path / "failed"
    out.mkdir()
    with pytest.raises(subprocess.CalledProcessError):
        bundling.LocalBundler("def456").try_bundle(str(out))
    assert not (tmp_path / "cache2" / "def456").exists()


def test_source_hash_covers_the_recipe_itself_and_the_locked_ca_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed bundling recipe (this module) or CA package rebuilds the bundle: no version
    constant to bump by hand."""
    _fake_sources(tmp_path, monkeypatch)
    recipe = tmp_path / "bundling.py"
    recipe.write_bytes(bundling.RECIPE.read_bytes())
    monkeypatch.setattr(bundling, "RECIPE", recipe)
    lock = tmp_path / "package-lock.json"
    lock.write_bytes(bundling.PACKAGE_LOCK.read_bytes())
    monkeypatch.setattr(bundling, "PACKAGE_LOCK", lock)
    first = bundling.source_hash()
    recipe.write_text(recipe.read_text() + "\n# a changed step\n")
    second = bundling.source_hash()
    assert second != first
    lock.write_text(lock.read_text().replace('"version": "1.1.2"', '"version": "1.1.3"'))
    assert bundling.source_hash() not in (first, second)


def _subjects(bundle: str) -> list[str]:
    from cryptography import x509

    certificates = x509.load_pem_x509_certificates(bundle.encode())
    return [c.subject.rfc4514_string() for c in certificates]


def test_rds_ca_bundle_holds_the_instance_ca_of_every_region(tmp_path: Path) -> None:
    """The CA the instance is set to (rds-ca-rsa2048-g1) has a root for every region the
    pinned package knows, and the migration function's TLS setup trusts exactly these."""
    from infra.constructs.database import CA_CERTIFICATE
    from users_api.db import _ssl_context
    from users_api.settings import SslMode

    assert CA_CERTIFICATE.to_string() == "rds-ca-rsa2048-g1"
    bundle = bundling.rds_ca_bundle()
    subjects = _subjects(bundle)
    assert len(subjects) >= 100
    g1_regions = {s for s in subjects if "Root CA RSA2048 G1" in s and "Beta" not in s}
    assert len(g1_regions) >= 25
    for region in ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"):
        assert any(f"Amazon RDS {region} Root CA RSA2048 G1" in s for s in subjects), region
    path = tmp_path / bundling.RDS_CA_BUNDLE
    path.write_text(bundle)
    context = _ssl_context(SslMode.VERIFY_FULL, path)
    assert isinstance(context, ssl.SSLContext)
    assert (context.check_hostname, context.verify_mode) == (True, ssl.CERT_REQUIRED)
    assert len(context.get_ca_certs()) == len(subjects)  # these CAs only, not the system's


def test_rds_ca_bundle_refuses_a_source_without_certificates(tmp_path: Path) -> None:
    source = tmp_path / "defaults.js"
    source.write_text("exports.defaults = ['not a certificate'];\n")
    with pytest.raises(ValueError, match="no certificate"):
        bundling.rds_ca_bundle(source)
