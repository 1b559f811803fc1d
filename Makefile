# Phoenix — the two commands: `make demo` and `make test`. Both do all set-up on a fresh
# Debian 12 machine as root (Debian packages, virtualenv, the local stack) and are idempotent.

VENV      := .venv
PHOENIX   := $(VENV)/bin/phoenix
SHELL     := /bin/bash

.PHONY: install demo test unit lint stack-up stack-down bench clean

install:
	@infra/local/bootstrap.sh $(VENV)

demo: install
	$(PHOENIX) demo

test: install
	@infra/local/run-tests.sh $(VENV)

# The fast tier: pure code, no root, no stack, no Prefect server (seconds), then the linters.
unit: install
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit
	@$(MAKE) --no-print-directory lint

# The core, storage, runtime and anonymization are formatted and type-checked (mypy's files: pyproject.toml).
FORMATTED := phoenix/config.py phoenix/db.py phoenix/errors.py phoenix/locks.py phoenix/names.py phoenix/proc.py phoenix/sealed.py \
             tasks/storage tasks/runtime anonymization

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check $(FORMATTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

stack-up: install
	$(PHOENIX) stack up

stack-down:
	-$(PHOENIX) stack down

bench: install
	@for b in bench/*.py; do echo "== $$b (--quick)"; $(VENV)/bin/python $$b --quick || exit 1; done

clean: stack-down
	rm -rf .phoenix .phoenix-test
