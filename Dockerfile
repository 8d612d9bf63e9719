# The one image of every yuqing process: `docker run IMAGE run persist`,
# `docker run IMAGE db upgrade`, ... (ENTRYPOINT is the `yuqing` command).
# Configured only by YUQING_* environment variables (see pipeline/settings.py);
# docker-compose.yml shows the scale-out deployment.
# Needs BuildKit (the default builder of current Docker and of `docker compose build`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Install from a writable throw-away view of the build context (see .dockerignore), so
# neither the sources nor setuptools' build/ and *.egg-info end up in the image.
# gcc builds the C extensions (classifiers/, responders/ and pipeline/_native.c) and
# leaves in the same layer.
RUN --mount=type=bind,target=/tmp/src,rw \
    --mount=type=cache,target=/root/.cache/pip \
    apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install /tmp/src \
 && apt-get purge -y --auto-remove gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

# Default configuration baked in; docker-compose.yml mounts ./config over it.
COPY config /etc/yuqing

RUN groupadd --system --gid 10001 yuqing \
 && useradd --system --uid 10001 --gid yuqing --home-dir /var/lib/yuqing \
        --no-create-home --shell /usr/sbin/nologin yuqing \
 && install -d -o yuqing -g yuqing -m 0750 /var/lib/yuqing

ENV YUQING_CONFIG_DIR=/etc/yuqing \
    YUQING_DATA_DIR=/var/lib/yuqing

WORKDIR /var/lib/yuqing
USER 10001:10001

# 8000: web app (set YUQING_WEB_BIND=0.0.0.0:8000); 9400: Prometheus metrics.
EXPOSE 8000 9400

ENTRYPOINT ["yuqing"]
CMD ["run"]
