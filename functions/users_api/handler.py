"""The Lambda entry point: `users_api.handler.handler`.

Everything here runs once per cold start (or once before a SnapStart snapshot), including
the warm-up of users_api.snapstart: the engine is built, but not connected until the first
request needs it. Mangum reuses one event loop across invocations, so nothing may call
asyncio.run (it would close that loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from mangum import Mangum

from users_api import snapstart
from users_api.app import app, create_app
from users_api.observability import logger, metrics
from users_api.settings import Settings, get_settings

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def build_adapter(settings: Settings, asgi: FastAPI | None = None) -> Mangum:
    # One setting drives both: Mangum strips the stage prefix from incoming paths, the app
    # puts it back into the links it writes (/docs -> /prod/openapi.json).
    return Mangum(
        asgi or create_app(settings),
        lifespan="off",
        api_gateway_base_path=settings.api_root_path or "/",
    )


def instrument(adapter: Mangum) -> LambdaHandler:
    """Lambda context in every log line, and EMF metrics (cold starts) flushed per call."""
    return metrics().log_metrics(
        logger.inject_lambda_context(adapter, clear_state=True),
        capture_cold_start_metric=True,
    )


adapter = build_adapter(get_settings(), app)
handler = instrument(adapter)
snapstart.warm_up(adapter)
snapstart.register(adapter)
