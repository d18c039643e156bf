# StoreOps API image. Migrations: `alembic upgrade head`; API: the default command.
FROM python:3.11-slim

# PYTHONPATH=/srv: import the source tree in /srv (next to alembic.ini and alembic/)
# rather than the copy in site-packages, because the app finds its migrations relative
# to its own package. STOREOPS_DATA_DIR is only used without DATABASE_URL (embedded
# server); the compose file always sets DATABASE_URL, so nothing is written there.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONPATH=/srv \
    STOREOPS_DATA_DIR=/tmp/storeops

RUN groupadd --system --gid 10001 storeops \
    && useradd --system --uid 10001 --gid storeops --home-dir /srv \
       --no-create-home --shell /usr/sbin/nologin storeops

WORKDIR /srv

COPY pyproject.toml README.md alembic.ini ./
COPY alembic/ ./alembic/
COPY app/ ./app/

RUN pip install --no-cache-dir . \
    && mkdir -p /tmp/storeops \
    && chown storeops:storeops /tmp/storeops

USER storeops

EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
