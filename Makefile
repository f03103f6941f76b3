# Berth's entry points. `make test` is what CI runs.
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: build release test bench clean

build:
	$(SWIFT) build

# Release builds link the Swift standard library statically: one binary to copy, fast start.
release:
	$(SWIFT) build -c release --static-swift-stdlib

test: build
	$(SWIFT) test

# Benchmarks (not tests): Berth beside runc, crun, skopeo+umoci, etcd; see README for the figures.
bench:
	scripts/bench.sh

clean:
	rm -rf .build
