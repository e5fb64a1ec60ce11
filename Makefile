# The two commands of the README: `make demo` and `make test`. Both install what is missing first.

# One build folder outside the clone, reused by every clone on this machine (CI clones afresh).
CARGO_TARGET_DIR ?= $(HOME)/.cache/twinray-target
export CARGO_TARGET_DIR
# lavapipe warns on every start without it.
XDG_RUNTIME_DIR ?= /tmp/twinray-runtime
export XDG_RUNTIME_DIR

# The ONNX Runtime library scripts/setup.sh installs; `twinray segment` and the tests load it.
XDG_CACHE_HOME ?= $(HOME)/.cache
TWINRAY_ORT_LIB ?= $(XDG_CACHE_HOME)/twinray-ort/libonnxruntime.so.1.32.0
export TWINRAY_ORT_LIB

TWINRAY := $(CARGO_TARGET_DIR)/debug/twinray
DEMO_OUT ?= out

.PHONY: setup build demo test lint bench fuzz

setup:
	@bash scripts/setup.sh
	@mkdir -p $(XDG_RUNTIME_DIR)

# One build serves both commands: the test build compiles the `twinray` binary too (the CLI's
# tests run it), with the features the whole workspace and its tests unify to, so building it
# here means `make test` after `make demo` compiles only what changed. (`cargo build -p
# twinray-cli` alone would resolve other features and rebuild much of the tree for the tests.)
build: setup
	cargo test --workspace --no-run

# Renders the shipped demo case (real CT, vertebra labels) into out/, records the scripted
# lumbar spine lesson on it and replays a frame of that lesson from behind the patient.
demo: build
	@mkdir -p $(DEMO_OUT)
	$(TWINRAY) render --ct data/demo/example_ct.nii.gz \
	    --labels data/demo/spine_report_totalseg_vertebrae.nii.gz \
	    --preset ct-bone --azimuth 30 --elevation 15 --size 512x512 --out $(DEMO_OUT)/spine.png
	$(TWINRAY) render --ct data/demo/example_ct.nii.gz --preset mip --size 512x512 \
	    --out $(DEMO_OUT)/mip.png
	$(TWINRAY) demo --replace --out $(DEMO_OUT)/demo.lesson
	$(TWINRAY) replay $(DEMO_OUT)/demo.lesson --at 29.5 --azimuth 180 --elevation 20 --zoom 1.5 \
	    --size 512x512 --out $(DEMO_OUT)/lesson.png
	$(TWINRAY) replay $(DEMO_OUT)/demo.lesson --at 49 --azimuth 20 --elevation 10 --zoom 0.55 \
	    --size 800x600 --out $(DEMO_OUT)/teaching.png
	@echo "demo: wrote $(DEMO_OUT)/spine.png, $(DEMO_OUT)/mip.png, $(DEMO_OUT)/demo.lesson, $(DEMO_OUT)/lesson.png and $(DEMO_OUT)/teaching.png"

# The whole test suite, on lavapipe when there is no GPU.
test: build
	cargo test --workspace

# What a commit must pass besides the tests.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

# The seeded mutation tests of every file reader, run long (make test runs a few cases per
# file): DICOM, SEG, NIfTI and lessons. Raise FUZZ_CASES for longer runs.
FUZZ_CASES ?= 400
fuzz: build
	TWINRAY_FUZZ_CASES=$(FUZZ_CASES) cargo test --workspace --test mutation -- --nocapture

# Benchmarks that print figures (no timing asserts).
bench: setup
	cargo bench -p twinray-benches
