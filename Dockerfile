# One image: nginx in front of uwsgi, serving the model given as a build argument.
# Build: docker build --build-arg MODEL_FILE=model/model.pkl --build-arg MODEL_TEST_FILE=model/test_data.json -t recommender .

# Wheels are compiled here (uwsgi among them), so the runtime image needs no compiler.
FROM python:3.11-slim AS builder
# Not pinning apt versions (DL3008): Debian's security updates replace them; the base image fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt requirements-dev.txt ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements-dev.txt

FROM python:3.11-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/app app
COPY --from=builder /wheels /wheels
# The test tools stay in the image: the build runs the tests below.
RUN pip install --no-cache-dir --no-index /wheels/* && rm -rf /wheels

WORKDIR /app
COPY pyproject.toml main.py ./
COPY app/ app/
COPY deploy/ deploy/
COPY tests/ tests/

ARG MODEL_FILE=model/model.pkl
ARG MODEL_TEST_FILE=model/test_data.json
COPY ${MODEL_FILE} /model/incoming/
COPY ${MODEL_TEST_FILE} /model/test_data.json
# A .tar.gz must hold one model.pkl (and at most its model.json); it is unpacked without trusting its paths.
RUN python -m app.model_file install /model/incoming /model && rm -rf /model/incoming \
    && mkdir -p /app/instance && chown app:app /app/instance

# The build fails when the tests (those that need neither the data set nor outside services) or the
# accuracy check fail.
RUN python -m pytest -q -p no:cacheprovider -m "not dataset and not service and not stack and not repository and not browser" \
    && python tests/run_accuracy_tests.py /model/model.pkl /model/test_data.json

ENV ML_MODEL_PATH=/model/model.pkl \
    PORT=80 \
    UWSGI_UID=app \
    UWSGI_GID=app \
    PYTHONUNBUFFERED=1
EXPOSE 80
VOLUME ["/app/instance"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"80\")}/health', timeout=4).status != 200)"]
# nginx's master needs root for port 80; its workers run as nobody, uwsgi as app (UWSGI_UID).
CMD ["deploy/run-stack"]
