"""Moved to devtools/pgbouncer.py (shared with bench/); this alias keeps branches written
before the move importing. New code imports devtools.pgbouncer."""

from devtools.pgbouncer import *  # noqa: F403
