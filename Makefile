# strand: build, test and interop entry points. `.ci/run` calls lint, test, interop.
CARGO ?= cargo
STRAND ?= $(CURDIR)/target/release/strand

.PHONY: all build test lint fmt interop interop-deps demo clean
.PHONY: bench bench-smoke bench-scale fuzz

all: build

build:
	$(CARGO) build --release

# The whole test suite: unit, integration, examples, benches (compiled as tests).
test:
	$(CARGO) test --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Installs the missing Debian packages and rqbit (outside any namespace), then runs strand's
# feature cases and the matrix of every client × direction × mode, each in its own network
# namespace that has only lo; prints the matrix, writes tests/interop/MATRIX.md. Needs root.
interop-deps:
	bash tests/interop/install-deps.sh

interop: build interop-deps
	STRAND=$(STRAND) bash tests/interop/run.sh

clean:
	$(CARGO) clean

# A real download a person can watch: strand makes its own local swarm (tracker,
# seeder, downloader on 127.0.0.1) and checks the result. Needs only python3.
demo: build
	STRAND=$(STRAND) bash tests/demo/run.sh

# Benchmarks (bench/README.md), in a network namespace with only lo; need root.
# bench: 1 GiB + 2,000 small files, strand vs aria2c, rqbit, libtorrent, 3 rounds, a perf
# profile; writes bench/RESULTS.md. bench-smoke (CI): 64 MiB, strand and aria2c, one round,
# fails if a download fails or differs, never on timings. bench-scale: strand vs 300 peers.
bench: build interop-deps
	bash bench/install-rqbit.sh || true
	STRAND=$(STRAND) bash bench/bench.sh full

bench-smoke: build interop-deps
	STRAND=$(STRAND) bash bench/bench.sh smoke

bench-scale: build
	$(CARGO) build --release --manifest-path bench/seeder/Cargo.toml
	STRAND=$(STRAND) bash bench/scale.sh

# Fuzzing (fuzz/README.md): every cargo-fuzz target for FUZZ_SECONDS (default 60) each; fails
# on a crash, hang or oversized allocation. Not part of test or CI. Needs cargo-fuzz.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

# Figures for issue 15 (bench/content.sh): achieved rates under --download-limit 8M and
# --upload-limit 4M (64 MiB each), and the share of verified pieces before the first missing
# one when a --sequential download of 1 GiB is killed after ~300 MB. A measurement, not a test.
.PHONY: content-figures
content-figures: build
	STRAND=$(STRAND) bash bench/content.sh all

# Soak (bench/soak.sh, needs root): one `strand seed` watched for SOAK_MINUTES while leechers
# come and go and hostile peers attack it; RSS, threads and fds every 10 s into a CSV,
# fails if one of them grows.
SOAK_MINUTES ?= 30
.PHONY: soak
soak: build
	SOAK_MINUTES=$(SOAK_MINUTES) STRAND=$(STRAND) bash bench/soak.sh
