# The two commands of the Quick start. Both set up what they need first.
.PHONY: run test test-kernels setup setup-test bench clean

ARGS ?=
BENCH_ARGS ?=

run: setup
	.venv/bin/nettop $(ARGS)

# Then the kernel matrix (tests/vm/: Debian's stock kernel under qemu), unless ARGS picks
# tests, NETTOP_SKIP_VM=1, or this machine cannot run it (it says why and moves on).
test: setup-test
	.venv/bin/python -m pytest -q $(ARGS)
	@if [ -z "$(ARGS)" ]; then tests/vm/run.sh --if-possible; fi

test-kernels: setup-test
	@tests/vm/run.sh

setup:
	@scripts/setup-host.sh

setup-test:
	@scripts/setup-host.sh --test

# Root; about 50 minutes (BENCH_ARGS=--quick: about 6). Writes docs/benchmarks.md and bench/results.json.
bench: setup-test
	@bench/setup.sh
	.venv/bin/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf .venv .pytest_cache
