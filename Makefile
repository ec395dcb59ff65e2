# tap2join — see README.md (make help lists targets and variables). Two commands matter:
#   make emulate   the emulated end-to-end suites (no hardware, no Docker)
#   make test      every test
SHELL := /bin/bash
GO    ?= go
GINKGO := $(GO) tool ginkgo
OUT   ?= out
# Where the run driver, t2jreport and rigcheck are built (not under OUT: a run checks
# that OUT is writable itself, and says so in one line).
BIN   ?= out/bin
RIG   ?= rigs/emulated.yaml
export TAP2JOIN_RIG := $(RIG)
# The limits a run is judged against (format: reports/README.md): LIMITS=path or
# LIMITS=name (reports/limits/<name>.yaml). Default: emulate reports/limits/emulated.yaml,
# lab reports/limits/<rig name>.yaml. The driver gives the suites the resolved file
# as TAP2JOIN_LIMITS (reports.Gate reads it).
LIMITS ?=
# LABELS: a Ginkgo label filter (lab: the specs to run; emulate: combined with its own).
# BASELINE: an earlier run's report.json to compare with (t2jreport -baseline).
# GRACE: after Ctrl-C / SIGTERM / SIGHUP, how long ginkgo may take to stop (default 30s).
LABELS ?=
BASELINE ?=
GRACE ?=
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
# Unit tests: every package but the Ginkgo suites (suites/kit, their shared helpers, has plain tests).
PKGS = $$($(GO) list $(GOTAGS) ./... | grep -v /suites/ $(if $(TAGS),| grep -v /rigs/nfc/pcsc)) ./suites/kit


.PHONY: all help emulate emulate-st25ftm lab flash test unit fuzz fuzz-short vet fmt suites clean docker containers integration deps

all: test

help:
	@echo 'Targets:'
	@echo '  make emulate     the emulated suites on RIG, judged against reports/limits/emulated.yaml (or LIMITS);'
	@echo '                   each run in its own folder, OUT/emulate/<run id> (OUT/emulate/latest: the newest)'
	@echo '  make emulate-st25ftm'
	@echo '                   the provisioning, faults and ftm suites with the board speaking ST25FTM (rigs/emulated-st25ftm.yaml)'
	@echo '  make lab RIG=rigs/lab-<bench>.yaml'
	@echo '                   every suite on a bench, judged against reports/limits/<rig name>.yaml (or LIMITS); OUT/lab/<run id>'
	@echo '  make flash RIG=rigs/lab-<bench>.yaml'
	@echo '                   flash the boards that have a flash part (openocd, stm32programmer, st-flash) and print the tool output'
	@echo '  make test        vet + unit + fuzz-short + emulate + emulate-st25ftm + integration (what CI runs: .ci/run)'
	@echo '  make fuzz        every fuzz target for FUZZTIME (default 60s) each; OUT/fuzz/summary.tsv (make fuzz-short: FUZZTIME_SHORT, 5s)'
	@echo '  make vet         gofmt check and go vet'
	@echo '  make unit        unit tests of every package (not the suites)'
	@echo '  make integration the suites that need pcscd + vpcd or Docker, judged (wall clock) against reports/limits/integration.yaml; runs in OUT/integration/<run id>'
	@echo '  make containers  only the Docker-backed specs (an integration run, label needs:docker)'
	@echo '  make deps        install the PC/SC Debian packages (as root)'
	@echo '  make docker      install and start dockerd (as root)'
	@echo '  make fmt         gofmt -w'
	@echo '  make clean       remove OUT'
	@echo '  make help        this'
	@echo 'Variables (make VAR=value):'
	@echo '  RIG=$(RIG)     rig file (lab: required, with a name:)'
	@echo '  LIMITS=$(LIMITS)     limits file or name (reports/limits/<name>.yaml); default emulate: emulated, integration: integration, lab: the rig name'
	@echo '  LABELS=$(LABELS)     Ginkgo label filter (lab: which specs; emulate: narrows !needs:docker && !needs:pcscd)'
	@echo '  BASELINE=$(BASELINE)   an earlier run'"'"'s report.json to compare with (t2jreport -baseline)'
	@echo '  OUT=$(OUT)     output base: runs in OUT/<mode>/<run id>, OUT/<mode>/latest links the newest'
	@echo '  BIN=$(BIN)  where t2jrun, t2jreport and rigcheck are built'
	@echo '  GRACE=$(GRACE)      how long ginkgo may take to stop after Ctrl-C/SIGTERM/SIGHUP (default 30s)'
	@echo '  GO=$(GO)        the go command'
	@echo 'Environment: TAP2JOIN_RUN_ID names the run folder (default: UTC time + random); CI=true and'
	@echo '  TAP2JOIN_REQUIRE=pcscd,docker make missing parts fail; the rest: README.md "Environment".'
	@echo 'Exit status of emulate, integration and lab (the driver'"'"'s; make prints it as "Error N" and itself exits 2):'
	@echo '  0 pass or marginal, 1 fail, 2 bad input (nothing ran), 3 interrupted.'

# The run driver (reports/cmd/t2jrun) and t2jreport, built into $(BIN): go build
# relinks only what changed (up to date: under a second), and with GOTMPDIR on the
# same file system it renames each new binary into place, so two runs at once never
# see a half-written one. Then the driver replaces the shell (exec): make's signals
# reach it, and its exit status is the recipe's. $(1): the driver's flags.
define t2jrun
@mkdir -p $(BIN)/.tmp && \
	{ GOTMPDIR=$(abspath $(BIN))/.tmp $(GO) build $(GOTAGS) -o $(BIN)/ ./reports/cmd/t2jrun ./reports/cmd/t2jreport || \
	  { echo "$@: reports/cmd/t2jrun or reports/cmd/t2jreport does not build"; exit 2; }; } && \
	exec $(BIN)/t2jrun -go '$(GO)' -out '$(OUT)' -t2jreport $(BIN)/t2jreport $(if $(TAGS),-tags '$(TAGS)') \
		$(if $(LIMITS),-limits '$(LIMITS)') $(if $(LABELS),-labels '$(LABELS)') \
		$(if $(BASELINE),-baseline '$(BASELINE)') $(if $(GRACE),-grace '$(GRACE)') $(1)
endef

# The emulated end-to-end flow (label filter !needs:docker && !needs:pcscd), judged
# against $(LIMITS) (default reports/limits/emulated.yaml). Inputs are checked before
# any spec runs. Each run gets its own folder, $(OUT)/emulate/<run id> ($(OUT)/emulate/latest
# links the newest): report.json (Ginkgo), run.json (run metadata), junit.xml, report.html,
# summary.md, frames.jsonl. Exit status (make: "Error N"): 0 pass or marginal, 1 fail,
# 2 bad input, 3 interrupted. reports/cmd/t2jrun/main.go says how.
emulate: deps
	$(call t2jrun,-mode emulate -rig '$(RIG)')

# The end-to-end (provisioning), faults and ftm suites again with the board
# speaking ST's ST25FTM over the mailbox (rigs/emulated-st25ftm.yaml; SPEC.md §8),
# judged against reports/limits/emulated-st25ftm.yaml (the rig's name). Its run
# folder is under $(OUT)/emulate/ too.
ST25FTM_SUITES := ./suites/provisioning ./suites/faults ./suites/ftm
emulate-st25ftm: deps
	$(call t2jrun,-mode emulate -rig rigs/emulated-st25ftm.yaml $(ST25FTM_SUITES))

# A lab run: every suite on a bench's rig file (its name: is required), judged against
# reports/limits/<rig name>.yaml (or LIMITS=...), ginkgo --timeout=60m; run folders
# under $(OUT)/lab/. LABELS=... narrows the specs (a Ginkgo label filter).
#   make lab RIG=rigs/lab-<bench>.yaml
lab: deps
	$(call t2jrun,-mode lab $(if $(filter file,$(origin RIG)),,-rig '$(RIG)'))

# Flash the boards of RIG that have a flash part (rig file `flash:`: openocd,
# stm32programmer or st-flash through the board's ST-LINK), printing the tool's
# output; rigs.Up does the same before it checks a board's version. Exit 1 when a
# board fails (a missing probe names the ST-LINKs on the USB bus).
flash: deps
	$(GO) run $(GOTAGS) ./rigs/cmd/flash '$(RIG)'

# The suites that need real parts running beside them: pcscd + vpcd (emulated
# PC/SC readers, label needs:pcscd) and Docker (network: containers, label
# needs:docker), judged against reports/limits/integration.yaml — wall-clock
# limits, as these paths cross real processes. Run folders under
# $(OUT)/integration/<run id> (latest links the newest), exit status as for emulate.
# In CI (.ci/run sets CI=true and TAP2JOIN_REQUIRE) a missing part fails these
# specs instead of skipping them.
integration: docker deps
	$(call t2jrun,-mode integration)

# Only the Docker-backed specs (a make integration narrowed to needs:docker).
containers: docker
	$(call t2jrun,-mode integration -labels needs:docker)

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
# independent client; openocd + stlink-tools, the flashing programs of rigs/flash; etcd-server
# for rigs/lease's etcd backend tests. As root: installed when missing. Otherwise it only says what to
# install (the needs:pcscd tests then skip on a laptop and fail in CI).
PCSC_PKGS := pcscd libpcsclite-dev vsmartcard-vpcd pcsc-tools
# The flashing programs rigs/flash drives (its tests run them without a probe), the
# power and reset tools of rigs/power (uhubctl, libgpiod's gpioset/gpioinfo), and
# etcd, the lab-wide lease store (rigs/lease's etcd tests start their own etcd).
BENCH_PKGS := openocd stlink-tools etcd-server uhubctl gpiod
deps:
	@missing=$$(for p in $(PCSC_PKGS) $(BENCH_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "deps: missing Debian packages:" $$missing; \
		echo "deps: run: sudo apt-get install -y --no-install-recommends $(PCSC_PKGS) $(BENCH_PKGS)"; exit 0; fi; \
	echo "deps: installing" $$missing; \
	DEBIAN_FRONTEND=noninteractive apt-get update && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(PCSC_PKGS) $(BENCH_PKGS)

# Every test: static checks, unit tests of every package, the emulated suites (on
# tap2join framing, then on ST25FTM), then the suites that need pcscd and Docker.
test: vet unit fuzz-short emulate emulate-st25ftm integration

# Every fuzz target (each func Fuzz… of the test files) for FUZZTIME each; summary in
# $(OUT)/fuzz/summary.tsv. make test runs each for FUZZTIME_SHORT, without
# minimising new inputs (the time goes to executions).
FUZZTIME ?= 60s
FUZZTIME_SHORT ?= 5s
fuzz: deps
	GO="$(GO)" GOTAGS="$(GOTAGS)" .ci/fuzz $(FUZZTIME) 10s $(OUT)/fuzz $(PKGS)

fuzz-short: deps
	GO="$(GO)" GOTAGS="$(GOTAGS)" .ci/fuzz $(FUZZTIME_SHORT) 0 $(OUT)/fuzz-short $(PKGS)

vet: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet $(GOTAGS) $(PKGS) ./suites/...

unit: docker deps
	$(GO) test $(GOTAGS) -count=1 -timeout 10m $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(OUT)
