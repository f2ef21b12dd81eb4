# referee: the two commands a new user types are `make demo` and `make test`.
# Both install what they need first: OpenCV's development files come from
# apt-get when pkg-config cannot find opencv4, and Debian's chromium (the
# browser the review pages are tested in) when there is no chromium.

GO      ?= go
BIN     := bin/referee
VERSION ?= 0.1.0
# Short fuzz runs in `make test`; `make soak` runs them longer.
FUZZTIME ?= 5s

# pkg/target pairs for the fuzz runs.
FUZZ := protocol:FuzzDecode protocol:FuzzParseFrame pipeline/signal:FuzzParse server:FuzzV2FrameMessage server:FuzzFrameCheck pipeline/tracks:FuzzParse

.PHONY: all build deps demo test vet fuzz bench gobench eval soak screenshots clean

all: build

deps:
	@if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists opencv4; then \
		echo "OpenCV 4 was not found by pkg-config: installing libopencv-dev and pkg-config with apt-get"; \
		SUDO=""; if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y libopencv-dev pkg-config; \
	fi
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "chromium was not found: installing it with apt-get (the review pages' tests run in it)"; \
		SUDO=""; if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; \
	fi

build: deps
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/referee

demo: build
	@./examples/demo.sh $(BIN)

vet: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# A target that fails without writing a failing input to testdata/fuzz is
# Go's fuzzing coordinator missing its own -fuzztime deadline on a busy
# machine ("context deadline exceeded", nothing found): it runs once more.
# A failing input written fails at once.
fuzz: deps
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; fn=$${t##*:}; corpus=./$$pkg/testdata/fuzz/$$fn; \
		for try in 1 2; do \
			before=$$(ls $$corpus 2>/dev/null | wc -l); \
			echo "fuzz $$fn in ./$$pkg for $(FUZZTIME)"; \
			if $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./$$pkg; then break; fi; \
			if [ "$$(ls $$corpus 2>/dev/null | wc -l)" != "$$before" ] || [ $$try = 2 ]; then exit 1; fi; \
			echo "fuzz $$fn stopped without a failing input (Go's fuzzing deadline race on a busy machine): once more"; \
		done; \
	done

test: vet
	@$(MAKE) --no-print-directory fuzz
	$(GO) test -count=1 -timeout 12m ./...

# `referee bench` streams generated videos to a local server with protocol v1
# and v2, over loopback and a delayed link, and prints the Performance table;
# e.g. make bench BENCHFLAGS="--cases 640x480 --frames-scale 0.1".
bench: build
	./$(BIN) bench $(BENCHFLAGS)

# How often the right-of-way engine agrees with referees on the shared
# refereed phrases, each recording day decided with the engine fitted on
# the other days; EVALDIR names another directory of labelled phrases.
EVALDIR ?= ../shared/testdata/tracks
eval: build
	./$(BIN) eval $(EVALDIR) --cv day

# The Go benchmarks (frame codec, spool writer, reconstruction).
gobench: deps
	$(GO) test -run='^$$' -bench=. -benchmem ./...

# soak: every fuzz target for 2 minutes, then the chaos test with 200 cut
# streams and a fresh seed, and the flood and restart tests ten times.
soak: build
	@$(MAKE) --no-print-directory fuzz FUZZTIME=2m
	REFEREE_CHAOS_STREAMS=200 REFEREE_CHAOS_SEED=$$(date +%s) $(GO) test -count=1 -timeout 30m -run 'TestChaos' ./cmd/referee
	$(GO) test -count=10 -run 'TestFlood|TestRestartMidStream|TestRecoverAfterRestart' ./server ./cmd/referee

# The review pages at 1280x800 and 390x844 (a phone), photographed by the
# browser test with a phrase streamed, analysed and reviewed, into
# examples/ where the README shows them.
screenshots: deps
	REFEREE_SCREENSHOTS=$(CURDIR)/examples $(GO) test -count=1 -run TestScreenshots -v ./server/webtest

clean:
	rm -rf bin
