"""Reading requirements/function.txt and a bundle's installed distributions."""

from __future__ import annotations

import re
from email.parser import HeaderParser
from pathlib import Path

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(?P<version>[^\s;#]+)$")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """name -> version for each `name[extras]==version` requirement; anything else is an error."""
    pins = {}
    # `make lock` writes `name==version ; marker \` then one `--hash=...` line per file.
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = re.sub(r"\s--hash=\S+", "", line).split(";")[0].strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        if match is None:
            raise ValueError(f"{path}: not an exact pin: {line!r}")
        pins[normalize(match["name"])] = match["version"]
    return pins


def installed_distributions(site_dir: Path) -> dict[str, str]:
    """name -> version of every `*.dist-info` in `site_dir` (from its METADATA)."""
    found = {}
    for metadata in sorted(site_dir.glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8"))
        found[normalize(headers["Name"])] = headers["Version"]
    return found
