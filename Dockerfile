# syntax=docker/dockerfile:1
# loginflow container image: a Debian 12 build stage and a slim Debian 12 runtime stage.
#   docker build -t loginflow:0.1.0 .
#   docker run --rm -p 8080:8080 -e LOGINFLOW_BROKERS=kafka:9092 loginflow:0.1.0
# Configuration is by environment (every `run` flag reads LOGINFLOW_<FLAG>; LOGINFLOW_X holds
# librdkafka properties k=v separated by `;` or newlines), or by arguments after the image name
# (`docker run loginflow:0.1.0 run --workers 4`). Secrets: mount a properties file and set
# LOGINFLOW_KAFKA_CONFIG to its path (docs/OPERATIONS.md, "Security").
# A test (make test, label e2e: deploy.dockerfile) checks the structure of this file.

# ---- build ---------------------------------------------------------------------------------
FROM debian:12 AS build
# The build dependencies are exactly the `build` group of scripts/packages.txt, installed by
# the same script that developers and CI use: no second list here.
COPY scripts/install-deps.sh scripts/packages.txt /src/scripts/
RUN /src/scripts/install-deps.sh build \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . /src
RUN cmake --preset release -DLOGINFLOW_BUILD_BENCH=OFF \
    && cmake --build --preset release --parallel "$(nproc)" \
    && cmake --install build/release --prefix /opt/loginflow --strip \
    && /opt/loginflow/bin/loginflow --version

# ---- runtime -------------------------------------------------------------------------------
FROM debian:12-slim AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="loginflow" \
      org.opencontainers.image.description="Kafka stream processor for user-login events" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:12-slim"
# Only the shared libraries the binary links (checked against `ldd` by the test
# deploy.dockerfile), and CA certificates for TLS to the brokers (security.protocol=SSL).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        libfmt9 \
        libprometheus-cpp-core1.0 \
        librdkafka1 \
        libspdlog1.10 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 loginflow \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin loginflow
COPY --from=build /opt/loginflow/bin/loginflow /usr/local/bin/loginflow
# A numeric user, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENV LOGINFLOW_HTTP_ADDRESS=0.0.0.0 \
    LOGINFLOW_HTTP_PORT=8080 \
    LOGINFLOW_LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
# /healthz over bash's /dev/tcp: the slim image has bash but no curl or wget, and adding one
# would add a package (and its CVEs) for a single GET.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${LOGINFLOW_HTTP_PORT:-8080} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r status <&3 && [[ $status == HTTP/1.?' 200'* ]]"]
ENTRYPOINT ["loginflow"]
CMD ["run"]
