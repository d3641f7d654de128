# evidock — two commands on a fresh Debian 12 machine:
#   make run    build, then show the pipeline on the embedded default (local store, generated key)
#   make test   every check and test (what CI runs)
# Both install what they need first, only when it is missing (scripts/deps.sh).

CARGO      ?= cargo
DATA_DIR   ?= ./evidock-data
FUZZ_SECS  ?= 60
export CARGO_TERM_COLOR ?= never
# One build from a clean clone: incremental state would only add gigabytes of target/ that CI
# never reuses (set CARGO_INCREMENTAL=1 to keep it when iterating with make).
export CARGO_INCREMENTAL ?= 0

.PHONY: verifier run test deps-build deps-run deps-test lint fmt-check clippy deny verify-is-light unit crash-points-apart fuzz-build fuzz bench clean usb-e2e deb deb-test deps-deb

run: deps-run
	$(CARGO) build --release --bins
	DATA_DIR=$(DATA_DIR) BIN=target/release scripts/demo.sh

test: deps-test fmt-check clippy deny verify-is-light unit deb-test crash-points-apart fuzz-build usb-e2e
	@echo "make test: all passed"

deps-build:
	scripts/deps.sh build

deps-run:
	scripts/deps.sh run

deps-test:
	scripts/deps.sh test

deps-deb:
	scripts/deps.sh deb

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy -p evidock-ingest --no-default-features --locked -- -D warnings

# The dependency tree (deny.toml): permissive licences, one version of each crate but for the
# pairs named there with their reasons, crates.io only. Advisories need a database these
# machines cannot fetch, so they are not checked here.
deny:
	$(CARGO) deny --locked --offline check licenses bans sources

# Invariant 7: checking evidence offline needs no FFmpeg, libusb, object store, network or
# async runtime. The verifier's normal dependency tree must not contain any of them.
HEAVY := ffmpeg-next ffmpeg-sys-next rusb libusb1-sys notify object_store tokio reqwest hyper
verify-is-light:
	@tree=$$($(CARGO) tree -p evidock-verify -e normal --prefix none --locked | awk '{print $$1}' | sort -u); \
	bad=$$(for c in $(HEAVY); do echo "$$tree" | grep -qx "$$c" && echo "$$c"; done); \
	if [ -n "$$bad" ]; then echo "verify/ depends on: $$bad — invariant 7 says it must stay light" >&2; exit 1; fi; \
	echo "verify-is-light: evidock-verify depends on none of: $(HEAVY)"

unit:
	$(CARGO) build --workspace --bins --locked
	$(CARGO) test --workspace --locked

# Crash points (store/src/crash.rs) live only in the build kept apart in target/crash/ (the crash
# harness, tests/tests/e2e/crash_points, builds it there). The station's own binary must hold none of
# their names: checked on the debug build, which keeps every string a release build would.
crash-points-apart:
	@$(CARGO) build --bin evidock --locked --quiet
	@if grep -aq 'crash-point ' target/debug/evidock; then echo "target/debug/evidock holds crash points: the crash-points feature leaked into the normal build" >&2; exit 1; fi
	@scripts/crash-build.sh
	@n=0; for p in $$(grep -rhoE 'crash_point!\("[a-z.-]+"\)' store/src ingest/src | sed -E 's/.*\("([^"]+)"\)/\1/' | sort -u); do \
	  grep -aqF "crash-point $$p" target/crash/debug/evidock || { echo "target/crash/debug/evidock lacks crash point $$p: this check could not fail" >&2; exit 1; }; n=$$((n+1)); done; \
	echo "crash-points-apart: target/debug/evidock holds no crash point; target/crash/debug/evidock holds all $$n"

# The Debian package (docs/install.md): target/deb/evidock_<version>_<arch>.deb, the release
# build by default (DEB_PROFILE=debug packages target/debug as it is).
DEB_PROFILE ?= release
deb: deps-deb
	DEB_PROFILE=$(DEB_PROFILE) CARGO=$(CARGO) scripts/deb.sh

# The package of the debug build (made by `unit`) installed on this machine, its user, files,
# unit and udev rules checked, a simulated camera docked through the unit's own ExecStart as
# user evidock, then removed and purged (evidence kept). Needs root; no running systemd needed.
deb-test:
	CARGO=$(CARGO) tests/deb/run.sh

# USB end to end (docs/usb-testing.md): the real `evidock dock` in a QEMU guest, an emulated ZFY
# camera (dummy_hcd gadget) and a usb-storage stick hot-plugged into it.
usb-e2e:
	CARGO=$(CARGO) tests/usb/run.sh

fuzz-build:
	cd fuzz && $(CARGO) fuzz build --sanitizer none --dev

fuzz: deps-test
	cd fuzz && for t in $$($(CARGO) fuzz list); do \
	  $(CARGO) fuzz run --sanitizer none $$t -- -max_total_time=$(FUZZ_SECS) || exit 1; done

# The stand-alone, statically linked evidock-verify for court PCs (pure Rust: no FFmpeg, libusb,
# network or async runtime). Windows: `rustup target add x86_64-pc-windows-gnu`, install
# gcc-mingw-w64-x86-64, then VERIFIER_TARGET=x86_64-pc-windows-gnu make verifier.
VERIFIER_TARGET ?= x86_64-unknown-linux-gnu
verifier: deps-build
	RUSTFLAGS="-C target-feature=+crt-static" $(CARGO) build --locked --profile verifier -p evidock-verify --target $(VERIFIER_TARGET)
	@ls -l target/$(VERIFIER_TARGET)/verifier/evidock-verify* && sha256sum target/$(VERIFIER_TARGET)/verifier/evidock-verify*

bench:
	scripts/deps.sh bench
	scripts/bench.sh

clean:
	$(CARGO) clean
	rm -rf $(DATA_DIR)
