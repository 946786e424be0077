# Convenience entry points. The build itself is CMake (tools/build.sh); fuzzing has its own
# clang project in fuzz/ (see fuzz/README.md).
FUZZ_SECONDS ?= 20
FUZZ_BUILD_DIR ?= build-fuzz

.PHONY: fuzz fuzz-long fuzz-build fuzz-corpus

# Every libFuzzer target for FUZZ_SECONDS each (ASan + UBSan); fails on any crash.
fuzz:
	bash fuzz/run.sh -t $(FUZZ_SECONDS) -b $(FUZZ_BUILD_DIR) $(FUZZ_TARGETS)

# Ten minutes per target.
fuzz-long:
	bash fuzz/run.sh -t 600 -b $(FUZZ_BUILD_DIR) $(FUZZ_TARGETS)

fuzz-build:
	bash fuzz/run.sh --build-only -b $(FUZZ_BUILD_DIR) $(FUZZ_TARGETS)

# Regenerates fuzz/corpus/ from the bundled image, moat-runtime spec, ... (needs build/).
fuzz-corpus:
	python3 fuzz/make_corpus.py
