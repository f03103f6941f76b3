# Berth's entry points. `make test` is what CI runs.
SHELL := /bin/bash
SWIFT ?= swift
export PATH := /opt/swift/usr/bin:$(PATH)
PREFIX ?= /usr/local
SYSTEMD_DIR ?= /etc/systemd/system
# Where gdb looks for a binary's debuglink: <debug-file-directory><dir of the binary>/NAME.debug.
DEBUG_DIR ?= /usr/lib/debug
DIST ?= dist

.PHONY: build release test bench install clean lint format warnings

build:
	$(SWIFT) build

# Release builds are fully static executables (the Swift standard library, Foundation and the C
# libraries linked in: one file to copy onto a host, fast start). `dist/` gets them stripped, with
# their symbols beside them in `*.debug` for crash analysis (gdb finds them through the debuglink).
release:
	$(SWIFT) build -c release --static-swift-stdlib
	scripts/strip-release.sh .build/release $(DIST) berth berth-runtime berth-monitor

# Puts the stripped binaries and the systemd unit where a user expects them (run `make release` first).
install:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(DEBUG_DIR)$(PREFIX)/bin $(DESTDIR)$(SYSTEMD_DIR)
	install -m 0755 $(DIST)/berth $(DIST)/berth-runtime $(DIST)/berth-monitor $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(DIST)/berth.debug $(DIST)/berth-runtime.debug $(DIST)/berth-monitor.debug $(DESTDIR)$(DEBUG_DIR)$(PREFIX)/bin/
	install -m 0644 packaging/systemd/berth-server.service $(DESTDIR)$(SYSTEMD_DIR)/
	install -m 0644 packaging/systemd/berth-restore.service $(DESTDIR)$(SYSTEMD_DIR)/
	install -m 0644 packaging/systemd/berth-engine.service $(DESTDIR)$(SYSTEMD_DIR)/
	@echo "installed; start with: systemctl daemon-reload && systemctl enable --now berth-server"

# One test at a time: the API and control-plane suites host servers in the test process and call
# kubectl/curl synchronously, so two of them at once can occupy both of this 2-core machine's
# cooperative threads and starve each other's servers.
test: build
	$(SWIFT) test --no-parallel

# Style: swift-format (in the toolchain) with the checked-in .swift-format; CI runs `make lint`.
# Generated files opt out with `// swift-format-ignore-file` (their generators own their layout).
lint:
	$(SWIFT) format lint --strict --recursive --parallel Sources Tests Package.swift

format:
	$(SWIFT) format format --in-place --recursive --parallel Sources Tests Package.swift

# The project's own targets build without warnings (dependencies' warnings are theirs). CI builds from
# a fresh clone, so its log holds every warning there is. Here a file is compiled (and warned about)
# only when it changed, so every file changed since this target last passed is touched first: a file
# an earlier plain build compiled would otherwise pass unseen (a warning once failed CI that way).
warnings:
	mkdir -p .build
	if [ -f .build/warnings.stamp ]; then find Sources Tests -name '*.swift' -newer .build/warnings.stamp -exec touch {} +; \
	else find Sources Tests -name '*.swift' -exec touch {} +; fi
	$(SWIFT) build --build-tests 2>&1 | tee .build/build.log; test $${PIPESTATUS[0]} -eq 0
	scripts/check-build-warnings.sh .build/build.log
	touch .build/warnings.stamp

# Benchmarks (not tests): Berth beside runc, crun, skopeo+umoci, etcd; see README for the figures.
bench:
	scripts/bench.sh

clean:
	rm -rf .build $(DIST)
