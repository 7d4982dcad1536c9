GO ?= go

.PHONY: help dev build test race vet fmt fuzz

help: ## list targets
	@grep -E '^[a-z]+:.*## ' Makefile | sed 's/:.*## /\t/'

dev: ## run shiftkey dev (installs PostgreSQL first when it is missing)
	@./scripts/ensure-postgres
	$(GO) run ./cmd/shiftkey dev $(ARGS)

build: ## build bin/shiftkey
	$(GO) build -o bin/shiftkey ./cmd/shiftkey

test: ## every test, with the race detector (installs PostgreSQL, awscli and python3-boto3 when missing)
	@./scripts/ensure-postgres
	@./scripts/ensure-test-tools
	$(GO) vet ./...
	GOOS=darwin GOARCH=arm64 $(GO) vet ./... # macOS users run shiftkey dev; the event relay is Linux only
	GOOS=linux GOARCH=arm64 $(GO) vet ./... # Graviton and other arm64 Linux hosts
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) test -race -shuffle=on -count=1 -timeout 15m ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	for t in FuzzParse:./sigv4 FuzzParsePolicy:./iam FuzzServer:./scram FuzzStartup:./pgwire; do \
	  $(GO) test -run='^$$' -fuzz="^$${t%%:*}$$" -fuzztime=$${FUZZTIME:-30s} $${t#*:} || exit 1; done
