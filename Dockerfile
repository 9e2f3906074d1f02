# syntax=docker/dockerfile:1
# One image, two binaries:
#   hippo-api     (default entrypoint) standalone: API + in-process workers, SQLite in the data dir;
#                 cluster (HIPPO_REDIS_URL set): API only, jobs go to Redis.
#   hippo-worker  cluster only: takes deploy jobs from Redis; docker-compose.yml sets its
#                 entrypoint to ["/usr/bin/tini", "--", "/usr/local/bin/hippo-worker"].
# Needs BuildKit (the default builder of current Docker) for the cache mounts.

# The web console (console/): built here, embedded into hippo-api below (HIPPO_CONSOLE_DIST
# tells api/build.rs to take these files instead of running npm itself).
FROM node:20-bookworm-slim AS console
WORKDIR /console
COPY console/package.json console/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY console/ ./
RUN npm run build -- --outDir /console-dist

FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
COPY --from=console /console-dist /console-dist
ENV HIPPO_CONSOLE_DIST=/console-dist
# target/ lives in a cache mount, which is not part of the image: copy the binaries out in the
# same step. sharing=locked: two builds at once would clobber each other's rlibs.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,id=hippo-target,sharing=locked,target=/src/target \
    cargo build --release --locked -p hippo-api -p hippo-worker \
    && mkdir -p /out \
    && cp target/release/hippo-api target/release/hippo-worker /out/

FROM debian:bookworm-slim
# ca-certificates libssl3: HTTPS Git and TLS. bash: local hooks run with `bash -e`.
# git openssh-client curl: for users' after_checkout hooks (curl also for the health checks).
# procps: /bin/kill, used to end a timed-out hook's process group. tini: PID 1, reaps what
# hooks leave behind and forwards SIGTERM. bubblewrap (+ util-linux's setpriv and prlimit): the
# sandbox of release-server hooks; the container must allow it (docs/security.md).
RUN apt-get update && apt-get install -y --no-install-recommends \
        ca-certificates libssl3 bash coreutils curl git openssh-client procps tini \
        bubblewrap util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/hippo --create-home --shell /usr/sbin/nologin hippo \
    && mkdir -p /var/lib/hippo/data && chown hippo:hippo /var/lib/hippo/data
COPY --from=build /out/hippo-api /out/hippo-worker /usr/local/bin/
USER hippo
WORKDIR /var/lib/hippo
# HIPPO_METRICS_LISTEN is read by hippo-worker only (the API serves /metrics on HIPPO_LISTEN).
ENV HIPPO_LISTEN=0.0.0.0:8080 \
    HIPPO_METRICS_LISTEN=0.0.0.0:9091 \
    HIPPO_DATA_DIR=/var/lib/hippo/data
EXPOSE 8080 9091
# For hippo-api; the worker service in docker-compose.yml sets its own.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/hippo-api"]
