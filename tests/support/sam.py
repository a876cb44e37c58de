"""The SAM CLI as the tests run it: sam.mk's environment, nothing off loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path

from devtools.lambda_runtime import OFFLINE_AWS

ROOT = Path(__file__).resolve().parents[2]
SAM = ROOT / ".venv-sam" / "bin" / "sam"


def sam_env(home: Path) -> dict[str, str]:
    """No telemetry; no update check (SAM asks the package index for its newest version
    unless its metadata says it checked within a week: a stamp in the future turns that
    off); fake credentials; every AWS endpoint on a closed loopback port."""
    home.mkdir(exist_ok=True)
    (home / "metadata.json").write_text(
        json.dumps({"telemetryEnabled": False, "lastVersionCheck": 4102444800.0})
    )
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "__SAM_CLI_APP_DIR": str(home),
        **OFFLINE_AWS,
        # No container runtime, whatever this machine has: sam must stop there, and never
        # pull an image.
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    }
