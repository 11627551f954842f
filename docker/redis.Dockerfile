# Redis from Debian's redis-server, for a deployment (or a test) that cannot pull the public
# redis image: build it on any Debian base and name it in CLIPVIZ_REDIS_IMAGE.
#
#   docker build -f docker/redis.Dockerfile --build-arg BASE_IMAGE=debian:bookworm-slim -t clipviz-redis docker
#   CLIPVIZ_REDIS_IMAGE=clipviz-redis docker compose up -d
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

# Debian's stable release pins the version; the image follows its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --uid 10002 --user-group --shell /usr/sbin/nologin redisd

USER 10002:10002
EXPOSE 6379
# Only the compose network reaches it; nothing is persisted (the run store holds what matters).
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", "/tmp"]
