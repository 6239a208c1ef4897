# datatrust node / gateway image: slim, non-root, no build tools at run time.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY datatrust ./datatrust
COPY adapters ./adapters
COPY federation ./federation
COPY ingest ./ingest
COPY network ./network
COPY policies ./policies
COPY trust ./trust
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /var/lib/datatrust datatrust \
    && mkdir -p /var/lib/datatrust && chown datatrust /var/lib/datatrust
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
USER datatrust
EXPOSE 8000
ENTRYPOINT []
CMD ["datatrust", "--help"]
