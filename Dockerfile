# Guildhall in a container: build the release binary, then run it on a slim Debian as a
# non-root user. `.ci/run` builds the same release with the same command, without Docker, so
# this file cannot drift from a build that works.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin guildhall

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/guildhall --create-home guildhall
COPY --from=build /src/target/release/guildhall /usr/local/bin/guildhall
USER guildhall
WORKDIR /var/lib/guildhall
# SQLite in the container's volume unless GUILDHALL_DATABASE_URL points at PostgreSQL.
# Metrics listen on their own port: publish 9464 only to the network your Prometheus scrapes.
ENV GUILDHALL_BIND=0.0.0.0:8080 \
    GUILDHALL_METRICS_BIND=0.0.0.0:9464 \
    GUILDHALL_DATABASE_URL=sqlite:///var/lib/guildhall/guildhall.db?mode=rwc \
    GUILDHALL_LOG_FORMAT=json
VOLUME ["/var/lib/guildhall"]
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["guildhall"]
CMD ["serve"]
