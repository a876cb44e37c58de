"""What a cold start loads and what the function ships: the import profile, the bundle.

The bundle is the CDK recipe's (`infra.bundling.build_bundle`), kept by its input hash;
`built_bundle` makes one when none is there yet (bench.cold runs one built for this machine).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import ROOT, log
from bench.child import spawn

WATCHED_IMPORTS = ("boto3", "botocore", "alembic", "mako", "uvicorn", "httpx", "pydantic_settings")


@dataclass
class ImportLine:
    self_us: int
    cumulative_us: int
    depth: int
    name: str


def _import_tree(url: str, bytecode: Path) -> list[ImportLine]:
    """The -X importtime lines of `import users_api.handler`, in a fresh interpreter."""
    python = (sys.executable, "-X", "importtime")
    _, stderr = spawn(python, [bytecode], {"DATABASE_URL": url}, "users_api.handler")
    lines: list[ImportLine] = []
    for raw in stderr.splitlines():
        if not raw.startswith("import time:") or "self [us]" in raw:
            continue
        self_us, cumulative_us, name = raw.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        lines.append(ImportLine(int(self_us), int(cumulative_us), depth, name.strip()))
        if depth == 0:  # a top-level import: its line ends its subtree
            if name.strip() == "users_api.handler":
                return lines
            lines = []
    raise RuntimeError("no -X importtime line for users_api.handler")


def _importers(tree: list[ImportLine], index: int) -> list[str]:
    """Who imported `tree[index]`, nearest first: importtime prints a module after those it
    imported, one level less indented."""
    chain, depth = [], tree[index].depth
    for line in tree[index + 1 :]:
        if line.depth < depth:
            chain.append(line.name)
            depth = line.depth
    return chain


def import_profile(url: str, bytecode: Path, runs: int) -> dict[str, Any]:
    """-X importtime in `runs` fresh interpreters; each module's times are the medians."""
    trees = [_import_tree(url, bytecode) for _ in range(runs)]
    tree = trees[0]
    for line in tree:
        same = [next((o for o in other if o.name == line.name), line) for other in trees]
        line.self_us = int(statistics.median(o.self_us for o in same))
        line.cumulative_us = int(statistics.median(o.cumulative_us for o in same))
    by_package = Counter[str]()
    for line in tree:
        by_package[line.name.split(".")[0]] += line.self_us
    total_us = tree[-1].cumulative_us
    watched: dict[str, Any] = dict.fromkeys(WATCHED_IMPORTS)  # None: not imported
    for index, line in enumerate(tree):
        if line.name in watched:
            via = _importers(tree, index)[:4]
            watched[line.name] = {"cumulative_ms": line.cumulative_us / 1000, "via": via}
    return {
        "total_ms": total_us / 1000,
        "modules_loaded": len(tree),
        "top_cumulative": [
            {"module": line.name, "cumulative_ms": line.cumulative_us / 1000, "depth": line.depth}
            for line in sorted(tree, key=lambda line: -line.cumulative_us)[:15]
        ],
        "self_by_package": [
            {"package": name, "self_ms": us / 1000, "share": us / total_us}
            for name, us in by_package.most_common(12)
        ],
        "watched": watched,
    }


def built_bundle(path: Path, platforms: tuple[str, ...]) -> Path:
    """The bundle at `path` (named by the recipe's input hash), built there when missing."""
    from infra import bundling  # starts jsii (Node): only when a bundle is needed

    if not path.is_dir():
        log(f"building the bundle into {path.relative_to(ROOT)} (the CDK recipe, {platforms})")
        staging = path.with_name(path.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        bundling.build_bundle(staging, platforms)
        staging.rename(path)
    return path


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _zipped_size(path: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        return Path(shutil.make_archive(f"{tmp}/bundle", "zip", path)).stat().st_size


def bundle_report(zipped: bool) -> dict[str, Any]:
    """The size of the bundle the CDK deploys (its bundler's cache entry); `zipped` also zips
    it."""
    from infra import bundling

    cache = bundling.bundle_cache_root() or ROOT / ".build" / "lambda-bundles"
    path = built_bundle(cache / bundling.source_hash(), bundling.PLATFORMS)
    by_kind = Counter[str]()
    for file in path.rglob("*"):
        if file.is_file():
            kind = file.suffix if file.suffix in (".so", ".pyc", ".py") else "other"
            by_kind[kind] += file.stat().st_size
    packages = [
        {"name": child.name, "bytes": _dir_size(child)}
        for child in path.iterdir()
        if not child.name.endswith(".dist-info") and child.name != "__pycache__"
    ]
    return {
        "path": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
        "unzipped_bytes": _dir_size(path),
        # What /docs and /redoc serve: never imported, apart from the code's size budget.
        "docs_static_bytes": _dir_size(path / "fastapi_offline" / "static"),
        "zipped_bytes": _zipped_size(path) if zipped else None,
        "by_kind": dict(by_kind.most_common()),
        "largest": sorted(packages, key=lambda item: -item["bytes"])[:10],
    }
