# syntax=docker/dockerfile:1
# flow-gitops sidecar image. It runs beside Node-RED in the Flow App's pod (or compose
# project) and shares Node-RED's userDir, where it installs missing node modules with npm.
#
#   docker build -t flow-gitops:0.1.0 .                             # Node 22 (the default)
#   docker build -t flow-gitops:0.1.0 --build-arg NODE_MAJOR=24 .   # match nodered/node-red:5.x (Node 24)
#
# Build the image with the Node.js major the Flow App runs: npm compiles native modules
# for the Node.js that runs it. Nothing secret is baked in: configuration comes from
# /etc/flow-gitops/config.yaml and FLOW_GITOPS_* variables, credentials from a mounted
# secret directory (docs/kubernetes.md, docs/compose.md).
ARG NODE_MAJOR=22
ARG PYTHON_VERSION=3.11

# --- Node.js + npm, and the editor plugin packed as an npm tarball ------------------
FROM node:${NODE_MAJOR}-bookworm-slim AS node
WORKDIR /src
COPY editor_plugin/ ./editor_plugin/
RUN mkdir /plugin \
 && npm pack ./editor_plugin --pack-destination /plugin --no-update-notifier --loglevel=error \
 && mv /plugin/node-red-contrib-flow-gitops-*.tgz /plugin/node-red-contrib-flow-gitops.tgz

# --- the sidecar as a wheel ----------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY sidecar/ ./sidecar/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# --- the runtime image -----------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
LABEL org.opencontainers.image.title="flow-gitops" \
      org.opencontainers.image.description="GitOps sidecar for Node-RED Flow Apps" \
      org.opencontainers.image.licenses="Apache-2.0"

# git and ssh for fetching; Debian's versions are what a bookworm image gets.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
COPY --from=node /plugin/node-red-contrib-flow-gitops.tgz /usr/share/flow-gitops/node-red-contrib-flow-gitops.tgz

# The wheel is bind-mounted from the build stage, so it never lands in a layer.
# uid/gid 1000 is the node-red user of the official Node-RED images: both containers
# write the shared userDir. /data (the userDir's usual mount point) and the state
# directory belong to that user, so a new named volume mounted there is writable.
RUN --mount=type=bind,from=build,source=/dist,target=/tmp/dist \
    pip install --no-cache-dir /tmp/dist/*.whl \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 gitops \
 && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin gitops \
 && mkdir -p /var/lib/flow-gitops /etc/flow-gitops /data \
 && chown gitops:gitops /var/lib/flow-gitops /data

# Inside a pod the HTTP side (webhooks, /metrics, /healthz, /readyz, gRPC-web for the
# editor plugin) must be reachable from the other containers and the Service; native
# gRPC stays on loopback unless configured otherwise (api.grpc_listen).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLOW_GITOPS_DATA_DIR=/var/lib/flow-gitops \
    FLOW_GITOPS_API__HTTP_LISTEN=0.0.0.0:8472

USER 1000:1000
WORKDIR /var/lib/flow-gitops
EXPOSE 8472 8471

# Liveness of the HTTP front end, on the port FLOW_GITOPS_API__HTTP_LISTEN names (plain HTTP).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('FLOW_GITOPS_API__HTTP_LISTEN', '127.0.0.1:8472').rpartition(':')[2]; urllib.request.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=4)"]

ENTRYPOINT ["flow-gitops"]
CMD ["serve", "--config", "/etc/flow-gitops/config.yaml"]
