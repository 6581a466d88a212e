# The two commands of the README: `go run .` runs the server; `make test` tests it.
GO ?= go

.PHONY: run test vet generate check-generate

run:
	$(GO) run .

## test: vet, then every Go test with the race detector against the embedded database.
test: vet
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...

## generate: regenerate gqlgen code from schema.graphqls.
generate:
	$(GO) generate ./...

## check-generate: fail if the committed generated code is not what go generate produces.
check-generate: generate
	git diff --exit-code -- graph/
