"""RDS IAM auth tokens, signed here: a SigV4 query presign of `connect` for `rds-db`.

botocore's `generate_db_auth_token` needs an RDS client: importing boto3 and building that
client loads about a hundred SDK modules and the RDS service model, a few hundred ms on a
cold start, to compute one HMAC chain. Lambda hands the function its credentials in the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN): with those, the
token is signed by the standard library alone. Without them (a developer's profile, SSO,
or container credentials, which Lambda provides instead of the variables when SnapStart is
on: AWS Lambda Developer Guide, "Activating and managing Lambda SnapStart", section on
credentials), botocore's credential chain supplies them, and only then is botocore imported.

The output is byte-identical to botocore's (tests/test_rds_token.py checks it against
botocore over generated inputs). What it mirrors, from botocore's `signers.py`
(`generate_db_auth_token`) and `auth.py` (`SigV4QueryAuth`, `_host_from_url`): the URL is
`https://HOST:PORT/` with the scheme cut off afterwards; the operation's parameters
(Action, DBUser) come first in the query, then the auth parameters in a fixed order; the
canonical query string is those pairs sorted; the only signed header is `host`, lower-cased
and without the port when it is https's default 443; the payload hash is that of an empty
body; the token expires after 900 s.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

EXPIRES_S = 900  # the most RDS accepts
SERVICE = "rds-db"
_ALGORITHM = "AWS4-HMAC-SHA256"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, repr=False)  # no repr: never print a secret key by accident
class AwsCredentials:
    access_key: str
    secret_key: str
    token: str | None = None


def credentials_from_env(environ: Mapping[str, str] = os.environ) -> AwsCredentials | None:
    """The credentials Lambda puts in the environment, or None when they are not all there."""
    access_key = environ.get("AWS_ACCESS_KEY_ID")
    secret_key = environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        return None
    return AwsCredentials(access_key, secret_key, environ.get("AWS_SESSION_TOKEN") or None)


def _encode(value: str) -> str:
    return quote(value.encode("utf-8"), safe="-_.~")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def auth_token(
    host: str,
    port: int,
    user: str,
    region: str,
    credentials: AwsCredentials,
    now: float | None = None,
) -> str:
    """The token to send as the password for `user` at `host:port` (valid 15 minutes)."""
    # datetime, as botocore: it rounds to the microsecond, where time.gmtime truncates, so
    # an instant a hair before a whole second is stamped with that second by both.
    instant = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    timestamp = instant.strftime("%Y%m%dT%H%M%SZ")
    date = timestamp[:8]
    scope = f"{date}/{region}/{SERVICE}/aws4_request"
    params = [
        ("Action", "connect"),
        ("DBUser", user),
        ("X-Amz-Algorithm", _ALGORITHM),
        ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
        ("X-Amz-Date", timestamp),
        ("X-Amz-Expires", str(EXPIRES_S)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if credentials.token is not None:
        params.append(("X-Amz-Security-Token", credentials.token))
    encoded = [(_encode(key), _encode(value)) for key, value in params]
    query = "&".join(f"{key}={value}" for key, value in encoded)
    canonical_query = "&".join(f"{key}={value}" for key, value in sorted(encoded))
    host_header = host.lower() if port == 443 else f"{host.lower()}:{port}"
    canonical_request = f"GET\n/\n{canonical_query}\nhost:{host_header}\n\nhost\n{_EMPTY_SHA256}"
    string_to_sign = (
        f"{_ALGORITHM}\n{timestamp}\n{scope}\n"
        + hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
    )
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), date)
    for part in (region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{host}:{port}/?{query}&X-Amz-Signature={signature}"


CredentialsProvider = Callable[[], AwsCredentials]


def _botocore_chain() -> tuple[CredentialsProvider, str | None]:
    """botocore's default chain (profile, SSO, container, instance), and its region."""
    from botocore.session import get_session

    session = get_session()
    found = session.get_credentials()
    if found is None:
        raise RuntimeError("no AWS credentials found to sign an RDS IAM auth token")

    def frozen() -> AwsCredentials:
        # Refreshable credentials (SSO, container) renew themselves here when near expiry.
        current = found.get_frozen_credentials()
        if current.access_key is None or current.secret_key is None:
            raise RuntimeError("the AWS credentials found have no access key or secret key")
        return AwsCredentials(current.access_key, current.secret_key, current.token)

    return frozen, session.get_config_variable("region")


class TokenSigner:
    """Signs tokens for one database user; the credentials are looked up at each signing
    (cheap from the environment), so a restored SnapStart copy never reuses stale ones."""

    def __init__(self, host: str, port: int, user: str, region: str | None) -> None:
        self.host, self.port, self.user, self.region = host, port, user, region
        self._chain: tuple[CredentialsProvider, str | None] | None = None

    def __call__(self, now: float | None = None) -> str:
        credentials = credentials_from_env()
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if credentials is None or region is None:
            if self._chain is None:
                self._chain = _botocore_chain()
            provider, chain_region = self._chain
            credentials = credentials or provider()
            region = region or chain_region
        if not region:
            raise RuntimeError("no AWS region to sign an RDS IAM auth token (set AWS_REGION)")
        return auth_token(self.host, self.port, self.user, region, credentials, now)
