# syntax=docker/dockerfile:1
# site-extender image: gunicorn serving the extender on :8888 as a non-root user.
#   docker build -t site-extender:0.1.0 .
# Pin the base by digest too (python:3.13.9-slim-bookworm@sha256:...) where your registry policy asks.

FROM python:3.13.9-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/site-extender
WORKDIR /src
# Dependencies come from pyproject.toml; the package is installed (not editable) into the venv.
COPY pyproject.toml README.md ./
COPY extender/ extender/
RUN /opt/site-extender/bin/pip install /src

FROM python:3.13.9-slim-bookworm
# What /version answers: docker build --build-arg COMMIT_ID=$(git rev-parse HEAD) --build-arg BUILD_DATE=$(date -u +%FT%TZ)
ARG COMMIT_ID=unknown
ARG BUILD_DATE=unknown
ENV SITE_EXTENDER_COMMIT_ID=$COMMIT_ID \
    SITE_EXTENDER_BUILD_DATE=$BUILD_DATE
ENV PATH=/opt/site-extender/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SITE_EXTENDER_HOST=0.0.0.0 \
    SITE_EXTENDER_PORT=8888 \
    SITE_EXTENDER_POLICY=/etc/site-extender/policy \
    SITE_EXTENDER_INVENTORY=/etc/site-extender/inventory \
    SITE_EXTENDER_DATA_DIR=/var/lib/site-extender
# The allocations store (SQLite) lives in SITE_EXTENDER_DATA_DIR: the only directory the user may write
# (in the cluster an emptyDir is mounted there, the root filesystem being read-only).
RUN groupadd --system --gid 10001 site-extender \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin site-extender \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/site-extender
COPY --from=build /opt/site-extender /opt/site-extender
# The default policy and sample inventory, so that `docker run` serves; in the cluster, ConfigMaps are
# mounted over both directories.
COPY policy/policy.yaml /etc/site-extender/policy/policy.yaml
COPY policy/inventory/ /etc/site-extender/inventory/
USER 10001:10001
WORKDIR /opt/site-extender
EXPOSE 8888
# The slim image has no curl: ask /healthz with Python's standard library.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SITE_EXTENDER_PORT', '8888'), timeout=2)"]
ENTRYPOINT ["gunicorn", "-c", "python:extender.ops.gunicorn_conf"]
