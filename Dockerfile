# The battles service image: `docker compose up -d` builds it (docker-compose.yml).
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin battles

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/battles /usr/local/bin/battles
# The bundled sample day, for `battles run` without brokers and `battles backfill --sample`.
COPY --from=build /src/data /opt/battles/data
WORKDIR /opt/battles
ENTRYPOINT ["battles"]
CMD ["run"]
