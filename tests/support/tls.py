"""Moved to devtools/tls.py (shared with bench/); this alias keeps branches written
before the move importing. New code imports devtools.tls."""

from devtools.tls import *  # noqa: F403
