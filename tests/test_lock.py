"""The pins in requirements/ agree with what pyproject.toml declares (`make lock` keeps them).

For each set (function.txt: the dependencies; local.txt: + the `local` extra; dev.txt: +
`dev`), every pinned package is needed by a declared requirement, directly or through the
installed packages' own metadata, every needed package is pinned at a version the
declaration allows, and every pin carries hashes and no download address.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.infra.pins import normalize, read_pins

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# The Lambda's platform for function.txt; the others are resolved for any platform, so a
# marker that holds on some other one (colorama on Windows) may pin a package not needed here.
LAMBDA_ENV = {"python_version": "3.12", "platform_machine": "aarch64", "sys_platform": "linux"}
SETS = {"function": (), "local": ("local",), "dev": ("local", "dev")}


def declared(extras: Iterable[str]) -> list[Requirement]:
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        requirements += [
            r
            for r in map(Requirement, PROJECT["optional-dependencies"][extra])
            if normalize(r.name) != normalize(PROJECT["name"])  # users-api[local] itself
        ]
    return requirements


def closure(roots: list[Requirement], env: dict[str, str] | None) -> dict[str, Requirement]:
    """Every package the roots need, following installed metadata (markers evaluated)."""
    needed: dict[str, Requirement] = {}
    queue = [(r, frozenset(r.extras)) for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        requirement, extras = queue.pop()
        name = normalize(requirement.name)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        needed.setdefault(name, requirement)
        try:
            metadata = distribution(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} is declared but not installed: run `make setup`")
        for spec in metadata.requires or []:
            child = Requirement(spec)
            if child.marker is None or any(
                child.marker.evaluate({**(env or {}), "extra": extra}) for extra in extras or {""}
            ):
                queue.append((child, frozenset(child.extras)))
    return needed


@pytest.mark.parametrize("name", SETS)
def test_pins_match_the_declared_dependencies(name: str) -> None:
    pins = read_pins(ROOT / "requirements" / f"{name}.txt")
    needed = closure(declared(SETS[name]), LAMBDA_ENV if name == "function" else None)
    missing = sorted(set(needed) - set(pins))
    assert not missing, f"needed but not pinned in {name}.txt: {missing} (run `make lock`)"
    for package, requirement in needed.items():
        assert requirement.specifier.contains(pins[package], prereleases=True), (
            f"{name}.txt pins {package}=={pins[package]}, outside {requirement}"
        )
    unneeded = set(pins) - set(needed)
    if name == "function":
        assert not unneeded, f"pinned but not needed by the function: {sorted(unneeded)}"
    else:
        # Only packages that some other platform's marker brings in may be extra here.
        text = (ROOT / "requirements" / f"{name}.txt").read_text()
        for package in unneeded:
            assert re.search(rf"(?im)^{re.escape(package)}==\S+ ;", text.replace("_", "-")), (
                f"{name}.txt pins {package}, which nothing declared needs (run `make lock`)"
            )


def test_each_set_extends_the_one_before_at_the_same_versions() -> None:
    function, local, dev = (read_pins(ROOT / "requirements" / f"{n}.txt") for n in SETS)
    assert function.items() <= local.items()
    assert local.items() <= dev.items()


@pytest.mark.parametrize("name", [*SETS, "sam"])
def test_every_pin_is_hashed_and_names_no_download_address(name: str) -> None:
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    assert not re.search(r"(?i)(https?|file)://|--(extra-)?index[-]url|--find-links", text)
    pins = read_pins(ROOT / "requirements" / f"{name}.txt")
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    hashed = {
        normalize(re.split(r"[=\[ ;]", b, maxsplit=1)[0]) for b in blocks if "--hash=sha256:" in b
    }
    assert set(pins) == hashed
