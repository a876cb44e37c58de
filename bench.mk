# The benchmark of the Lambda handler against a bare asyncpg floor (bench/README.md).
# Included by the Makefile, which exports PYTHONPATH=functions:. and defines PY.
BENCH_ARGS ?=

.PHONY: bench

bench: setup pgbouncer ## benchmark the handler against a bare asyncpg floor (BENCH_ARGS="--quick --only cold")
	AWS_EC2_METADATA_DISABLED=true PYTHONPATH="$(CURDIR)/functions:$(CURDIR)" \
		$(PY) -m bench.run $(BENCH_ARGS)

STORM_ARGS ?=

.PHONY: storm

storm: setup pgbouncer ## the connection storm and exhaustion (bench/README.md; STORM_ARGS="--workers 8")
	AWS_EC2_METADATA_DISABLED=true PYTHONPATH="$(CURDIR)/functions:$(CURDIR)" \
		$(PY) -m bench.storm $(STORM_ARGS)
