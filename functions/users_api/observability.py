"""Structured logs (one JSON line per event) and CloudWatch metrics (EMF, Lambda only).

Locally LOG_FORMAT=text swaps the JSON lines for one readable line per request (log_format).
"""

from __future__ import annotations

import logging
from functools import cache

# One import: the package's __init__ loads its metrics module along with the Logger anyway.
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from users_api.log_format import TextFormatter
from users_api.settings import get_settings

logger = Logger(
    service=get_settings().powertools_service_name,
    level=get_settings().log_level,
    logger_formatter=TextFormatter() if get_settings().text_logs else None,
)
# Loggers of libraries that would write user data: aiosqlite's DEBUG lines quote every
# statement's parameters, Mangum's INFO line each request's path (the app writes its own).
logging.getLogger("aiosqlite").setLevel(logging.INFO)
logging.getLogger("mangum.http").setLevel(logging.WARNING)


def in_lambda() -> bool:
    return get_settings().in_lambda


@cache
def metrics() -> Metrics:
    settings = get_settings()
    return Metrics(
        namespace=settings.powertools_metrics_namespace,
        service=settings.powertools_service_name,
    )


def record_db_connect(elapsed_ms: float) -> None:
    logger.debug("db connect", extra={"db_connect_ms": round(elapsed_ms, 2)})
    if in_lambda():
        metrics().add_metric("DbConnectTime", MetricUnit.Milliseconds, elapsed_ms)


def record_request(route: str, status: int, elapsed_ms: float) -> None:
    if in_lambda():
        # One request per invocation: the route becomes this flush's dimension.
        m = metrics()
        m.add_dimension("route", route)
        m.add_metric("Latency", MetricUnit.Milliseconds, elapsed_ms)
        if status >= 500:
            m.add_metric("ServerErrors", MetricUnit.Count, 1)
