# The project's vocabulary: make run, make test, make lint, make train, make evaluate.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 5000

.PHONY: run test lint train evaluate data bench docker-build reload pipeline

$(INSTALLED): requirements.txt requirements-test.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

model/model.pkl: | $(INSTALLED)
	$(PYTHON) -m app.train

# Serves the API on $(PORT); makes up a session password (and prints it) when SESSION_PASSWORD is unset.
run: model/model.pkl
	@export ML_MODEL_PATH="$${ML_MODEL_PATH:-model/model.pkl}"; \
	if [ -z "$$SESSION_PASSWORD" ]; then \
		export SESSION_PASSWORD="$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(12))')"; \
		echo "SESSION_PASSWORD was not set; this run's password is: $$SESSION_PASSWORD"; \
	fi; \
	exec $(PYTHON) main.py --port $(PORT)

# As root, installs from Debian and starts what the tests need when it is absent (tests/start-services).
test: $(INSTALLED)
	tests/start-services
	$(PYTHON) -m pytest

# bitbucket-pipelines.yml against Bitbucket's published schema (types), then against the runner (unknown keys).
lint: $(INSTALLED)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.bitbucket-pipelines bitbucket-pipelines.yml
	$(PYTHON) -m deploy.pipeline --check

# ml-100k into data/ml-100k: downloaded from GroupLens, or copied from ML100K_DIR when it is set.
data: $(INSTALLED)
	$(PYTHON) -m app.data fetch $(if $(ML100K_DIR),--source "$(ML100K_DIR)")

train: $(INSTALLED)
	$(PYTHON) -m app.train

evaluate: $(INSTALLED)
	$(PYTHON) -m app.evaluate

# make bench BENCH_ARGS="--balancer-image recommender:latest" also measures through docker-compose.yml's balancer.
bench: $(INSTALLED)
	$(PYTHON) -m benchmarks.run $(BENCH_ARGS)

# The image, with the model in model/ (make train); the build runs the tests and the accuracy check.
docker-build: model/model.pkl
	deploy/base-images
	docker build --build-arg MODEL_FILE=model/model.pkl --build-arg MODEL_TEST_FILE=model/test_data.json \
		-t recommender:latest .

# bitbucket-pipelines.yml's default pipeline on the local Docker engine, step by step, at the commit HEAD
# (README: "The Bitbucket pipeline, run here"); PIPELINE_ARGS="--help" says what else it can run.
pipeline: $(INSTALLED)
	deploy/base-images
	$(PYTHON) -m deploy.pipeline $(PIPELINE_ARGS)

# Serve MODEL on the running deploy/run-stack without dropping a request: make reload MODEL=path/model.pkl
reload: $(INSTALLED)
	ML_MODEL_PATH="$${ML_MODEL_PATH:-model/model.pkl}" $(PYTHON) deploy/swap-model $(MODEL)
