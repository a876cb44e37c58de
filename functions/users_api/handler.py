"""The Lambda entry point: `users_api.handler.handler`.

Everything here runs once per cold start. The engine is not connected until the first
request needs it, and Mangum reuses one event loop across invocations, so nothing may call
asyncio.run (it would close that loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

from users_api.app import app, create_app
from users_api.observability import logger, metrics
from users_api.settings import Settings, get_settings

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def build_handler(settings: Settings, asgi: FastAPI | None = None) -> LambdaHandler:
    # One setting drives both: Mangum strips the stage prefix from incoming paths, the app
    # puts it back into the links it writes (/docs -> /prod/openapi.json).
    adapter = Mangum(
        asgi or create_app(settings),
        lifespan="off",
        api_gateway_base_path=settings.api_root_path or "/",
    )
    return metrics().log_metrics(
        logger.inject_lambda_context(adapter, clear_state=True),
        capture_cold_start_metric=True,
    )


handler = build_handler(get_settings(), app)
