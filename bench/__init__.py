"""Benchmarks of the users API Lambda handler against a bare asyncpg floor (bench/README.md)."""
