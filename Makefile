# Developer and CI entry points for mcp-secure-remote. `make help` lists the targets.
# Every target is a thin wrapper around cargo or a script in scripts/, so each one can also be run by hand.

CARGO       ?= cargo
MUSL_TARGET := x86_64-unknown-linux-musl
MUSL_DIR    := target/$(MUSL_TARGET)/release
# bash for `set -o pipefail` (make test pipes cargo through tee).
SHELL       := bash

.DEFAULT_GOAL := help
.PHONY: help build release test oauth-peer fuzz lint fixtures musl scratch-test bench bench-pkcs11 demo interop dist test-cross clean
.PHONY: packaging-tools linux-dlopen wheels crate mcpb npm wheels-check mcpb-check npm-check release-check

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-13s %s\n", $$1, $$2 }'

build: ## Debug build of the library and every binary
	$(CARGO) build --all-targets

release: ## Optimised build for this machine (see [profile.release] in Cargo.toml)
	$(CARGO) build --release

# Plain `cargo test` (not nextest) on purpose: its "test result: ok. N passed" lines are the summary CI
# reads, and the last line adds them up ("total: N passed, N failed, N skipped"). --all-targets runs
# unit, integration and example tests; doc tests are not run (the crate has none: its only code blocks
# are `text` diagrams).
test: oauth-peer ## Run every test (unit, integration, examples); loopback only, no network
	@mkdir -p target
	set -o pipefail; $(CARGO) test --workspace --all-targets 2>&1 | tee target/test-output.txt
	@awk '/^test result:/ { p += $$4; f += $$6; s += $$8 } \
	  END { printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.txt

# The OAuth tests' authorization server (npm oidc-provider, pinned by tests/peers/oauth/package-lock.json)
# goes into the git-ignored .peers/oauth; the script does nothing when it is already there.
oauth-peer: ## Install the OAuth test peer's npm packages into .peers/oauth (needs node and npm)
	@bash scripts/peers/install-oauth.sh

fuzz: ## Long property-based fuzzing of the SSE parser and the stdin framer (make test runs a short pass)
	PROPTEST_CASES=$${PROPTEST_CASES:-200000} $(CARGO) test --release --lib -- sse:: bridge::stdin::

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --workspace --all-targets --no-default-features -- -D warnings

fixtures: ## Generate the test certificates and keys in fixtures/ (needs the openssl CLI)
	scripts/make-fixtures.sh

# The binaries are static (musl, no libc at run time) so they can ship in a FROM-scratch image.
# Needs `rustup target add x86_64-unknown-linux-musl` and a musl C compiler for ring (`musl-tools`).
# Without the pkcs11 feature: a static binary has no dynamic loader to load a PKCS#11 module with.
musl: ## Static musl release build of every binary; prints their sizes and `file` output
	$(CARGO) build --release --bins --target $(MUSL_TARGET) --no-default-features
	@for bin in $(MUSL_DIR)/*; do \
	  [ -f "$$bin" ] && [ -x "$$bin" ] || continue; \
	  printf '%-55s %9s bytes\n' "$$bin" "$$(stat -c %s "$$bin")"; \
	  file "$$bin"; \
	  if file "$$bin" | grep -q 'dynamically linked'; then echo "error: $$bin is not static" >&2; exit 1; fi; \
	done

scratch-test: musl ## Run the static binary in an empty root (no libc, no /etc/ssl), as FROM scratch would
	scripts/scratch-test.sh $(MUSL_DIR)/mcp-secure-remote

# The static musl build too, when this machine can build it (`make musl`'s needs): the in-flight
# memory rows measure both builds in the same run. Without it those rows say why.
bench: ## Bridge vs direct client: latency, concurrency, 5 MB, RSS, exit; hostile servers (BENCH_ONLY=engine|classic|inflight|keepalive|oauth)
	$(CARGO) build --release --bins
	@if rustup target list --installed 2>/dev/null | grep -qx $(MUSL_TARGET) && command -v musl-gcc >/dev/null; then \
	  echo "$(CARGO) build --release --bins --target $(MUSL_TARGET) --no-default-features"; \
	  $(CARGO) build --release --bins --target $(MUSL_TARGET) --no-default-features; \
	else \
	  echo "bench: no $(MUSL_TARGET) target or musl-gcc here: the static build is not measured"; \
	fi
	$(CARGO) run --release --example bench

bench-pkcs11: ## Handshake time: client key on a SoftHSM2 token vs in a file (needs softhsm2, opensc)
	$(CARGO) run --release --example pkcs11_bench

demo: ## Local endpoint that demands client certificates, the test client, one tools/call through the bridge
	bash scripts/demo.sh

interop: ## The bridge against the reference MCP servers, clients and conformance suite (installs into .interop/)
	bash scripts/interop.sh

# Cross builds need the pinned toolchain of scripts/cross/tools.sh (`.ci/run` installs it).
dist: ## Release archives: Linux x86_64/aarch64 static and glibc 2.17, x86_64 dynamic musl, Windows x86_64, macOS (on a Mac)
	bash scripts/dist.sh

test-cross: oauth-peer ## macOS compile check; Windows tests under wine, arm64 tests under qemu-user, a real session with each
	bash scripts/test-cross.sh

# --- Release artifacts (issue 14). Each takes the binaries in target/<triple>/release/: `make musl`
# builds the static x86_64 Linux ones (the bundle's), `make linux-dlopen` the Linux builds that
# can load a PKCS#11 module (the wheels' and npm's), `make dist` every target this machine can build;
# a target that is not built is skipped with the reason. Pinned tools (maturin, uv, ziglang, mcpb) go
# into .packaging/.
PACKAGING_TEST = node --test --test-reporter=spec
# As scripts/cross/tools.sh sets them (cross_install puts the arm64 musl root there).
QEMU_AARCH64 ?= /usr/bin/qemu-aarch64
ARM64_MUSL_ROOT ?= $(CURDIR)/.cross/musl-arm64
ENDPOINT       = target/release/examples/mtls_endpoint

packaging-tools:
	@bash scripts/packaging/install.sh

$(ENDPOINT): FORCE
	$(CARGO) build --release --quiet --example mtls_endpoint

FORCE:

# cargo does nothing when `make dist` built them already. Needs the cross toolchain (zig).
linux-dlopen: ## The Linux builds with PKCS#11 (x86_64, aarch64): glibc 2.17 (zig; prints GLIBC_ versions), dynamic musl
	bash scripts/dist.sh x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl-dynamic \
	  aarch64-unknown-linux-musl-dynamic

wheels: linux-dlopen packaging-tools ## PyPI wheels (maturin, both binaries) per built target + the sdist, into dist/
	bash scripts/packaging/wheels.sh

crate: ## crates.io package into dist/: cargo publish --dry-run, include list, no private keys
	bash scripts/packaging/crate.sh

mcpb: musl packaging-tools ## Claude Desktop bundle dist/mcp-secure-remote-<version>.mcpb (mcpb validate + pack)
	bash scripts/packaging/mcpb.sh

npm: linux-dlopen ## npm tarballs in dist/npm/: the npx launcher and one package per built platform
	bash scripts/packaging/npm.sh

wheels-check: wheels $(ENDPOINT) ## Install the Linux wheel with uv; real mTLS sessions (SoftHSM key too) through uvx; sdist builds
	WHEEL=$$(ls dist/mcp_secure_remote-*-py3-none-manylinux*_x86_64*.whl) UV=$(CURDIR)/.packaging/venv/bin/uv \
	  MUSL_WHEEL=$$(ls dist/mcp_secure_remote-*-py3-none-musllinux*_x86_64.whl) \
	  MUSL_ARM64_WHEEL=$$(ls dist/mcp_secure_remote-*-py3-none-musllinux*_aarch64.whl) \
	  QEMU_AARCH64=$(QEMU_AARCH64) ARM64_MUSL_ROOT=$(ARM64_MUSL_ROOT) \
	  ZIG_CC="$(CURDIR)/.cross/venv/bin/python3 -m ziglang cc" \
	  SDIST=$$(ls dist/mcp_secure_remote-*.tar.gz) BINARIES=target/x86_64-unknown-linux-gnu/release \
	  $(PACKAGING_TEST) packaging/test/wheel.test.mjs

mcpb-check: mcpb $(ENDPOINT) ## Run the unpacked bundle as Claude Desktop would (PEM, PKCS#12, empty fields)
	MCPB_BUNDLE=$$(ls dist/mcp-secure-remote-*.mcpb) MCPB_HOME=$(CURDIR)/.packaging \
	  $(PACKAGING_TEST) packaging/test/mcpb.test.mjs

npm-check: npm $(ENDPOINT) ## npx --package with the tarballs: sessions (SoftHSM key too), signals, exit codes, musl, missing platform
	NPM_TARBALLS=$(CURDIR)/dist/npm $(PACKAGING_TEST) packaging/test/npm.test.mjs

# The one command before publishing (uploads are not part of it). `make dist` first, so that every
# cross target's binaries are fresh when the artifacts take them.
release-check: dist wheels-check crate mcpb-check npm-check ## Build every artifact above into dist/, verify each
	python3 scripts/packaging/no-keys.py dist/*.whl dist/*.tar.gz dist/*.crate dist/*.mcpb dist/npm/*.tgz
	@echo "release-check: artifacts in dist/:"
	@find dist -type f \( -name '*.whl' -o -name '*.tar.gz' -o -name '*.zip' -o -name '*.crate' -o -name '*.mcpb' -o -name '*.tgz' \) \
	  -printf '%10s  %p\n' | sort -k2

clean: ## Remove build output
	$(CARGO) clean
	rm -rf dist
