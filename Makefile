GO ?= go

.PHONY: help dev build test race vet fmt fuzz

help: ## list targets
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'

dev: ## run shiftkey dev (installs PostgreSQL first when it is missing)
	@./scripts/ensure-postgres
	$(GO) run ./cmd/shiftkey dev $(ARGS)

build: ## build bin/shiftkey
	$(GO) build -o bin/shiftkey ./cmd/shiftkey

test: ## every test, with the race detector (installs PostgreSQL and the clients the tests drive when missing: scripts/ensure-test-tools)
	@./scripts/ensure-postgres
	@./scripts/ensure-test-tools
	$(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./... # macOS users run shiftkey dev; the event relay is Linux only
	GOOS=linux GOARCH=arm64 $(GO) vet ./... # Graviton and other arm64 Linux hosts
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) test -race -shuffle=on -count=1 -timeout 15m ./...
	@if command -v qemu-aarch64-static >/dev/null; then \
	  echo 'GOARCH=arm64 $(GO) test -exec qemu-aarch64-static ./scram # the arm64 assembly, emulated'; \
	  GOARCH=arm64 $(GO) test -count=1 -exec qemu-aarch64-static ./scram; \
	else echo 'qemu-user-static is missing: scram'"'"'s arm64 assembly was not run (scripts/ensure-test-tools installs it)'; fi

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	for t in FuzzParse:./sigv4 FuzzParsePolicy:./iam FuzzServer:./scram FuzzStartup:./pgwire; do \
	  $(GO) test -run='^$$' -fuzz="^$${t%%:*}$$" -fuzztime=$${FUZZTIME:-30s} $${t#*:} || exit 1; done
