# One image: nginx in front of uwsgi, serving the model given as a build argument, as the user app.
# Build: docker build --build-arg MODEL_FILE=model/model.pkl --build-arg MODEL_TEST_FILE=model/test_data.json -t recommender .
# The stage "test" is the image itself running its own tests and the accuracy check, as app; the final stage
# copies their report, so every builder (BuildKit included, which skips stages nothing uses) runs them, and a
# failure fails the build. A running container runs the same checks again: docker exec <container> pytest.

# The service's packages in a virtual environment, compiled here (uwsgi among them): the runtime needs no compiler.
FROM python:3.11-slim AS builder
# Not pinning apt versions (DL3008): Debian's security updates replace them; the base image fixes the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt requirements-test.txt /build/
# The service imports neither the packages' own test suites nor the sources and headers for compiling
# against them, and needs no pip to run. pytest and requests (requirements-test.txt) are the image's own
# test runner (SPEC 8: `docker exec <container> pytest`), left uncompiled (no .pyc): 8 MB less, and a run
# compiles them in memory in about a second. The packages' own extension modules lose their debug symbols
# (19 MB); the libraries that auditwheel vendored (*.libs) stay as it patched them.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r /build/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir --no-compile -r /build/requirements-test.txt \
    && /opt/venv/bin/pip uninstall --yes pip setuptools \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && find /opt/venv -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pyi' -o -name '*.c' -o -name '*.cpp' \
        -o -name '*.h' \) -delete \
    && find /opt/venv -type f -name '*.so' -not -path '*.libs/*' -exec strip --strip-unneeded {} +

# The model file, checked and unpacked (a .tar.gz is unpacked without trusting its paths).
FROM builder AS model
WORKDIR /build
COPY app/ app/
ARG MODEL_FILE=model/model.pkl
ARG MODEL_TEST_FILE=model/test_data.json
COPY ${MODEL_FILE} /model/incoming/
COPY ${MODEL_TEST_FILE} /model/test_data.json
RUN /opt/venv/bin/python -m app.model.model_file install /model/incoming /model && rm -rf /model/incoming

# The image: Python, nginx, the packages, the code and its tests, the model, and the user it runs as.
FROM python:3.11-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home --home-dir /home/app app
COPY --from=builder /opt/venv /opt/venv
# PYTEST_ADDOPTS is the in-image test selection, one definition for the stage "test" and for
# `docker exec <container> pytest`: the tests that need neither the data set, nor outside services, nor the
# programs only development installs (.dockerignore leaves out the modules that import them); no cache
# directory, since /app is read-only for app.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTEST_ADDOPTS='-p no:cacheprovider -m "not dataset and not service and not stack and not repository and not browser and not docker and not slow"'
WORKDIR /app
COPY pyproject.toml main.py ./
COPY app/ app/
COPY deploy/ deploy/
COPY tests/ tests/
COPY --from=model /model /model
# The instance folder (SQLite database, journal, generated signing key) belongs to app; a new volume inherits that.
RUN mkdir /app/instance && chown app:app /app/instance
# app, by number: a host (or Kubernetes) can tell it is not root without the image's /etc/passwd.
USER 10001:10001
# nginx listens on an unprivileged port inside: map a host port to it (docker run -p 80:8080).
ENV ML_MODEL_PATH=/model/model.pkl \
    PORT=8080
EXPOSE 8080
VOLUME ["/app/instance"]
# A short interval, so that a new container is marked healthy within seconds of serving. Healthy means the
# app answers with a working model; a database that is away is not the container's fault (deploy/healthcheck.py).
HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=3 CMD ["python", "deploy/healthcheck.py"]
CMD ["deploy/run-stack"]

# The tests and the accuracy check, on the files the image holds, as `docker exec` runs them: as app, with the
# image's environment.
FROM runtime AS test
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN pytest -q | tee /tmp/build-check.txt \
    && python tests/run_accuracy_tests.py /model/model.pkl /model/test_data.json | tee -a /tmp/build-check.txt

FROM runtime
COPY --from=test /tmp/build-check.txt /model/build-check.txt
