# referee: the two commands a new user types are `make demo` and `make test`.
# Both install what they need first: OpenCV's development files come from
# apt-get when pkg-config cannot find opencv4, Debian's chromium (the
# browser the review pages are tested in) when there is no chromium,
# Node.js likewise when node is missing, and the pose estimator's npm
# packages (its model included) with `npm ci` from the committed
# package-lock.json.

GO      ?= go
BIN     := bin/referee
VERSION ?= 0.1.0
# Short fuzz runs in `make test`; `make soak` runs them longer.
FUZZTIME ?= 5s

# staticcheck, pinned: `make vet` installs this release with go install when
# the one in GOPATH/bin is missing or another (it must know the Go release
# the module is built with).
STATICCHECK_MODVERSION := v0.8.2
STATICCHECK_VERSION    := 2026.2.2 (0.8.2)
STATICCHECK            := $(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)/staticcheck

# The pose estimator: a Node program and its npm packages, installed in
# place; `make build` links it beside the binary as referee-pose, the
# default --pose-cmd. npm writes the stamp at the end of a complete install.
POSE_DIR   := pipeline/pose/movenet
POSE_STAMP := $(POSE_DIR)/node_modules/.package-lock.json
# Real people walking, for the pose tests: Debian's opencv-doc ships it.
VTEST := /usr/share/doc/opencv-doc/examples/data/vtest.avi

# apt-get install, with sudo when not root.
APT_INSTALL = SUDO=""; if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; fi; \
	$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y

# pkg/target pairs for the fuzz runs.
FUZZ := protocol:FuzzDecode protocol:FuzzParseFrame pipeline/signal:FuzzParse server:FuzzV2FrameMessage server:FuzzFrameCheck pipeline/tracks:FuzzParse

.PHONY: all build deps pose-deps vtest demo test vet fuzz bench gobench eval soak man screenshots clean

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

pose-deps: $(POSE_STAMP)

$(POSE_STAMP): $(POSE_DIR)/package.json $(POSE_DIR)/package-lock.json
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "Node.js was not found: installing nodejs and npm with apt-get (the pose estimator runs in Node)"; \
		$(APT_INSTALL) nodejs npm; \
	fi
	cd $(POSE_DIR) && npm ci --omit=dev --no-audit --no-fund
	@touch $@

vtest:
	@if [ ! -f $(VTEST) ]; then \
		echo "$(VTEST) was not found: installing opencv-doc with apt-get (real video for the pose tests)"; \
		$(APT_INSTALL) opencv-doc; \
	fi

build: deps pose-deps
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/referee
	ln -sf ../$(POSE_DIR)/pose.mjs bin/referee-pose

demo: build
	@./examples/demo.sh $(BIN)

vet: deps
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	@if [ "$$($(STATICCHECK) -version 2>/dev/null)" != "staticcheck $(STATICCHECK_VERSION)" ]; then \
		echo "installing staticcheck $(STATICCHECK_MODVERSION) with go install"; \
		$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_MODVERSION); \
	fi
	$(STATICCHECK) ./...

# A target that fails without writing a failing input to testdata/fuzz is
# Go's fuzzing coordinator missing its own -fuzztime deadline on a busy
# machine ("context deadline exceeded", nothing found): it runs again, up to three times.
# A failing input written fails at once.
fuzz: deps
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; fn=$${t##*:}; corpus=./$$pkg/testdata/fuzz/$$fn; \
		for try in 1 2 3; do \
			before=$$(ls $$corpus 2>/dev/null | wc -l); \
			echo "fuzz $$fn in ./$$pkg for $(FUZZTIME)"; \
			if $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=1s ./$$pkg; then break; fi; \
			if [ "$$(ls $$corpus 2>/dev/null | wc -l)" != "$$before" ] || [ $$try = 3 ]; then exit 1; fi; \
			echo "fuzz $$fn stopped without a failing input (Go's fuzzing deadline race on a busy machine): again"; \
		done; \
	done

# REFEREE_POSE_REQUIRED makes the pose tests fail, not skip, without the
# estimator or vtest.avi: here both were just installed.
test: vet pose-deps vtest
	@$(MAKE) --no-print-directory fuzz
	cd $(POSE_DIR) && node --test
	REFEREE_POSE_REQUIRED=1 $(GO) test -count=1 -timeout 12m ./...

# `referee bench` streams generated videos to a local server with protocol v1
# and v2, over loopback and a delayed link, and prints the Performance table;
# e.g. make bench BENCHFLAGS="--cases 640x480 --frames-scale 0.1". Then
# `referee probe-pose` poses a 300-frame 1280x720 phrase of real people.
bench: build vtest
	./$(BIN) bench $(BENCHFLAGS)
	./$(BIN) probe-pose --frames 300 --size 1280x720 --fps 30

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

# man pages of referee and every subcommand, from the --help texts, in man/.
man: build
	./$(BIN) man man

# The review pages at 1280x800 and 390x844 (a phone), photographed by the
# browser test with a phrase streamed, analysed and reviewed, into
# examples/ where the README shows them.
screenshots: deps
	REFEREE_SCREENSHOTS=$(CURDIR)/examples $(GO) test -count=1 -run TestScreenshots -v ./server/internal/webtest

clean:
	rm -rf bin man
