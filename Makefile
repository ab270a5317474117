# Two entry points (see README): `make demo` and `make test`. Everything else is a helper.
# Caches live outside the clone so CI's fresh checkout reuses them on a warm machine.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CACHE_DIR ?= $(HOME)/.cache/llama-stack-operator
export LLSD_CACHE_DIR := $(CACHE_DIR)
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
export CARGO_TERM_COLOR ?= never
OPERATOR := $(CARGO_TARGET_DIR)/debug/llama-stack-operator
LLVM_COV_VERSION := 0.6.21
# One `make test` run's operator logs and start time, for its last step (secret-scan).
TEST_RUN_DIR := $(CACHE_DIR)/test-run
TEST_LOG_DIR := $(TEST_RUN_DIR)/operator-logs
# Well below what a whole run gives (180 values, 8,424 writes, 78 logs at 5fee649): fewer means
# the scan looked at too little to prove anything (an audit policy without bodies, logs elsewhere).
SCAN_MIN_VALUES ?= 40
SCAN_MIN_WRITES ?= 1000
SCAN_MIN_LOGS ?= 40
COVERAGE_MIN := 80

.PHONY: demo demo-down test wasm-target toolchain-tests node-tests playground playground-tests bench-playground acme-plugin toolchain build lint unit coverage golden crds python-tests cluster-tests fuzz chaos bench bench-cluster bench-upstream configs-check clean-cache secret-scan

## demo: a local control plane with a real node, the operator, a sample LlamaStackDistribution
## reconciled to Ready (the real llama-stack server passing its probes), what was generated,
## and the server answering (tests/node/demo).
demo: build
	LLSD_OPERATOR_BIN=$(OPERATOR) tests/node/demo

## demo-down: stops the operator, the node and the control plane `make demo` left running.
demo-down:
	tests/node/demo-down

## test: every test: format, lint, engine unit/golden/property tests with coverage, the CLI,
## the real llama-stack validation and server start, the real control plane, the real node.
## The last step scans the run's audit logs and operator logs for Secret values (secret-scan).
test: toolchain lint coverage
	@rm -rf $(TEST_RUN_DIR) && mkdir -p $(TEST_LOG_DIR) && date -u +%Y-%m-%dT%H:%M:%SZ >$(TEST_RUN_DIR)/started
	@echo "==> operator crate tests (plugin host, component, hostile and vendor plugins)"
	cargo test -p llama-stack-operator
	cargo test -p acme-llama-stack-plugin
	@$(MAKE) --no-print-directory toolchain-tests
	@$(MAKE) --no-print-directory python-tests
	@$(MAKE) --no-print-directory playground-tests
	@LLSD_TEST_LOG_DIR=$(TEST_LOG_DIR) $(MAKE) --no-print-directory cluster-tests
	@LLSD_TEST_LOG_DIR=$(TEST_LOG_DIR) $(MAKE) --no-print-directory node-tests
	@$(MAKE) --no-print-directory secret-scan

## secret-scan: no value of a Secret written since `make test` started (both control planes'
## audit logs: tests/cluster/up logs every write's body) in any other object written, nor in
## any operator log of the run (at trace level). Issue 19 §3; tests/support/src/secret_scan.rs.
secret-scan:
	@echo "==> the run-wide Secret scan: audit logs of both control planes, the operators' logs"
	cargo run -q -p llsd-test-support --example secret-scan -- \
		--since "$$(cat $(TEST_RUN_DIR)/started 2>/dev/null || true)" \
		--audit-dir $(CACHE_DIR)/cluster/logs --audit-dir $(CACHE_DIR)/node/cluster/logs \
		--logs $(TEST_LOG_DIR) --logs $(CACHE_DIR)/node/cluster/logs/operator-demo.log \
		--min-values $(SCAN_MIN_VALUES) --min-writes $(SCAN_MIN_WRITES) --min-logs $(SCAN_MIN_LOGS)

## wasm-target: the wasm32-wasip2 target every operator build needs (host/build.rs compiles
## the embedded plugin with it). A fresh rustup has only the host target.
wasm-target:
	@command -v cargo >/dev/null || { echo "ERROR: cargo not found: install Rust (rustup)"; exit 1; }
	@command -v rustup >/dev/null || { echo "ERROR: rustup not found: it installs the wasm32-wasip2 target the operator's build needs"; exit 1; }
	@rustup target list --installed | grep -qx wasm32-wasip2 || { \
		echo "==> installing the rust target wasm32-wasip2 (the embedded plugin is built for it; first run only)"; \
		rustup target add wasm32-wasip2; }

toolchain: wasm-target
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "ERROR: node and npm not found: the playground engine is built and tested with them"; exit 1; }
	@command -v openssl >/dev/null || { echo "ERROR: openssl not found: the security tests use openssl s_client as the webhook server's other side"; exit 1; }
	@echo "==> rust components (llvm-tools for coverage)"
	@rustup component list --installed | grep -q '^llvm-tools' || rustup component add llvm-tools-preview
	@command -v cargo-llvm-cov >/dev/null && cargo llvm-cov --version | grep -q "$(LLVM_COV_VERSION)" || { \
		echo "==> installing cargo-llvm-cov $(LLVM_COV_VERSION) (first run only, ~2 min)"; \
		cargo install cargo-llvm-cov --locked --version $(LLVM_COV_VERSION); }

## toolchain-tests: `make build` (what `make demo` runs first) on a scratch rustup without the
## wasm32-wasip2 target installs it and builds the plugin with it (issue 16).
toolchain-tests:
	@echo "==> make build on a toolchain without the wasm32-wasip2 target (a fresh machine's rustup)"
	tests/toolchain/fresh-rustup.sh
	tests/toolchain/apt-stdout.sh

build: wasm-target
	@echo "==> building the operator (a cold first build, with the embedded plugin in release, takes ~15 min on 2 cores)"
	cargo build -p llama-stack-operator

lint: wasm-target
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --features llsd-test-support/real-node -- -D warnings
	cargo clippy --target wasm32-wasip2 -p llama-stack-config -p acme-llama-stack-plugin -p hostile-plugin -- -D warnings

## coverage: the engine's tests (unit, golden, properties) under llvm-cov; fails below the floor.
coverage:
	@echo "==> engine tests with line coverage (floor $(COVERAGE_MIN)%)"
	cargo llvm-cov -p llama-stack-config --fail-under-lines $(COVERAGE_MIN) --summary-only

## crds: rewrite deploy/crd/ from the API types (the tests fail while it is stale).
crds: wasm-target
	cargo run -q -p llama-stack-operator -- crds > deploy/crd/llamastackdistributions.llamastack.io.yaml
	@$(MAKE) --no-print-directory api-reference

.PHONY: api-reference release-manifest

## api-reference: rewrite docs/api-reference.md from the CRD schema (the tests fail while it is stale).
api-reference: wasm-target
	cargo run -q -p llama-stack-operator -- api-reference > docs/api-reference.md.tmp
	mv -f docs/api-reference.md.tmp docs/api-reference.md

## release-manifest: rewrite deploy/release/operator.yaml, the single-file install
## (`kubectl kustomize deploy/default` with the test cluster's kubectl, built on first use).
release-manifest:
	source tests/cluster/build.sh && llsd_build kubectl && kubectl="$$(llsd_bin kubectl)" && \
	{ printf '%s\n' \
		'# The single-file install of llama-stack-operator: the output of' \
		'# `kubectl kustomize deploy/default`, written by `make release-manifest`. Do not edit' \
		'# it by hand: change deploy/ and run `make release-manifest` (a test fails while this' \
		'# file differs from the kustomize build).' \
		'#' \
		'#   kubectl apply --server-side -f deploy/release/operator.yaml' \
		'#' \
		'# (--server-side: the CRD is larger than the 256 KiB last-applied annotation that a' \
		'# client-side apply would store.)'; \
	  "$$kubectl" kustomize deploy/default; } > deploy/release/operator.yaml.tmp
	mv -f deploy/release/operator.yaml.tmp deploy/release/operator.yaml

## golden: rewrite tests/golden/*/ expected files from the engine; review the diff before committing.
golden:
	LLSD_UPDATE_GOLDEN=1 cargo test -p llama-stack-config --test golden

python-tests: build
	@echo "==> real llama-stack 0.7.3: validate golden configs, start a server from a generated config"
	LLSD_OPERATOR_BIN=$(OPERATOR) tests/python/run-tests.sh

## playground: build the browser playground into playground/dist (npm ci from the lockfile on
## first use); `llama-stack-operator playground` then serves it on http://127.0.0.1:8380/.
playground: wasm-target
	@echo "==> playground: the default plugin, transpiled by jco, and the page (first run: npm ci)"
	playground/build.sh

## playground-tests: the page's modules (node --test); the engine in JavaScript gives exactly
## what `generate` prints; a component transpiled in JavaScript itself works (the vendor-plugin
## path); the page in headless Chromium, served by `llama-stack-operator playground`, checked
## against `generate`/`convert` with the acme vendor plugin loaded from disk (issue 10).
playground-tests: build playground
	@echo "==> playground tests: unit, engine against the CLI, headless Chromium (installs Debian's chromium on first use)"
	tests/browser/install.sh
	@$(MAKE) --no-print-directory acme-plugin
	node --test playground/test/unit.mjs
	LLSD_OPERATOR_BIN=$(OPERATOR) node playground/test/node-smoke.mjs
	node playground/test/transpile-in-js.mjs
	LLSD_OPERATOR_BIN=$(OPERATOR) LLSD_ACME_PLUGIN=$(ACME_PLUGIN) \
		node playground/test/browser.mjs

cluster-tests:
	@echo "==> real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)"
	tests/cluster/run-tests.sh

## node-tests: the samples, a rollout and `make demo` on the real node (tests/node): real
## llama-stack servers in real pods. First run: kubelet, kube-proxy, CoreDNS and the images
## are built (~25 min on 2 cores).
node-tests:
	@echo "==> real node (containerd, kubelet, kube-proxy, CoreDNS) and the real llama-stack server in its pods"
	tests/node/run-tests.sh

## fuzz: the fuzz targets (engine: spec, base configs, provider metadata; webhook bodies; plugin
## loader) with FUZZ_CASES inputs each (issue 19; `make test` runs a short run). The test
## profile: dependencies (wasmtime, serde, axum) are optimized there, and it skips a release build.
FUZZ_CASES ?= 1000000
fuzz: wasm-target
	@echo "==> fuzz targets, $(FUZZ_CASES) inputs each (the engine's first, then the webhooks' and the plugin loader's)"
	LLSD_FUZZ_CASES=$(FUZZ_CASES) cargo test -p llama-stack-config --test fuzz
	LLSD_FUZZ_CASES=$(FUZZ_CASES) cargo test -p llama-stack-operator --test fuzz_webhooks --test fuzz_plugin_loader

## chaos: the chaos suite (tests/chaos) at the note's size: 100 CRs and 50 SIGKILLs of the
## operator, the API server and etcd restarted, the registry down, the leader killed, the
## webhooks down. `make test` runs it at CI size (40 CRs, 20 SIGKILLs). Figures go to
## $(CACHE_DIR)/chaos/last-run.txt.
chaos: build
	@echo "==> chaos suite at full size (100 CRs, 50 SIGKILLs; ~6 min)"
	@rm -f $(CACHE_DIR)/chaos/last-run.txt
	LLSD_CHAOS_CRS=100 LLSD_CHAOS_KILLS=50 tests/cluster/run-tests.sh --test chaos
	@cat $(CACHE_DIR)/chaos/last-run.txt

bench: wasm-target
	cargo bench -p llama-stack-config --bench generate
	cargo bench -p llama-stack-operator --bench plugin

## bench-cluster: controller (start-up, apply->Ready p50/p99, 200 CRs), load (1,000 CRs, 10 min
## of churn with the operator's memory; issue 19) and webhook latency
## (oha, 50 parallel) on the local control plane; registry reads, cold and cached, on a
## loopback registry; release builds.
bench-cluster: wasm-target
	tests/bench/controller.sh
	tests/bench/load.sh
	tests/bench/webhook-latency.sh
	tests/bench/oci.sh

## bench-upstream: the upstream Go operator (built from the Go module proxy at a pinned commit;
## LLSD_UPSTREAM_SRC=<git dir> where the proxy refuses the module)
## and ours, alternated on one local control plane of their own with the same v1alpha1
## workload: start-up, apply->Deployment/Ready, 200 at once, RSS, CPU, API writes (audit log),
## idle, restart; a table with ratios, also in ~/.cache/llama-stack-operator/bench-upstream/
## last-run.md. ~30 min; LLSD_BENCH_* env shrinks it (tests/bench/README.md).
bench-upstream: wasm-target
	tests/bench/upstream.sh

## acme-plugin: the example vendor plugin, built as host/tests/plugin_support builds it (same
## target dir and flags, so the two share one artefact), for the playground's tests.
ACME_PLUGIN := $(CARGO_TARGET_DIR)/test-plugins/wasm32-wasip2/release/acme_llama_stack_plugin.wasm
acme-plugin: wasm-target
	env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS -u RUSTC_WRAPPER \
		cargo build --release --target wasm32-wasip2 -p acme-llama-stack-plugin --target-dir $(CARGO_TARGET_DIR)/test-plugins

## bench-playground: the playground in headless Chromium: cold load to first output (10 fresh
## contexts), one edit to updated output (60 edits), vendor-plugin load time.
bench-playground: build playground
	tests/browser/install.sh
	@$(MAKE) --no-print-directory acme-plugin
	LLSD_OPERATOR_BIN=$(OPERATOR) LLSD_ACME_PLUGIN=$(ACME_PLUGIN) node playground/test/bench.mjs

## configs-check: regenerate configs/ from the pinned wheels and fail on drift (slow: installs wheels).
configs-check:
	python3.12 configs/regenerate.py --check

clean-cache:
	rm -rf $(CACHE_DIR)/target
