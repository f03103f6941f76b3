# Berth's entry points. `make test` is what CI runs.
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: build release test bench clean

build:
	$(SWIFT) build

# Release builds link the Swift standard library statically: one binary to copy, fast start.
release:
	$(SWIFT) build -c release --static-swift-stdlib

# One test at a time: the API and control-plane suites host servers in the test process and call
# kubectl/curl synchronously, so two of them at once can occupy both of this 2-core machine's
# cooperative threads and starve each other's servers.
test: build
	$(SWIFT) test --no-parallel

# Benchmarks (not tests): Berth beside runc, crun, skopeo+umoci, etcd; see README for the figures.
bench:
	scripts/bench.sh

clean:
	rm -rf .build
