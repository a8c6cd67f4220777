# infralog in a small image, for machines that reach a registry:
#
#   docker build -t infralog .
#   docker run -d --name infralog -p 8800:8800 -v infralog-data:/var/lib/infralog infralog
#
# Two stages: the official Rust image builds the release binary; a slim Debian
# runs it as an unprivileged user, with the event log on a volume. Where no
# registry can be reached (this project's CI machines), `Dockerfile.local` packages
# a binary built on the host instead (see docs/operations.md, "Docker image").

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin infralog

FROM debian:bookworm-slim
# curl only for the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/infralog --create-home infralog
COPY --from=build /src/target/release/infralog /usr/local/bin/infralog
USER infralog
WORKDIR /var/lib/infralog
VOLUME ["/var/lib/infralog"]
ENV INFRALOG_LISTEN=0.0.0.0:8800 \
    INFRALOG_DATA_DIR=/var/lib/infralog
EXPOSE 8800
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8800/version || exit 1
ENTRYPOINT ["infralog"]
CMD ["serve"]
