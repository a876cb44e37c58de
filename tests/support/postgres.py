"""Moved to devtools/postgres.py (shared with bench/); this alias keeps branches written
before the move importing. New code imports devtools.postgres."""

from devtools.postgres import *  # noqa: F403
