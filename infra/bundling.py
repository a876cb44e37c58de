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
   place of `.py`), which halves their size. Tracebacks keep file names and line numbers;
   only the project's own frames show source lines.

`build_bundle(..., platforms=X86_64_PLATFORMS)` builds the same bundle for this machine's
architecture, so the tests can run the handler from it.

Docker bundling with the standard Python 3.12 image is only the fallback when the local
bundler fails. The asset hash is computed from the inputs (pins, package sources, this
recipe), so an unchanged bundle is not rebuilt and the migration trigger only re-runs when
the code really changed.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
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
# Bump when the recipe below changes, so that every bundle is rebuilt.
RECIPE_VERSION = "2"

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


def source_hash() -> str:
    """A fingerprint of everything that goes into the bundle."""
    digest = hashlib.sha256()
    digest.update(f"recipe={RECIPE_VERSION};python={PYTHON_VERSION};{PLATFORMS}".encode())
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


def _compileall(python: str, *args: str) -> None:
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
            *args,
        ],
        check=True,
    )


def _compile(out_dir: Path) -> bool:
    python = find_python312()
    if python is None:
        _log(
            "WARNING: no Python 3.12 interpreter found on PATH or under ~/.pyenv: the bundle "
            "ships without .pyc files (slower cold starts)."
        )
        return False
    _compileall(python, str(out_dir / PACKAGE))
    # Third-party packages: `-b` writes foo.pyc beside foo.py; the source then goes.
    third_party = [str(p) for p in out_dir.iterdir() if p.is_dir() and p.name != PACKAGE]
    third_party += [str(p) for p in out_dir.glob("*.py")]
    _compileall(python, "-b", *third_party)
    for path in out_dir.rglob("*.py"):
        if path.parts[len(out_dir.parts)] != PACKAGE and path.with_suffix(".pyc").exists():
            path.unlink()
    return True


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
    """Builds the bundle on this machine; returns False (Docker fallback) on failure."""

    def __init__(self, asset_hash: str) -> None:
        self.asset_hash = asset_hash

    def try_bundle(self, output_dir: str, *_options: object, **_kw_options: object) -> bool:
        out_dir = Path(output_dir)
        cache_root = bundle_cache_root()
        cached = cache_root / self.asset_hash if cache_root else None
        try:
            if cached is not None and cached.is_dir():
                _copy_tree(cached, out_dir)
                _log(f"reused the bundle cached in {cached}")
                return True
            build_bundle(out_dir)
            if cached is not None:
                self._store(out_dir, cached)
        except (OSError, subprocess.SubprocessError) as exc:
            _log(f"local bundling failed ({exc}); falling back to Docker bundling")
            for child in out_dir.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
            return False
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


# The same recipe inside the standard SAM build image (only used when local bundling fails).
# The asset source is the repository root, mounted at /asset-input.
_DOCKER_SCRIPT = " && ".join(
    [
        "set -euo pipefail",
        "pip install --quiet --no-compile --no-deps --only-binary=:all: "
        "--requirement requirements/function.txt --target /asset-output",
        f"cp -R functions/{PACKAGE} /asset-output/{PACKAGE}",
        "rm -rf /asset-output/bin /asset-output/include",
        "find /asset-output -depth -type d \\( -name __pycache__ -o -name tests -o -name test \\)"
        " -exec rm -rf {} +",
        "find /asset-output -type f \\( -name '*.pyi' -o -name '*.pyc' -o -name '*.c' "
        "-o -name '*.h' -o -name '*.cpp' -o -name '*.hpp' -o -name '*.pyx' -o -name '*.pxd' "
        "-o -path '*.dist-info/RECORD' \\) -delete",
        "python -m compileall -q --invalidation-mode unchecked-hash /asset-output",
    ]
)


def function_code() -> lambda_.Code:
    """The asset shared by the API and migration functions."""
    asset_hash = source_hash()
    return lambda_.Code.from_asset(
        str(ROOT),
        asset_hash=asset_hash,
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            platform="linux/arm64",
            command=["bash", "-c", _DOCKER_SCRIPT],
            local=LocalBundler(asset_hash),
        ),
    )
