# The project's vocabulary: make run, make test, make lint, make train, make evaluate.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test lint train evaluate data

$(INSTALLED): requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

model/model.pkl: | $(INSTALLED)
	$(PYTHON) -m app.train

run: model/model.pkl
	@echo "The model is trained (model/); no server yet: the REST API is still to be built."
	@exit 1

test: $(INSTALLED)
	$(PYTHON) -m pytest

lint: $(INSTALLED)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

data: $(INSTALLED)
	$(PYTHON) -m app.data fetch

train: $(INSTALLED)
	$(PYTHON) -m app.train

evaluate: $(INSTALLED)
	$(PYTHON) -m app.evaluate
