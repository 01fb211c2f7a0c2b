# backupctl — two commands on a fresh Debian 12 machine:
#   make demo   install everything, then run a real backup → verify → report demo
#   make test   install everything, then lint (ruff, mypy --strict, lint-imports) and run the whole suite

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
APT_PACKAGES := restic openssh-server openssh-client rclone prometheus postgresql sqlite3 \
	fonts-ipafont-gothic poppler-utils p7zip-full tmux e2fsprogs systemd python3-venv \
	ca-certificates iptables chromium

# The unprivileged system user that runs the throwaway PostgreSQL of database restore tests
# (a dump is hostile input: docs/install.md#the-restore-user); restore_user's default.
RESTORE_USER ?= backupctl-restore

.PHONY: install apt restore-user venv demo test test-fast lint clean

install: apt restore-user venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

restore-user:
	@if ! getent passwd $(RESTORE_USER) >/dev/null; then \
	  echo "creating the system user $(RESTORE_USER) (runs the restore tests' PostgreSQL)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO useradd --system --no-create-home --shell /usr/sbin/nologin $(RESTORE_USER); \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

demo: install
	$(VENV)/bin/python demo/run_demo.py

# The suite mostly waits on real servers (sshd, restic, PostgreSQL): four workers keep two
# cores busy; each worker takes whole test files (module fixtures start once). Files go out
# in collection order, integration before unit (xdist would otherwise hand out the files
# with the most tests first: the many quick unit files, leaving the few-test heavy
# integration files for the end, where one of them runs alone on an idle machine).
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: install lint
	$(VENV)/bin/pytest -q $(XDIST)

test-fast: install
	$(VENV)/bin/pytest -q $(XDIST) -m "not slow"

lint: venv
	$(VENV)/bin/ruff check backupctl tests bench tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) demo/work .pytest_cache .mypy_cache .ruff_cache
