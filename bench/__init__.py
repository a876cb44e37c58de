"""Benchmarks of the users API Lambda handler against a bare asyncpg floor (bench/README.md)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def log(message: str) -> None:
    """Progress, on stderr: stdout is the report's (and, in a child, the handler's)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
