# PostgreSQL from Debian's postgresql package, for a deployment (or a test) that cannot pull the
# public postgres image: build it on any Debian base and name it in CLIPVIZ_POSTGRES_IMAGE.  Like
# the public image it reads POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB on the first start
# of an empty data folder (/var/lib/postgresql/data), so docker-compose.yml takes either.
#
#   docker build -f docker/postgres.Dockerfile --build-arg BASE_IMAGE=debian:bookworm-slim -t clipviz-postgres docker
#   CLIPVIZ_POSTGRES_IMAGE=clipviz-postgres docker compose up -d
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}

ENV PGDATA=/var/lib/postgresql/data \
    PATH=/usr/lib/postgresql/bin:$PATH

# Debian's stable release pins the version; the image follows its security updates.  No default
# cluster: the entry point makes one in PGDATA (the volume) on the first start.  The release has
# one major version; its bin folder goes on the PATH.
# hadolint ignore=DL3008
RUN mkdir -p /etc/postgresql-common \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
    && rm -rf /var/lib/apt/lists/* \
    && for d in /usr/lib/postgresql/*/bin; do bin="$d"; done \
    && ln -s "$bin" /usr/lib/postgresql/bin \
    && useradd --system --no-create-home --uid 10003 --user-group --shell /usr/sbin/nologin pgsql \
    && mkdir -p "$PGDATA" /var/run/postgresql \
    && chown pgsql:pgsql "$PGDATA" /var/run/postgresql \
    && chmod 700 "$PGDATA"

COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
USER 10003:10003
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint.sh"]
