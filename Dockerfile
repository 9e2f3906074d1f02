# Multi-stage build of hippo-api (standalone mode: API + in-process workers).
# Cluster mode (separate hippo-worker processes, PostgreSQL, Redis) comes with issue 3.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hippo-api

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 bash coreutils curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/hippo --create-home hippo
COPY --from=build /src/target/release/hippo-api /usr/local/bin/hippo-api
USER hippo
WORKDIR /var/lib/hippo
ENV HIPPO_LISTEN=0.0.0.0:8080 HIPPO_DATA_DIR=/var/lib/hippo/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/hippo-api"]
