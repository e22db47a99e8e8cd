# gale's build. `make help` lists the targets.
GO      ?= go
BIN     := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/galevm/gale/pkg/version.Version=$(VERSION)

PREFIX  ?= /usr/local
SHARE   ?= /usr/share/gale

.PHONY: help build install test e2e lint bench image clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z0-9-]+:.*## /{printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build the binaries into bin/
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

install: build ## install gale, galed, the image catalog and snippets (root)
	install -D -m 0755 $(BIN)/gale $(DESTDIR)$(PREFIX)/bin/gale
	install -D -m 0755 $(BIN)/galed $(DESTDIR)$(PREFIX)/bin/galed
	install -d $(DESTDIR)$(SHARE)/images $(DESTDIR)$(SHARE)/cloudinit
	install -m 0644 images/*.yaml $(DESTDIR)$(SHARE)/images/
	install -m 0644 cloudinit/*.yaml $(DESTDIR)$(SHARE)/cloudinit/
	@$(BIN)/gale completion bash > /tmp/gale.bash && install -D -m 0644 /tmp/gale.bash $(DESTDIR)/usr/share/bash-completion/completions/gale

test: ## unit tests (no root, no VMs)
	$(GO) test -count=1 ./...

e2e: ## end-to-end tests on real VMs (root; builds the template if missing)
	scripts/e2e.sh

lint: ## gofmt, go vet, go mod tidy leaves no diff
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	@cp go.mod /tmp/gale-go.mod.bak; cp go.sum /tmp/gale-go.sum.bak; $(GO) mod tidy; \
	  if ! cmp -s go.mod /tmp/gale-go.mod.bak || ! cmp -s go.sum /tmp/gale-go.sum.bak; then \
	    echo "go mod tidy changed go.mod/go.sum: commit the tidy result"; cp /tmp/gale-go.mod.bak go.mod; cp /tmp/gale-go.sum.bak go.sum; exit 1; fi

bench: ## benchmarks (root; writes results to stdout, see docs/benchmarks.md)
	scripts/bench/run.sh
	scripts/bench/images.sh
	scripts/bench/clones.sh
	scripts/bench/lb.sh
	scripts/bench/sets.sh

image: ## build the default template (cached by recipe hash)
	scripts/build-image.sh images/debian-12.yaml

clean: ## remove build output
	rm -rf $(BIN)
