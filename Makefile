# fridaymorning — routine targets. `make help` lists them.
#
# The test bed is per name and port range: BED=fm2 PORT_BASE=18500 make testbed starts a second one beside
# the default (BED=fm, ports 18400–18411). The Docker engine and its swarm are shared.
# NODES=3 makes it the multi-node bed instead (stacks/testbed/multinode.sh): a swarm of its own, one
# manager and NODES-1 workers, each a dockerd in its own network namespace, running stacks/production.

BED       ?= fm
PORT_BASE ?= 18400
export FM_BED := $(BED)
export FM_PORT_BASE := $(PORT_BASE)
BED_DIR   := $(CURDIR)/.testbed/$(BED)
TESTBED   := stacks/testbed/testbed.sh
MULTINODE := stacks/testbed/multinode.sh
NODES     ?= 1
MN_NODES  := $(if $(filter 1,$(NODES)),3,$(NODES))
export FM_NODES := $(MN_NODES)
MN_DIR    := $(CURDIR)/.testbed/$(BED)-nodes
GO        ?= go
# The whole suite, real parts included, stays well under 40 minutes on 2 cores (the multi-node part
# about 8 of them).
TEST_TIMEOUT ?= 70m

.PHONY: help build cross image test unit fuzz-short testbed testbed-down testbed-status testbed-nodes demo drill bench lint fmt

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

# Stamped into `fridaymorning version` (internal/buildinfo).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE      ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS   := -s -w -X github.com/fridaymorning/fridaymorning/internal/buildinfo.version=$(VERSION) \
	-X github.com/fridaymorning/fridaymorning/internal/buildinfo.commit=$(COMMIT) \
	-X github.com/fridaymorning/fridaymorning/internal/buildinfo.date=$(DATE)
IMAGE     ?= fridaymorning/fridaymorning:$(VERSION)
PLATFORMS ?= linux/amd64 linux/arm64 darwin/arm64

build: ## build every binary into bin/, stamped with version, commit and date
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

cross: ## cross-build fridaymorning for linux/amd64, linux/arm64 and darwin/arm64 into dist/
	@mkdir -p dist
	@for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "dist/fridaymorning-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/fridaymorning-$$os-$$arch ./cmd/fridaymorning || exit 1; \
	done

image: build ## build fridaymorning's own image (FROM scratch: binary, CA certificates, non-root user) as $(IMAGE)
	@rm -rf .build/image && mkdir -p .build/image
	cp bin/fridaymorning Dockerfile /etc/ssl/certs/ca-certificates.crt .build/image/
	printf 'root:x:0:0:root:/root:/sbin/nologin\nfridaymorning:x:65532:65532:fridaymorning:/home/fridaymorning:/sbin/nologin\n' >.build/image/passwd
	printf 'root:x:0:\nfridaymorning:x:65532:\n' >.build/image/group
	DOCKER_BUILDKIT=0 docker build -q -t $(IMAGE) -t fridaymorning/fridaymorning:latest .build/image

testbed: ## install (as root) and start the local test bed (NODES=3: the multi-node bed with the production stack)
ifeq ($(NODES),1)
	bash $(TESTBED) up
else
	bash $(MULTINODE) up
endif

testbed-nodes: ## start the multi-node bed (what make testbed NODES=3 does)
	bash $(MULTINODE) up

testbed-down: ## stop the test bed and remove its services (NODES=3: remove the multi-node bed entirely)
ifeq ($(NODES),1)
	bash $(TESTBED) down
else
	bash $(MULTINODE) down
endif

testbed-status: ## show what the test bed runs
ifeq ($(NODES),1)
	bash $(TESTBED) status
else
	bash $(MULTINODE) status
endif

demo: testbed ## the main job on the local default: a demo release of the demo app under steady load
	bash $(TESTBED) demo

DRILL_PROFILE ?= short
drill: testbed ## Friday-morning release drill on the test bed (DRILL_PROFILE=short|full), with a scorecard
	. $(BED_DIR)/env && $$FM_BIN_DIR/fridaymorning drill --profile $(DRILL_PROFILE)

# One package at a time (-p 1): the tests on real parts measure real traffic, and two cores shared by
# several packages' HAProxies, swarms and load generators would turn CPU starvation into flaky verdicts.
# The multi-node tests (TestMultiNode*) run first, on their own bed: their outcomes, the load's counts
# and a timing line are printed (the whole log is in .testbed/<bed>-nodes/tests.log); then the rest.
MN_SUMMARY := '^(--- |ok |FAIL)|release: exit|bake: exit|during step 1: exit|timing: '
test: testbed testbed-nodes ## run every test: unit tests, the tests on both real test beds, each fuzz target briefly
	. $(BED_DIR)/env && . $(MN_DIR)/env && $(GO) vet -tags integration ./... && \
		start=$$(date +%s); status=0; \
		$(GO) test -tags integration -count=1 -p 1 -timeout $(TEST_TIMEOUT) -v -run '^TestMultiNode' ./cmd/fridaymorning/ \
			>$(MN_DIR)/tests.log 2>&1 || { status=$$?; cat $(MN_DIR)/tests.log; }; \
		grep -E $(MN_SUMMARY) $(MN_DIR)/tests.log; \
		echo "timing: multi-node tests took $$(( $$(date +%s) - start ))s"; \
		$(GO) test -tags integration -count=1 -p 1 -timeout $(TEST_TIMEOUT) -skip '^TestMultiNode' ./... || status=$$?; \
		echo "timing: make test took $$(( $$(date +%s) - start ))s after the beds were up"; exit $$status
	$(MAKE) --no-print-directory fuzz-short

# The fuzz targets: the parsers of what comes from outside (fridaymorning.yaml, the Data Plane API's
# answers, the admin socket's, InfluxDB's, the release record in Swarm). Run one longer by hand:
#   go test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime 60s ./cmd/fridaymorning
FUZZ_TIME    ?= 5s
FUZZ_TARGETS := FuzzParseConfig:./cmd/fridaymorning FuzzDataplaneAnswer:./haproxy FuzzShowStat:./haproxy \
	FuzzInfluxQLAnswer:./analysis FuzzFluxAnswer:./analysis FuzzParseRecord:./release

fuzz-short: ## run each fuzz target for FUZZ_TIME (5s); a failing input lands in the package's testdata/fuzz
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZ_TIME)"; \
		out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZ_TIME) $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
	done

unit: ## run the unit tests only (no test bed needed)
	$(GO) test ./...

bench: testbed ## run the benchmarks (the 1M-point analysis and the time-to-safety ones take minutes)
	. $(BED_DIR)/env && $(GO) test -tags integration -run '^$$' -bench . -benchtime 3x -timeout 60m ./...

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet -tags integration ./...

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')
