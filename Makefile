# tap2join — see README.md. Two commands matter:
#   make emulate   the emulated end-to-end suites (no hardware, no Docker)
#   make test      every test
SHELL := /bin/bash
GO    ?= go
GINKGO := $(GO) tool ginkgo
OUT   ?= out
RIG   ?= rigs/emulated.yaml
export TAP2JOIN_RIG := $(RIG)

.PHONY: all emulate test unit vet fmt suites clean

all: test

# The emulated end-to-end flow: Ginkgo JSON + JUnit under out/emulate/.
emulate:
	@mkdir -p $(OUT)/emulate
	$(GINKGO) run --label-filter='!needs:docker && !needs:pcscd' \
		--json-report=report.json --junit-report=junit.xml --output-dir=$(OUT)/emulate \
		--poll-progress-after=30s ./suites/...
	@echo "reports: $(OUT)/emulate/report.json $(OUT)/emulate/junit.xml"

# Every test: static checks, unit tests of every package, then the suites.
test: vet unit emulate

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 10m $$($(GO) list ./... | grep -v /suites/)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(OUT)
