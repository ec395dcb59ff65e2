# tap2join — see README.md. Two commands matter:
#   make emulate   the emulated end-to-end suites (no hardware, no Docker)
#   make test      every test
SHELL := /bin/bash
GO    ?= go
GINKGO := $(GO) tool ginkgo
OUT   ?= out
RIG   ?= rigs/emulated.yaml
export TAP2JOIN_RIG := $(RIG)
# The limits a run is judged against (format: reports/README.md). LIMITS=path or
# LIMITS=name (reports/limits/<name>.yaml) overrides; it is also exported as
# TAP2JOIN_LIMITS, which reports.Gate reads. make lab defaults to reports/limits/<rig name>.yaml.
LIMITS_GIVEN := $(LIMITS)
ifneq ($(LIMITS_GIVEN),)
export TAP2JOIN_LIMITS := $(LIMITS_GIVEN)
endif
LIMITS ?= reports/limits/emulated.yaml
T2JREPORT := $(OUT)/bin/t2jreport
# testcontainers-go: the Ryuk reaper image cannot be pulled here (fixtures/containers
# terminates and reaps its own containers), and without the override it may believe
# it runs inside a container and dial a bridge gateway instead of the published ports.
export TESTCONTAINERS_RYUK_DISABLED ?= true
export TESTCONTAINERS_HOST_OVERRIDE ?= 127.0.0.1
# The PC/SC transport (rigs/nfc/pcsc, github.com/ebfe/scard) is cgo against
# libpcsclite. Where its headers are missing (a laptop without root), everything
# else still builds with -tags nopcsc and the pcsc rigs say what to install.
# Recursive (=): evaluated after the deps prerequisite had its chance to install it.
TAGS = $(shell pkg-config --exists libpcsclite 2>/dev/null || echo nopcsc)
GOTAGS = $(if $(TAGS),-tags $(TAGS))
GINKGOTAGS = $(if $(TAGS),--tags=$(TAGS))
PKGS = $$($(GO) list $(GOTAGS) ./... | grep -v /suites/ $(if $(TAGS),| grep -v /rigs/nfc/pcsc))

.PHONY: all emulate lab test unit vet fmt suites clean docker containers integration deps

all: test

# The emulated end-to-end flow, judged against $(LIMITS): out/emulate/ ends with
# report.json (Ginkgo), junit.xml (with measurements as properties), report.html and
# summary.md. The exit status is the verdict (0 pass, 1 fail, 2 bad input); a run
# whose verdict passes while ginkgo itself failed still fails.
emulate: deps
	@mkdir -p $(OUT)/emulate
	@rm -f $(OUT)/emulate/report.json $(OUT)/emulate/frames.jsonl
	@rc=0; set -x; $(GINKGO) run $(GINKGOTAGS) --label-filter='!needs:docker && !needs:pcscd' \
		--json-report=report.json --output-dir=$(OUT)/emulate \
		--poll-progress-after=30s ./suites/... || rc=$$?; \
	$(GO) build -o $(T2JREPORT) ./reports/cmd/t2jreport || exit 2; \
	$(T2JREPORT) -report $(OUT)/emulate/report.json -limits $(LIMITS) -rig $(RIG) -out $(OUT)/emulate; v=$$?; \
	{ set +x; } 2>/dev/null; \
	if [ $$v = 0 ] && [ $$rc != 0 ]; then echo "emulate: ginkgo exited $$rc though the verdict passed"; exit $$rc; fi; \
	exit $$v

# A lab run: every suite on a bench's rig file, judged against
# reports/limits/<rig name>.yaml (or LIMITS=...), with the same reports under
# out/lab/. LABELS=... narrows the specs (a Ginkgo label filter).
#   make lab RIG=rigs/lab-<bench>.yaml
lab: deps
	@case "$(RIG)" in rigs/emulated.yaml) echo "lab: name the bench's rig file: make lab RIG=rigs/lab-<bench>.yaml"; exit 2;; esac
	@mkdir -p $(OUT)/lab
	@rm -f $(OUT)/lab/report.json $(OUT)/lab/frames.jsonl
	@rc=0; set -x; $(GINKGO) run $(GINKGOTAGS) $(if $(LABELS),--label-filter='$(LABELS)') \
		--json-report=report.json --output-dir=$(OUT)/lab \
		--poll-progress-after=60s --timeout=60m ./suites/... || rc=$$?; \
	$(GO) build -o $(T2JREPORT) ./reports/cmd/t2jreport || exit 2; \
	$(T2JREPORT) -report $(OUT)/lab/report.json -rig $(RIG) $(if $(LIMITS_GIVEN),-limits $(LIMITS_GIVEN)) -out $(OUT)/lab; v=$$?; \
	{ set +x; } 2>/dev/null; \
	if [ $$v = 0 ] && [ $$rc != 0 ]; then echo "lab: ginkgo exited $$rc though the verdict passed"; exit $$rc; fi; \
	exit $$v

# The suites that need real parts running beside them: pcscd + vpcd (emulated
# PC/SC readers, label needs:pcscd) and Docker (network: containers, label
# needs:docker). Reports under out/integration/. In CI (.ci/run sets CI=true and
# TAP2JOIN_REQUIRE) a missing part fails these specs instead of skipping them.
integration: docker deps
	@mkdir -p $(OUT)/integration
	$(GINKGO) run $(GINKGOTAGS) --label-filter='needs:docker || needs:pcscd' \
		--json-report=report.json --junit-report=junit.xml --output-dir=$(OUT)/integration \
		--poll-progress-after=30s --timeout=10m ./suites/...

# Only the Docker-backed specs.
containers: docker
	@mkdir -p $(OUT)/containers
	$(GINKGO) run $(GINKGOTAGS) --label-filter='needs:docker' \
		--json-report=report.json --junit-report=junit.xml --output-dir=$(OUT)/containers \
		--poll-progress-after=30s --timeout=10m ./suites/...

# A reachable Docker engine for the tests labelled needs:docker. As root: install
# docker.io when dockerd is missing and start dockerd (vfs storage) in the
# background, logging to $(OUT)/dockerd.log. Otherwise it only says what is
# missing: those tests then skip on a laptop and fail in CI (CI=true, or
# TAP2JOIN_REQUIRE containing "docker").
docker:
	@if docker info >/dev/null 2>&1; then exit 0; fi; \
	mkdir -p $(OUT); \
	if [ "$$(id -u)" != 0 ]; then \
		echo "docker: no reachable Docker engine and not root: install docker.io and start dockerd to run the needs:docker tests"; exit 0; fi; \
	if ! command -v dockerd >/dev/null 2>&1; then \
		echo "docker: installing docker.io"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io >$(OUT)/apt-docker.log 2>&1 || \
		{ apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io >$(OUT)/apt-docker.log 2>&1; } || \
		{ echo "docker: apt-get install docker.io failed, see $(OUT)/apt-docker.log"; exit 0; }; fi; \
	echo "docker: starting dockerd --storage-driver=vfs (log: $(OUT)/dockerd.log)"; \
	setsid nohup dockerd --storage-driver=vfs >$(OUT)/dockerd.log 2>&1 </dev/null & \
	for i in $$(seq 1 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done; \
	echo "docker: dockerd did not come up within 60s, see $(OUT)/dockerd.log"

# Debian packages for PC/SC: libpcsclite-dev to compile rigs/nfc/pcsc (cgo, ebfe/scard),
# pcscd + vsmartcard-vpcd for the emulated readers (fixtures/pcscd), pcsc-tools as an
# independent client. As root: installed when missing. Otherwise it only says what to
# install (the needs:pcscd tests then skip on a laptop and fail in CI).
PCSC_PKGS := pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools
deps:
	@missing=$$(for p in $(PCSC_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "deps: missing Debian packages:" $$missing; \
		echo "deps: run: sudo apt-get install -y --no-install-recommends $(PCSC_PKGS)"; exit 0; fi; \
	echo "deps: installing" $$missing; \
	DEBIAN_FRONTEND=noninteractive apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(PCSC_PKGS)

# Every test: static checks, unit tests of every package, the emulated suites, then
# the suites that need pcscd and Docker.
test: vet unit emulate integration

vet: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(GOTAGS) $(PKGS) ./suites/...

unit: docker deps
	$(GO) test $(GOTAGS) -count=1 -timeout 10m $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(OUT)
