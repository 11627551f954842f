# clipviz: the web app (gunicorn app:server) and, with another command, a Celery worker.
#
#   DOCKER_BUILDKIT=1 docker build -t clipviz .
#   # behind a TLS-intercepting proxy, hand its CA bundle to pip for the build only:
#   DOCKER_BUILDKIT=1 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t clipviz .
#   # another base image with python3 (>= 3.11) and its venv module:
#   DOCKER_BUILDKIT=1 docker build --build-arg BASE_IMAGE=my/python:3.11 -t clipviz .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CLIPVIZ_DATA_DIR=/data \
    NUMBA_CACHE_DIR=/var/cache/clipviz/numba

# An unprivileged user; the run store (/data) and Numba's cache are the only writable places.
RUN useradd --system --create-home --uid 10001 --user-group --shell /usr/sbin/nologin clipviz \
    && python3 -m venv /opt/venv \
    && mkdir -p /data /var/cache/clipviz/numba \
    && chown clipviz:clipviz /data /var/cache/clipviz/numba

WORKDIR /src
# The exact tested set (requirements/runtime.lock, every file checked against its hash) first, in a
# layer of its own that a change of clipviz's code does not rebuild; then clipviz itself, without
# dependencies.  The optional CA bundle is a build secret: mounted for these steps only, never
# stored in a layer.
COPY requirements/runtime.lock ./requirements/
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi \
    && pip install --no-cache-dir --require-hashes --no-deps -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY clipviz ./clipviz
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca SSL_CERT_FILE=/run/secrets/ca; fi \
    && pip install --no-cache-dir --no-deps /src \
    && rm -rf /src/build /src/*.egg-info

WORKDIR /app
COPY app.py ./
USER 10001:10001
# Compile every Numba kernel into the cache now (the pages' and the training engine's, which the
# worker and the forked runners use), so no user waits for it later.  The app made at import keeps
# its files in a scratch folder: the image ships no run store or cache of its own in /data.
RUN CLIPVIZ_DATA_DIR=/tmp/clipviz-build python -c "import app" \
    && python -c "from clipviz import jobs; jobs.warm_up()" \
    && rm -rf /tmp/clipviz-build

VOLUME ["/data"]
EXPOSE 8050
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/health', timeout=4)"]
CMD ["gunicorn", "--bind", "0.0.0.0:8050", "--workers", "2", "--threads", "4", "--timeout", "120", "app:server"]
