# The images of SaaSaparilla Notifications, from one multi-stage build:
#
#   docker build --target notifd   -t ghcr.io/saasaparilla/notifd:0.1.0 .
#   docker build --target operator -t ghcr.io/saasaparilla/notification-operator:0.1.0 .
#
# `just docker-build-all` builds both. Both run as the numeric non-root user
# 65532 and write nothing outside their volumes, so they run with a
# read-only root filesystem.

ARG RUST_VERSION=1.95
ARG VERSION=0.1.0

# ----------------------------------------------------------------- build

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
# The vendored C libraries: librdkafka builds with CMake and C++, OpenSSL
# with Perl and make. Not pinned: a Debian point release removes the old
# versions, while the suite (bookworm) already fixes what they are.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake g++ make perl \
    && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# What the dependencies are: the manifests and the lock file, as a recipe.
FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
# The dependencies alone, in a layer that a change to the project's own
# sources leaves cached.
RUN cargo chef cook --release --locked --recipe-path recipe.json -p dataplane -p operator
COPY . .
RUN cargo build --release --locked -p dataplane -p operator --bin notifd --bin notification-operator

# --------------------------------------------------------------- runtime

# Debian's trusted roots, for TLS to Kafka, PostgreSQL, Redis and the
# Kubernetes API, without apt in the images that run.
FROM debian:bookworm-slim AS certificates
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

FROM debian:bookworm-slim AS runtime
ARG VERSION
# Both binaries link only glibc.
COPY --from=certificates /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.vendor="SaaSaparilla" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/saasaparilla/notifications"

FROM runtime AS notifd
LABEL org.opencontainers.image.title="notifd" \
      org.opencontainers.image.description="SaaSaparilla Notifications: receiver, director, distributor, or the whole service standalone"
# standalone keeps its SQLite log and development credentials here, and
# refuses a data directory that others may read.
RUN mkdir -p /var/lib/notifd && chown 65532:65532 /var/lib/notifd && chmod 0700 /var/lib/notifd
COPY --from=build /src/target/release/notifd /usr/local/bin/notifd
# In a container every role listens on all addresses: the port is reached
# through the container's network, never its loopback.
ENV NOTIF_HTTP_ADDR=0.0.0.0:8080 \
    NOTIF_ADMIN_ADDR=0.0.0.0:9090 \
    NOTIF_DATA_DIR=/var/lib/notifd
VOLUME /var/lib/notifd
EXPOSE 8080 8082 9090
USER 65532:65532
ENTRYPOINT ["notifd"]
CMD ["standalone"]

FROM runtime AS operator
LABEL org.opencontainers.image.title="notification-operator" \
      org.opencontainers.image.description="SaaSaparilla Notifications: the operator that runs NotificationClusters"
COPY --from=build /src/target/release/notification-operator /usr/local/bin/notification-operator
EXPOSE 9090
USER 65532:65532
ENTRYPOINT ["notification-operator"]
