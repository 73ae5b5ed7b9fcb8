# The endpoint-picker image: `docker build -t endpoint-picker .` (any OCI builder: docker, podman, buildah,
# kaniko). Three stages on the same Node 20 base: build (full install, tsc to dist/), deps (production
# dependencies only; native prebuilt binaries such as zeromq's are fetched here for the same libc and
# architecture as the runtime), runtime (no npm, no compiler, no sources).
#
# Keep every RUN command relative to WORKDIR and every COPY explicit: scripts/dockerfile-rehearsal.js
# replays these steps on CI machines, which have no container engine (see docs/deploy.md).
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="endpoint-picker" \
      org.opencontainers.image.description="Endpoint Picker (EPP) for LLM inference gateways: Envoy ext_proc server and embedded OpenAI-compatible gateway" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
# The root filesystem can be read-only: the EPP writes nothing but logs (stdout). HOME and TMPDIR point at
# /tmp, which the manifests mount as an emptyDir, for anything a dependency might want to write.
ENV NODE_ENV=production \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY bin ./bin
COPY --from=build /src/dist ./dist
# The image's `node` user (uid 1000), numeric so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# ext_proc (TLS), grpc.health.v1, /metrics + /healthz + /readyz, embedded gateway (when --gateway-port).
EXPOSE 9002 9003 9090 8080
# SIGTERM starts the graceful stop: no new streams, open ones get --shutdown-grace-period (default 30s),
# then the process exits 0. Give the pod a terminationGracePeriodSeconds above that grace period.
STOPSIGNAL SIGTERM
# Arguments are upstream's `epp` flags (`--pool-name=... --pool-namespace=...`), so upstream manifests'
# args carry over. Other subcommands: --entrypoint node, then bin/epp.js gateway|demo|sim.
ENTRYPOINT ["node", "/app/bin/epp.js", "serve"]
