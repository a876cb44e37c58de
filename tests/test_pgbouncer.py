"""Behind a transaction-pooling proxy (pgbouncer standing in for RDS Proxy).

Many invocations in one process and in several at once never trip over prepared
statements; with asyncpg's caches left on they do. Outages of the pooler or of the
database behind it give 503 in bounded time, and the same warm process recovers. TLS modes
behave as configured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from devtools.pgbouncer import Pgbouncer, pgbouncer
from devtools.tcp_proxy import TcpProxy
from devtools.tls import Certificates, make_certificates
from tests.support.processes import function_env
from tests.support.serving import ROOT, Configure, lambda_client

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def bouncer(pg_url: str) -> Iterator[Pgbouncer]:
    url = make_url(pg_url)
    with pgbouncer(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


def via(bouncer: Pgbouncer, pg_url: str) -> str:
    return f"{bouncer.url}/{make_url(pg_url).database}"


def run_workers(url: str, processes: int, invocations: int, *extra: str) -> list[dict]:
    env = function_env(DATABASE_URL=url, AWS_EC2_METADATA_DISABLED="true", LOG_LEVEL="ERROR")
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.lambda_worker", str(invocations), *extra],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def failures(result: dict) -> int:
    return sum(n for status, n in result["statuses"].items() if int(status) >= 300)


def test_hundreds_of_invocations_in_one_process(bouncer: Pgbouncer, clean_pg: str) -> None:
    [result] = run_workers(via(bouncer, clean_pg), 1, 300)
    assert sum(result["statuses"].values()) == 300
    assert failures(result) == 0, result
    assert result["errors"] == []


def test_several_processes_at_once(bouncer: Pgbouncer, clean_pg: str) -> None:
    results = run_workers(via(bouncer, clean_pg), 3, 150)
    for result in results:
        assert sum(result["statuses"].values()) == 150
        assert failures(result) == 0, result
        assert result["errors"] == []


def test_asyncpg_statement_caches_break_behind_the_pooler(
    bouncer: Pgbouncer, clean_pg: str
) -> None:
    """What statement_cache_size=0 and prepared_statement_cache_size=0 prevent."""
    results = run_workers(via(bouncer, clean_pg), 3, 50, "--caches-on")
    failed = sum(failures(r) for r in results)
    messages = [m for r in results for m in r["errors"]]
    assert failed > 0, results
    # Logs name the exception types (never messages): a statement prepared on another
    # server connection, or a cached one whose columns differ there.
    prepared = ("DuplicatePreparedStatementError", "InvalidSQLStatementNameError")
    assert any(name in m for m in messages for name in prepared), messages[:5]


@pytest.fixture
def lambda_via(bouncer: Pgbouncer, clean_pg: str, configure: Configure) -> Iterator[object]:
    configure(DB_CONNECT_TIMEOUT="1")
    with lambda_client(via(bouncer, clean_pg), configure) as client:
        yield client


def test_the_pooler_down_gives_503_then_the_warm_process_recovers(
    bouncer: Pgbouncer, lambda_via
) -> None:  # type: ignore[no-untyped-def]
    assert lambda_via.get("/health").status_code == 200
    bouncer.stop()
    try:
        started = time.monotonic()
        response = lambda_via.get("/users")
        assert response.status_code == 503
        assert response.json() == {"detail": "Database unavailable"}
        assert time.monotonic() - started < 2.5
    finally:
        bouncer.start()
    assert lambda_via.get("/users").status_code == 200


def test_the_database_behind_the_pooler_down_gives_503_in_bounded_time(
    pg_url: str, clean_pg: str, configure: Configure
) -> None:
    target = make_url(pg_url)
    with (
        TcpProxy(target.host or "127.0.0.1", target.port or 5432) as database_link,
        pgbouncer("127.0.0.1", database_link.port) as fronted,
    ):
        configure(DB_CONNECT_TIMEOUT="1")
        with lambda_client(via(fronted, pg_url), configure) as client:
            assert client.get("/health").status_code == 200
            database_link.stop()
            started = time.monotonic()
            response = client.get("/users/1")
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            # pgbouncer gives up after query_wait_timeout (5 s), as RDS Proxy does after its
            # ConnectionBorrowTimeout, which the stack sets to the connect timeout.
            assert elapsed < 8
            database_link.start()
            deadline = time.monotonic() + 10
            while (status := client.get("/users").status_code) != 200:
                assert time.monotonic() < deadline, status
                time.sleep(0.5)


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_bouncer(pg_url: str, certificates: Certificates) -> Iterator[Pgbouncer]:
    url = make_url(pg_url)
    with pgbouncer(
        url.host or "127.0.0.1",
        url.port or 5432,
        tls_cert=certificates.cert,
        tls_key=certificates.key,
    ) as running:
        yield running


@pytest.mark.parametrize(
    ("ssl_mode", "host", "trust_ca", "expected"),
    [
        ("require", "127.0.0.1", False, 200),  # encrypted, not verified
        ("verify-full", "localhost", True, 200),  # chain and name check out
        ("verify-full", "localhost", False, 503),  # unknown CA
        ("verify-full", "127.0.0.1", True, 503),  # the certificate names localhost only
        ("disable", "127.0.0.1", True, 503),  # the pooler requires TLS
    ],
)
def test_tls_modes(
    tls_bouncer: Pgbouncer,
    certificates: Certificates,
    pg_url: str,
    configure: Configure,
    ssl_mode: str,
    host: str,
    trust_ca: bool,
    expected: int,
) -> None:
    configure(
        DB_SSL=ssl_mode,
        DB_CONNECT_TIMEOUT="2",
        # ssl.create_default_context() reads the system trust store from here
        SSL_CERT_FILE=str(certificates.ca) if trust_ca else str(Path("/nonexistent.pem")),
    )
    url = f"postgresql+asyncpg://postgres@{host}:{tls_bouncer.port}/{make_url(pg_url).database}"
    with lambda_client(url, configure) as client:
        assert client.get("/health").status_code == expected
