# The two commands of the README: `go run .` runs the server; `make test` tests it.
GO ?= go

.PHONY: run test vet staticcheck generate check-generate
# staticcheck at a pinned version, run without adding it to go.mod.
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

run:
	$(GO) run .

## test: vet and staticcheck, then every Go test with the race detector against the embedded database,
## a short fuzz of the document limits, then the client tests (e2e).
test: vet staticcheck
	$(GO) test -race -count=1 ./...
	$(GO) -C tools/bench vet ./...
	$(GO) -C tools/bench test -count=1 ./...
	$(MAKE) --no-print-directory fuzz-short
	$(MAKE) --no-print-directory e2e

## e2e: the client tests in e2e/ against the real server (embedded database, a free port): Apollo Client 4
## and urql (examples/), the Postman collection run by newman, the Playground in headless Chromium, sign-in
## with identity providers against the local OpenID Connect provider and GitHub stand-in (oidctest, githubtest).
## Needs Node.js 20+ and Debian's chromium at /usr/bin/chromium (CHROMIUM_PATH to use another).
.PHONY: e2e
e2e:
	@test -d e2e/node_modules || npm --prefix e2e ci
	$(GO) build -o e2e/.bin/authgql .
	$(GO) build -o e2e/.bin/oidctest ./internal/federation/oidctest/cmd/oidctest
	$(GO) build -o e2e/.bin/githubtest ./internal/federation/githubtest/cmd/githubtest
	AUTHGQL_BIN="$(CURDIR)/e2e/.bin/authgql" OIDCTEST_BIN="$(CURDIR)/e2e/.bin/oidctest" \
		GITHUBTEST_BIN="$(CURDIR)/e2e/.bin/githubtest" npm --prefix e2e test

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

## fuzz-short: fuzz the GraphQL document limits with 200,000 documents (about 20 s): every document goes
## through parse, limits, validation and complexity, and none may take a second. Then the access-token parser
## with 100,000 strings (a few seconds): Verify never panics nor takes a second, fails only with token_invalid or
## token_expired, and accepts only the tokens the test signed, byte for byte. `go test` runs only the seeds and
## the committed corpus (testdata/fuzz). The budget is a count, not a duration: a duration can fail with a bare
## "context deadline exceeded" and no input, a race in Go's fuzz coordinator (go.dev/issue/75804, fixed in Go 1.27).
.PHONY: fuzz-short
fuzz-short:
	$(GO) test -run='^$$' -fuzz=FuzzDocumentLimits -fuzztime=200000x ./graph/
	$(GO) test -run='^$$' -fuzz=FuzzVerify -fuzztime=100000x ./internal/token/

## generate: regenerate gqlgen code from schema.graphqls.
generate:
	$(GO) generate ./...

## check-generate: fail if the committed generated code is not what go generate produces.
check-generate: generate
	git diff --exit-code -- graph/

## bench: build the server, drive it through every load phase and print the table with the ratios to the
## limits measured in the same run (issue 7), then the soak; results also go to bench-results.json. Not part
## of test. The load generator is its own module (tools/bench), outside ./...
## Flags: make bench BENCHFLAGS="-cost 10 -duration 30s -soak 10m"; MONGODB_URI benches that database instead.
.PHONY: bench bench-short
bench:
	$(GO) -C tools/bench run ./cmd/bench -repo "$(CURDIR)" -go=$(GO) $(BENCHFLAGS)

## bench-short: the same with short phases and no soak, in about a minute.
bench-short:
	$(GO) -C tools/bench run ./cmd/bench -repo "$(CURDIR)" -go=$(GO) -short $(BENCHFLAGS)
