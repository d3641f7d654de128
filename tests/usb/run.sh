#!/usr/bin/env bash
# The USB end-to-end test (`make usb-e2e`): build the guest where its inputs changed, then boot
# it and run the checks. Prints `N passed, N failed`; exits non-zero on any failure.
#
#   tests/usb/run.sh [--measure N]       guest artefacts and logs in target/usb-e2e/
# Env: USB_E2E_WORK (default target/usb-e2e), and what build-guest.sh reads (CARGO, WORKSPACE,
#      CARGO_TARGET_DIR).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
W=${USB_E2E_WORK:-$ROOT/target/usb-e2e}
"$HERE/build-guest.sh" "$W"
exec python3 -u "$HERE/e2e.py" --work "$W" "$@"
