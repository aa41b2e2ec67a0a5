# flow-gitops sidecar image. Runs beside Node-RED in the Flow App's pod and shares its userDir.
# Node 22 + npm are included for dependency installs into that userDir.
FROM node:22-bookworm-slim AS node

FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin gitops
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sidecar ./sidecar
RUN pip install --no-cache-dir . && rm -rf /root/.cache
USER 10001
ENV FLOW_GITOPS_DATA_DIR=/var/lib/flow-gitops
VOLUME ["/var/lib/flow-gitops"]
ENTRYPOINT ["flow-gitops"]
CMD ["serve", "--config", "/etc/flow-gitops/config.yaml"]
