# The meshplane control plane (and the demo's small apps, which are part of the package).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY meshplane ./meshplane
# /bootstraps: the demo's mesh-config writes the Envoys' bootstraps there (a volume that takes
# this directory's owner when first mounted); meshplane/demo/compose.py names the same uid.
RUN pip install --no-cache-dir . && useradd --system --uid 10001 meshplane \
    && mkdir /bootstraps && chown meshplane /bootstraps
USER meshplane
EXPOSE 8080 18000
ENTRYPOINT ["meshplane"]
CMD ["serve", "--api-host", "0.0.0.0", "--xds-host", "0.0.0.0"]
