"""A Lambda-like worker process: imports the handler once, then invokes it many times.

`python -m tests.support.lambda_worker N [--caches-on]` runs N create/get/list/patch/delete
invocations against DATABASE_URL and prints a JSON summary: statuses and the messages of
any server-side errors. `--caches-on` restores asyncpg's statement caches, to show what
they do behind a transaction pooler.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from typing import Any

from devtools.lambda_runner import LambdaRunner
from devtools.lambda_runtime import response_body


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The app logs a failure's exception types and frames, never its message.
        if record.levelno >= logging.ERROR:
            self.messages.append(
                f"{getattr(record, 'error', '')}: {getattr(record, 'exception', '')}"
            )


def main() -> None:
    invocations = int(sys.argv[1])
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "UsersApiFunction")
    if "--caches-on" in sys.argv:
        from users_api import db

        original = db._connect_args

        def with_caches(settings: Any) -> dict[str, Any]:
            args = original(settings)
            args.pop("statement_cache_size", None)
            args.pop("prepared_statement_cache_size", None)
            return args

        db._connect_args = with_caches

    from users_api.handler import handler
    from users_api.observability import logger

    errors = _Errors()
    logger.addHandler(errors)
    logger.setLevel("ERROR")  # keep stdout for the summary

    runner = LambdaRunner(handler)

    def invoke(method: str, path: str, body: dict[str, Any] | None = None, query: str = "") -> Any:
        raw = json.dumps(body).encode() if body is not None else b""
        _event, result = runner.request(
            method, path, query=query, body=raw, headers={"content-type": "application/json"}
        )
        statuses[result["statusCode"]] += 1
        return json.loads(response_body(result) or b"null")

    statuses: Counter[int] = Counter()
    pid = os.getpid()
    done = 0
    user_id = None
    while done < invocations:
        step = done % 5
        if step == 0:
            created = invoke("POST", "/users", {"name": "W", "email": f"w{pid}-{done}@example.com"})
            user_id = created.get("id") if isinstance(created, dict) else None
        elif step == 1:
            invoke("GET", f"/users/{user_id or 1}")
        elif step == 2:
            invoke("GET", "/users", query="limit=50")
        elif step == 3:
            invoke("PATCH", f"/users/{user_id or 1}", {"name": f"W{done}"})
        else:
            invoke("DELETE", f"/users/{user_id or 1}")
        done += 1
    runner.close()
    print(json.dumps({"statuses": dict(statuses), "errors": errors.messages}))


if __name__ == "__main__":
    main()
