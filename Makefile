# The two commands of the Quick start. Both set up what they need first.
.PHONY: run test setup setup-test bench clean

ARGS ?=

run: setup
	.venv/bin/nettop $(ARGS)

test: setup-test
	.venv/bin/python -m pytest -q $(ARGS)

setup:
	@scripts/setup-host.sh

setup-test:
	@scripts/setup-host.sh --test

clean:
	rm -rf .venv .pytest_cache
