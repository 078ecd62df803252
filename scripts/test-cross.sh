#!/usr/bin/env bash
# `make test-cross`: the foreign builds, proven on this Linux machine as far as it can be.
#
# Usage: scripts/test-cross.sh [macos] [windows] [arm64]    (default: all three, in this order)
#
#   macos    clippy -D warnings for aarch64- and x86_64-apple-darwin (zig compiles ring's C; no link:
#            that needs Apple's SDK)
#   windows  clippy for x86_64-pc-windows-gnu; the Windows build's own test suite under wine; a real
#            mTLS session with the release .exe files against the local endpoint; the .exe loading a
#            PKCS#11 module (.dll, built by mingw)
#   arm64    the aarch64-unknown-linux-musl build's own test suite under qemu-user; the same session
#            with the release binaries; the aarch64 glibc 2.17 build (wheels, npm) under qemu-user
#            with Debian's arm64 glibc: the session, and loading a PKCS#11 module (built by zig)
#
# The session (examples/mtls_endpoint.rs, native, on 127.0.0.1): initialize, tools/call, stdin EOF
# ends the bridge with exit 0; a certificate the endpoint refuses gets the diagnosis and exit 1;
# without --tls-ca the OS trust store is loaded (the Windows store under wine) and the diagnosis
# says the server's CA is not in it; the test client reports the server. The release binaries come from `make dist` when it ran, else they
# are built here.
#
# Wine: Debian 12's wine has no bcryptprimitives.dll, which Rust's std needs (ProcessPrng); a
# test-only stand-in (scripts/cross/bcryptprimitives.c) is built with mingw and put beside the .exe
# files. qemu-user: no binfmt_misc here, so an emulated test starts the binaries through
# MCP_TEST_RUNNER (tests/support/mod.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
source scripts/cross/tools.sh

[ $# -gt 0 ] && parts=("$@") || parts=(macos windows arm64)
export CARGO_TERM_COLOR=never
# A test binary that hangs is ended (and fails) instead of blocking CI.
SUITE_TIMEOUT=${SUITE_TIMEOUT:-900}
mkdir -p target
timings=()
step_start=0
step() { step_start=$(date +%s); printf '\n== test-cross: %s\n' "$*"; }
step_done() { timings+=("$(printf '%-44s %5ss' "$1" "$(($(date +%s) - step_start))")"); }
fail() { echo "test-cross: FAIL: $*" >&2; exit 1; }

# ---- the session ------------------------------------------------------------------------------

ENDPOINT_PID=
endpoint_start() {
  nice -n 10 cargo build --release --quiet --example mtls_endpoint
  local out=target/test-cross-endpoint.out
  target/release/examples/mtls_endpoint >"$out" 2>&1 &
  ENDPOINT_PID=$!
  for _ in $(seq 1 200); do
    grep -q '^PORT=' "$out" 2>/dev/null && break
    sleep 0.05
  done
  PORT=$(sed -n 's/^PORT=//p' "$out")
  [ -n "$PORT" ] || fail "the local mTLS endpoint did not start: $(cat "$out")"
  URL="https://127.0.0.1:$PORT/mcp"
}
cleanup() {
  [ -n "$ENDPOINT_PID" ] && kill "$ENDPOINT_PID" 2>/dev/null || true
  return 0
}
trap cleanup EXIT

# session LABEL CA_PATH RUNNER... -- BRIDGE CLIENT
# CA_PATH is passed as given (a Windows path for the .exe), the other files relative to the repo.
session() {
  local label=$1 ca=$2
  shift 2
  local runner=()
  while [ "$1" != -- ]; do runner+=("$1"); shift; done
  local bridge=$2 client=$3
  local tls=(--tls-cert fixtures/client-rsa.crt --tls-key fixtures/client-rsa.key --tls-ca "$ca")
  local log=target/test-cross-$label.stderr line
  local started=$(date +%s)

  echo "$label: mcp-secure-remote-client (server report)"
  ${runner[@]+"${runner[@]}"} "$client" "$URL" "${tls[@]}" >"target/test-cross-$label.client" 2>&1 ||
    fail "$label: the test client failed: $(tail -5 "target/test-cross-$label.client")"
  grep -q 'echo' "target/test-cross-$label.client" || fail "$label: the client listed no echo tool"

  echo "$label: mcp-secure-remote: initialize, tools/call, stdin EOF"
  coproc BRIDGE { exec ${runner[@]+"${runner[@]}"} "$bridge" "$URL" "${tls[@]}" 2>"$log"; }
  local pid=$BRIDGE_PID in=${BRIDGE[1]} out=${BRIDGE[0]}
  recv() { IFS= read -r -t 60 line <&"$out" || fail "$label: no answer from the bridge: $(cat "$log")"; }
  printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test-cross","version":"1"}}}' >&"$in"
  recv
  [[ $line == *'"serverInfo"'* ]] || fail "$label: initialize answered $line"
  printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/initialized"}' >&"$in"
  printf '%s\n' "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hello from $label\"}}}" >&"$in"
  recv
  [[ $line == *"\"hello from $label\""* ]] || fail "$label: tools/call answered $line"
  echo "  tools/call answered: $line"
  exec {in}>&- # stdin EOF: how an MCP client ends its server
  local status=0
  wait "$pid" || status=$?
  [ "$status" = 0 ] || fail "$label: exit status $status after stdin EOF: $(cat "$log")"
  echo "  exit 0 after stdin EOF"

  echo "$label: a client certificate the server refuses"
  local refused=(--tls-cert fixtures/rogue-client.crt --tls-key fixtures/rogue-client.key --tls-ca "$ca")
  status=0
  printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test-cross","version":"1"}}}' |
    ${runner[@]+"${runner[@]}"} "$bridge" "$URL" "${refused[@]}" >"target/test-cross-$label.refused" 2>"$log" ||
    status=$?
  [ "$status" = 1 ] || fail "$label: exit status $status with a refused certificate (expected 1)"
  grep -q 'refused the client certificate' "$log" ||
    fail "$label: no diagnosis of the refused certificate on stderr: $(cat "$log")"
  grep -q '"error"' "target/test-cross-$label.refused" || fail "$label: the initialize got no error answer"
  echo "  exit 1, stderr: $(grep -m1 'error:' "$log")"

  echo "$label: no --tls-ca: the OS trust store is loaded, and does not hold the test CA"
  status=0
  printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test-cross","version":"1"}}}' |
    ${runner[@]+"${runner[@]}"} "$bridge" "$URL" "${tls[@]:0:4}" --debug >/dev/null 2>"$log" || status=$?
  [ "$status" = 1 ] || fail "$label: exit status $status without --tls-ca (expected 1)"
  grep -Eq 'trusting [1-9][0-9]* system root' "$log" || fail "$label: no system roots loaded: $(cat "$log")"
  grep -q 'not signed by a CA in the OS trust store' "$log" || fail "$label: no trust diagnosis: $(cat "$log")"
  echo "  $(grep -m1 -o 'trusting [0-9]* system root certificate(s)' "$log"); exit 1 with the diagnosis"
  echo "$label: session passed in $(($(date +%s) - started)) s"
}

# pkcs11_probe LABEL CA_PATH MODULE_PATH RUNNER... -- CLIENT
# The release client loads a PKCS#11 module built for its platform from packaging/test/pkcs11-probe.c
# (a minimal module reporting one token, 'probe-token', and no keys: SoftHSM exists here only as a
# glibc x86_64 library) and names that token when the URI asks for another: the module was loaded
# (dlopen/LoadLibrary), and C_GetFunctionList, C_Initialize, C_GetSlotList and C_GetTokenInfo answered.
pkcs11_probe() {
  local label=$1 ca=$2 module=$3
  shift 3
  local runner=()
  while [ "$1" != -- ]; do runner+=("$1"); shift; done
  local client=$2 status=0 log=target/test-cross-$label.pkcs11
  echo "$label: the client loads a PKCS#11 module"
  ${runner[@]+"${runner[@]}"} "$client" "$URL" --tls-key 'pkcs11:token=mcp;object=client-rsa' \
    --tls-pkcs11-module "$module" --tls-ca "$ca" >"$log" 2>&1 || status=$?
  [ "$status" = 1 ] || fail "$label: exit status $status with the probe module (expected 1): $(cat "$log")"
  grep -q "tokens present: 'probe-token'" "$log" || fail "$label: the probe module's token was not listed: $(cat "$log")"
  echo "  exit 1, $(grep -m1 -o "no PKCS#11 token matches.*'probe-token'" "$log")"
}

# Run a cross-built test suite through cargo's runner; keeps cargo's summary lines.
suite() { # LABEL TARGET CARGO_SUBCOMMAND...
  local label=$1 target=$2
  shift 2
  set -o pipefail
  "$@" test --locked --target "$target" --workspace --all-targets 2>&1 | tee "target/test-cross-$label.txt"
  awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "%s suite: %d passed, %d failed, %d skipped\n", label, p, f, s }' \
    label="$label" "target/test-cross-$label.txt"
}

release_bins() { # TARGET CARGO_SUBCOMMAND...: the release binaries, unless `make dist` built them
  local target=$1 exe=
  shift
  [[ $target == *windows* ]] && exe=.exe
  [ -x "target/$target/release/mcp-secure-remote$exe" ] && [ -x "target/$target/release/mcp-secure-remote-client$exe" ] ||
    nice -n 10 "$@" --release --locked --bins --target "$target"
}

# ---- the parts --------------------------------------------------------------------------------

macos() {
  cross_need_zig test-cross
  for target in aarch64-apple-darwin x86_64-apple-darwin; do
    step "clippy $target (compiles everything, links nothing)"
    nice -n 10 cargo-zigbuild clippy --locked --target "$target" --workspace --all-targets -- -D warnings
    step_done "clippy $target"
  done
}

windows() {
  local target=x86_64-pc-windows-gnu
  cross_need_mingw test-cross
  step "clippy $target"
  nice -n 10 cargo clippy --locked --target $target --workspace --all-targets -- -D warnings
  step_done "clippy $target"

  step "build the Windows test suite and the wine stand-in DLL"
  nice -n 10 cargo test --locked --target $target --workspace --all-targets --no-run
  release_bins $target cargo build
  mkdir -p target/wine
  x86_64-w64-mingw32-gcc -O2 -shared -o target/wine/bcryptprimitives.dll scripts/cross/bcryptprimitives.c -lbcrypt
  x86_64-w64-mingw32-gcc -O2 -shared -o target/wine/pkcs11-probe.dll packaging/test/pkcs11-probe.c
  for dir in debug debug/deps debug/examples release; do
    cp target/wine/bcryptprimitives.dll "target/$target/$dir/"
  done
  export WINEPREFIX="$repo/target/wine/prefix" WINEDEBUG=-all
  # The first start creates the prefix (about 15 s); done here so that no test pays for it.
  "$WINE" "target/$target/release/mcp-secure-remote.exe" --version
  step_done "build Windows tests + wine setup"

  step "the Windows test suite under wine"
  CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="timeout -k 10 $SUITE_TIMEOUT $WINE" suite windows $target nice -n 10 cargo
  step_done "Windows test suite under wine"

  step "a session with the Windows .exe files under wine"
  endpoint_start
  # A Windows path with a drive letter for the CA (wine's Z: is /), relative ones for the rest.
  local ca_windows="Z:${repo//\//\\}\\fixtures\\ca.crt"
  session windows "$ca_windows" "$WINE" -- "target/$target/release/mcp-secure-remote.exe" \
    "target/$target/release/mcp-secure-remote-client.exe"
  pkcs11_probe windows "$ca_windows" "Z:${repo//\//\\}\\target\\wine\\pkcs11-probe.dll" "$WINE" -- \
    "target/$target/release/mcp-secure-remote-client.exe"
  cleanup
  ENDPOINT_PID=
  "${WINE%/*}/wineserver" -k 2>/dev/null || true
  step_done "Windows session under wine"
}

arm64() {
  local target=aarch64-unknown-linux-musl
  cross_need_zig test-cross
  command -v "$QEMU_AARCH64" >/dev/null || fail "needs qemu-user: apt-get install qemu-user"
  step "build the arm64 test suite (cargo-zigbuild)"
  nice -n 10 cargo-zigbuild test --locked --target $target --workspace --all-targets --no-run
  release_bins $target cargo-zigbuild zigbuild
  step_done "build arm64 tests"

  step "the arm64 test suite under qemu-user"
  CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER="timeout -k 10 $SUITE_TIMEOUT $QEMU_AARCH64" \
    MCP_TEST_RUNNER="$QEMU_AARCH64" suite arm64 $target nice -n 10 cargo-zigbuild
  step_done "arm64 test suite under qemu-user"

  step "a session with the arm64 binaries under qemu-user"
  endpoint_start
  file "target/$target/release/mcp-secure-remote" | grep -q 'ARM aarch64.*statically linked' ||
    fail "target/$target/release/mcp-secure-remote is not a static aarch64 binary"
  session arm64 fixtures/ca.crt "$QEMU_AARCH64" -- "target/$target/release/mcp-secure-remote" \
    "target/$target/release/mcp-secure-remote-client"
  cleanup
  ENDPOINT_PID=
  step_done "arm64 session under qemu-user"

  # The glibc 2.17 build of the wheels and npm (`make dist`), with Debian's arm64 glibc as the
  # loader's root (qemu-user -L): it runs, and it loads a PKCS#11 module built for it by zig.
  local gnu=target/aarch64-unknown-linux-gnu/release
  step "the arm64 glibc build under qemu-user: a session, and it loads a PKCS#11 module"
  [ -d "$ARM64_GLIBC_ROOT/lib" ] || fail "needs Debian's arm64 glibc in $ARM64_GLIBC_ROOT: apt-get install libc6-arm64-cross"
  [ -x "$gnu/mcp-secure-remote" ] && [ -x "$gnu/mcp-secure-remote-client" ] ||
    nice -n 10 cargo-zigbuild zigbuild --release --locked --bins --target aarch64-unknown-linux-gnu.2.17
  python3 -m ziglang cc -target aarch64-linux-gnu.2.17 -shared -fPIC -O2 -o target/pkcs11-probe-aarch64.so \
    packaging/test/pkcs11-probe.c
  endpoint_start
  session arm64-glibc fixtures/ca.crt "$QEMU_AARCH64" -L "$ARM64_GLIBC_ROOT" -- "$gnu/mcp-secure-remote" \
    "$gnu/mcp-secure-remote-client"
  pkcs11_probe arm64-glibc fixtures/ca.crt target/pkcs11-probe-aarch64.so "$QEMU_AARCH64" -L "$ARM64_GLIBC_ROOT" -- \
    "$gnu/mcp-secure-remote-client"
  cleanup
  ENDPOINT_PID=
  step_done "arm64 glibc session + PKCS#11 module under qemu-user"
}

for part in "${parts[@]}"; do
  case "$part" in
    macos | windows | arm64) "$part" ;;
    *) echo "usage: scripts/test-cross.sh [macos] [windows] [arm64]" >&2; exit 2 ;;
  esac
done
printf '\n== test-cross timings\n'
printf '%s\n' "${timings[@]}"
echo "test-cross: passed (${parts[*]})"
