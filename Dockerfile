# Multi-stage build of claimline: librdkafka is compiled in (rdkafka's bundled build).
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake libssl-dev libsasl2-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY data data
COPY migrations migrations
COPY build.rs build.rs
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin claimline

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 libsasl2-2 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 claimline
COPY --from=build /src/target/release/claimline /usr/local/bin/claimline
USER 10001
# No transparent huge pages for this process, whatever the host's setting
# (see src/main.rs).
ENV MIMALLOC_ALLOW_THP=0
EXPOSE 9464 8080
ENTRYPOINT ["claimline"]
CMD ["run"]
