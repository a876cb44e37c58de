"""Headless Chromium (Debian's `chromium`, `make chromium`) rendering a page of the app.

`python -m tests.support.browser PATH` serves the app with uvicorn on a loopback port, has
Chromium load PATH and prints the DOM once scripts have run. The test runs it in a network
namespace of its own (`unshare --net`: nothing but loopback exists) when the kernel allows
one; Chromium is in any case told to resolve no host name and to send every non-loopback
request to a closed loopback port, so a CDN-hosted script could not load.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile

from tests.support.serving import UVICORN_ARGS, server_process

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # run as root in CI; the page is our own
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    # Run the page's timers and fetches to completion before dumping the DOM.
    "--virtual-time-budget=20000",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str) -> str:
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed: `make chromium` installs it (apt)")
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return result.stdout


def main() -> None:
    path = sys.argv[1]
    # The docs pages and the OpenAPI document they load never touch the database.
    with tempfile.TemporaryDirectory() as data_dir:
        database_url = f"sqlite+aiosqlite:///{data_dir}/users.db"
        with server_process(UVICORN_ARGS, {"DATABASE_URL": database_url}) as client:
            sys.stdout.write(dump_dom(f"{client.base_url}".rstrip("/") + path))


if __name__ == "__main__":
    main()
