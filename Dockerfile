# The scoring service: FastAPI on uvicorn, NumPy for the numbers.
#
#   docker build -t scorer .
#   docker run --rm -p 127.0.0.1:8000:8000 -p 127.0.0.1:8001:8001 scorer
#
# Two stages: the builder makes a virtual environment with the project and its
# dependencies; the runtime stage copies only that environment onto a clean slim image
# and runs it as an unprivileged user.

FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies from the lock (requirements.txt, the runtime part of uv.lock, with hashes),
# in their own layer: rebuilt only when the lock changes, not for a change to the code.
COPY requirements.txt ./
RUN pip install --require-hashes --no-deps -r requirements.txt

# The project and its client distribution (regular, non-editable installs: the runtime
# has no source tree). The service runs the client's metrics and report code.
COPY pyproject.toml README.md ./
COPY clients/python ./clients/python
COPY app ./app
# pip and setuptools built the project; the runtime has no use for them.
RUN pip install --no-deps ./clients/python . \
 && pip uninstall --yes --quiet pip setuptools


FROM python:3.11-slim

# A system user with a fixed numeric id, so that orchestrators can verify "non-root".
RUN groupadd --system --gid 10001 scorer \
 && useradd --system --uid 10001 --gid scorer --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin scorer

COPY --from=builder --chown=scorer:scorer /opt/venv /opt/venv

# One BLAS/OpenMP thread per process: parallelism comes from uvicorn workers
# (WEB_CONCURRENCY, read by app.serve) and replicas; threads inside each worker
# would only oversubscribe the cores the container is given.
# glibc maps every allocation over 32 MiB afresh and unmaps it when freed, so a large
# request faulted in its body, its parsed arrays and their temporaries page by page
# (bench/README.md, design decisions); up to 128 MiB now comes from the heap and up to
# 128 MiB of freed heap is kept for the next request.
# matplotlib (the report) keeps its font cache in MPLCONFIGDIR: the user has no home and
# the root may be read-only, and /tmp is writable (a tmpfs in compose, an emptyDir in k8s).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    WEB_CONCURRENCY=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=134217728:glibc.malloc.trim_threshold=134217728

USER 10001:10001
# REST, and the Open Inference Protocol over gRPC (SCORER_GRPC_PORT; it listens on
# --host, as REST does).
EXPOSE 8000 8001

# Liveness. The slim image has no curl; urlopen raises (exit 1) on anything but 2xx.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# Graceful stop: on SIGTERM the app answers 503 on /readyz, uvicorn stops accepting
# connections and finishes the requests in flight, for at most
# SCORER_GRACEFUL_SHUTDOWN_SECONDS (20 s unless set; app.serve reads it); give the
# container longer than that to stop (compose: stop_grace_period) before it is killed.
STOPSIGNAL SIGTERM
# app.serve is uvicorn with a listening socket per worker (SO_REUSEPORT), so that
# connections opened together spread over the workers (app/serve.py).
CMD ["python", "-m", "app.serve", "--host", "0.0.0.0", "--port", "8000", \
     "--timeout-keep-alive", "5", "--no-server-header"]
