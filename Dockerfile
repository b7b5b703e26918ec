# The meshplane control plane (and the demo's small apps, which are part of the package).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY meshplane ./meshplane
RUN pip install --no-cache-dir . && useradd --system --uid 10001 meshplane
USER meshplane
EXPOSE 8080 18000
ENTRYPOINT ["meshplane"]
CMD ["serve", "--api-host", "0.0.0.0", "--xds-host", "0.0.0.0"]
