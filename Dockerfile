# datatrust image: every datatrust process of a deployment (node, gateway, identity server,
# portal, MQTT subscriber) runs from it, with the command Compose gives. Slim, non-root,
# no build tools at run time. Build: docker build -t datatrust:0.1.0 .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
# Every folder pyproject.toml's package-dir installs (tests/test_compose.py checks the list).
COPY datatrust ./datatrust
COPY adapters ./adapters
COPY federation ./federation
COPY ingest ./ingest
COPY network ./network
COPY policies ./policies
COPY trust ./trust
COPY web ./web
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# uid/gid 10001: chown the key files in deploy/secrets to it (docs/operations.md). keys/ and
# policies/ exist in the image so a fresh named volume starts with them owned by datatrust:
# Compose mounts secret files inside keys/, and the node still makes its own keys beside them.
RUN groupadd --system --gid 10001 datatrust \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/datatrust \
        --shell /usr/sbin/nologin datatrust \
    && mkdir -p /var/lib/datatrust/keys /var/lib/datatrust/policies /etc/datatrust \
    && chown -R datatrust:datatrust /var/lib/datatrust
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY deploy/healthcheck.py /usr/local/lib/datatrust/healthcheck.py
USER 10001:10001
WORKDIR /var/lib/datatrust
# Every HTTP service listens on 8000 in its container (the identity server on 8404: its
# issuer URL is the same inside and outside Compose); Compose overrides the health check per
# service with its own URL.
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "/usr/local/lib/datatrust/healthcheck.py", "http://127.0.0.1:8000/healthz"]
CMD ["datatrust", "--help"]
