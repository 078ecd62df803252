#!/usr/bin/env bash
# Proves the premise of the FROM-scratch image without Docker: the static musl binary runs in an empty
# root that holds only itself and the test fixtures (no libc, no /etc/ssl, no shell), as an
# unprivileged user (65532, like the image), with an empty environment.
#
# Usage: scripts/scratch-test.sh [BINARY] [--endpoint auto|none|PORT]
#   BINARY      the static proxy binary [default: target/x86_64-unknown-linux-musl/release/mcp-secure-remote]
#   --endpoint  where to do a real MCP session (initialize + tools/call) from inside the empty root:
#                 auto  start `examples/mtls_endpoint.rs` if it exists, else skip that part [default]
#                 none  skip it
#                 PORT  an mTLS endpoint already listening on 127.0.0.1:PORT that trusts fixtures/ca.crt
#                       clients and has the `echo` tool
#
# Isolation: bubblewrap when installed (new user/pid/ipc namespaces; /dev and /proc as a container
# runtime provides them), otherwise chroot (as root) or `unshare -r` + chroot. The network namespace is
# shared on purpose: the bridge must reach 127.0.0.1.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
binary="$repo/target/x86_64-unknown-linux-musl/release/mcp-secure-remote"
endpoint=auto
while [ $# -gt 0 ]; do
  case "$1" in
    --endpoint) endpoint=${2:?--endpoint needs auto, none or a port}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) binary=$1; shift ;;
  esac
done

fail() { echo "scratch-test: FAIL: $*" >&2; exit 1; }
step() { echo "--- scratch-test: $*"; }

[ -x "$binary" ] || fail "no binary at $binary (run 'make musl' first)"
if file "$binary" | grep -q 'dynamically linked'; then
  fail "$binary is dynamically linked; it would not start in an empty root"
fi

work=$(mktemp -d)
endpoint_pid=
cleanup() {
  if [ -n "$endpoint_pid" ]; then kill "$endpoint_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The empty root: the binary and the fixtures, readable by the unprivileged user, and nothing else.
root="$work/root"
mkdir -p "$root/fixtures"
install -m 0755 "$binary" "$root/mcp-secure-remote"
# The test client, built beside the proxy, must start there too.
client="$(dirname "$binary")/mcp-secure-remote-client"
if [ -x "$client" ]; then install -m 0755 "$client" "$root/mcp-secure-remote-client"; fi
install -m 0444 "$repo"/fixtures/*.crt "$repo"/fixtures/*.key "$repo"/fixtures/*.p12 "$root/fixtures/"
step "empty root: $(cd "$root" && find . -type f | wc -l) files, $(du -sh "$root" | cut -f1) ($(ls "$root" | tr '\n' ' '))"
[ ! -e "$root/etc" ] && [ ! -e "$root/lib" ] && [ ! -e "$root/usr" ] || fail "the root is not empty"

# How to run a command inside the root as uid/gid 65532 with an empty environment:
#   in_root [NAME=VALUE...] /program [args...]
# SCRATCH_ISOLATION=bwrap|chroot|unshare forces one way (to test the fallbacks).
isolation=${SCRATCH_ISOLATION:-}
if [ -z "$isolation" ]; then
  if command -v bwrap >/dev/null && bwrap --bind "$root" / --unshare-user /mcp-secure-remote --version >/dev/null 2>&1; then
    isolation=bwrap
  elif [ "$(id -u)" = 0 ]; then
    isolation=chroot
  else
    isolation=unshare
  fi
fi
chroot_bin=$(command -v chroot || echo /usr/sbin/chroot)
in_root() {
  local vars=()
  while [[ "$1" != /* ]]; do vars+=("$1"); shift; done
  case "$isolation" in
    bwrap)
      local setenv=() var
      for var in ${vars[@]+"${vars[@]}"}; do setenv+=(--setenv "${var%%=*}" "${var#*=}"); done
      bwrap --bind "$root" / --dev /dev --proc /proc \
        --unshare-user --uid 65532 --gid 65532 --unshare-pid --unshare-ipc --unshare-uts \
        --die-with-parent --clearenv ${setenv[@]+"${setenv[@]}"} "$@" ;;
    chroot) env -i ${vars[@]+"${vars[@]}"} "$chroot_bin" --userspec=65532:65532 "$root" "$@" ;;
    unshare) env -i ${vars[@]+"${vars[@]}"} unshare -r "$chroot_bin" "$root" "$@" ;;
    *) fail "unknown SCRATCH_ISOLATION=$isolation (bwrap, chroot or unshare)" ;;
  esac
}
step "isolation: $isolation"

# A loopback port that was free a moment ago: connecting to it is refused.
closed_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

initialize='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"scratch-test","version":"1"}}}'

# Every stdout line must be a JSON-RPC message: the MCP client parses nothing else.
assert_json_rpc_lines() {
  python3 - "$1" <<'EOF' || fail "stdout is not JSON-RPC lines: $(cat "$1")"
import json, sys
for line in open(sys.argv[1]):
    assert json.loads(line)["jsonrpc"] == "2.0", line
EOF
}

step "--version"
version=$(in_root /mcp-secure-remote --version) || fail "--version exited $?"
echo "$version"
[[ "$version" == "mcp-secure-remote "* ]] || fail "unexpected --version output: $version"

if [ -x "$root/mcp-secure-remote-client" ]; then
  step "mcp-secure-remote-client --version"
  in_root /mcp-secure-remote-client --version || fail "mcp-secure-remote-client --version exited $?"
fi

step "--help"
in_root /mcp-secure-remote --help > "$work/help" || fail "--help exited $?"
grep -q -- '--tls-cert' "$work/help" || fail "--help does not mention --tls-cert"
grep -q 'MCP_REMOTE_TLS_CA' "$work/help" || fail "--help does not mention MCP_REMOTE_TLS_CA"

step "client certificate + --tls-ca, server refuses the connection"
code=0
echo "$initialize" | in_root /mcp-secure-remote "https://127.0.0.1:$closed_port/mcp" \
  --tls-cert /fixtures/client-rsa.crt --tls-key /fixtures/client-rsa.key --tls-ca /fixtures/ca.crt \
  > "$work/out" 2> "$work/err" || code=$?
cat "$work/out" "$work/err"
[ "$code" = 0 ] || fail "exit code $code at EOF, expected 0"
assert_json_rpc_lines "$work/out"
grep -q '"id":1' "$work/out" && grep -q '"error"' "$work/out" && grep -q 'refused' "$work/out" \
  || fail "expected a JSON-RPC error for id 1 mentioning 'refused'"

step "encrypted PKCS#12 from the environment, no --tls-ca: the built-in roots load"
code=0
echo "$initialize" | in_root MCP_REMOTE_TLS_PFX=/fixtures/client.p12 MCP_REMOTE_TLS_PASSPHRASE=fixture-pass \
  /mcp-secure-remote "https://127.0.0.1:$closed_port/mcp" --debug \
  > "$work/out" 2> "$work/err" || code=$?
cat "$work/out" "$work/err"
[ "$code" = 0 ] || fail "exit code $code at EOF, expected 0"
assert_json_rpc_lines "$work/out"
grep -q 'refused' "$work/out" || fail "expected a JSON-RPC error mentioning 'refused'"
grep -q 'no usable system root certificates found' "$work/err" \
  || fail "the debug log does not say that the OS store was empty"
grep -q 'built in (webpki-roots)' "$work/err" || fail "the debug log does not say the built-in roots were used"
if grep -q 'fixture-pass' "$work/err"; then fail "the passphrase appears in the debug log"; fi

step "a key on a PKCS#11 token: the static build says it cannot load a module"
code=0
in_root /mcp-secure-remote "https://127.0.0.1:$closed_port/mcp" --tls-key 'pkcs11:token=mcp;object=client' \
  --tls-pkcs11-module /libsofthsm2.so < /dev/null > "$work/out" 2> "$work/err" || code=$?
cat "$work/err"
[ "$code" = 1 ] || fail "exit code $code with a pkcs11: key, expected 1"
grep -q 'built without PKCS#11 support' "$work/err" \
  || fail "expected the one-line 'built without PKCS#11 support' error"

# ---- a real MCP session against a local mTLS endpoint ----
if [ "$endpoint" = auto ]; then
  if [ -f "$repo/examples/mtls_endpoint.rs" ]; then
    step "starting examples/mtls_endpoint.rs"
    (cd "$repo" && cargo build -q --example mtls_endpoint)
    "$repo/target/debug/examples/mtls_endpoint" > "$work/endpoint.out" 2> "$work/endpoint.err" &
    endpoint_pid=$!
    for _ in $(seq 100); do
      grep -q '^PORT=' "$work/endpoint.out" 2>/dev/null && break
      kill -0 "$endpoint_pid" 2>/dev/null || fail "mtls_endpoint exited: $(cat "$work/endpoint.err")"
      sleep 0.1
    done
    endpoint=$(sed -n 's/^PORT=//p' "$work/endpoint.out" | head -n1)
    [ -n "$endpoint" ] || fail "mtls_endpoint printed no PORT= line"
  else
    endpoint=none
  fi
fi

if [ "$endpoint" = none ]; then
  step "no local mTLS endpoint (examples/mtls_endpoint.rs does not exist yet): tools/call skipped"
else
  step "initialize + tools/call echo through 127.0.0.1:$endpoint with mTLS"
  # Like a real MCP client, keep stdin open until the answers are in, then close it.
  mkfifo "$work/stdin"
  in_root /mcp-secure-remote "https://127.0.0.1:$endpoint/mcp" \
    --tls-cert /fixtures/client-rsa.crt --tls-key /fixtures/client-rsa.key --tls-ca /fixtures/ca.crt \
    < "$work/stdin" > "$work/out" 2> "$work/err" &
  bridge_pid=$!
  exec 3> "$work/stdin"
  echo "$initialize" >&3
  for _ in $(seq 100); do grep -q '"id":1' "$work/out" && break; sleep 0.1; done
  echo '{"jsonrpc":"2.0","method":"notifications/initialized"}' >&3
  echo '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from an empty root"}}}' >&3
  for _ in $(seq 100); do grep -q '"id":2' "$work/out" && break; sleep 0.1; done
  exec 3>&-
  code=0
  wait "$bridge_pid" || code=$?
  cat "$work/out" "$work/err"
  [ "$code" = 0 ] || fail "exit code $code at EOF, expected 0"
  assert_json_rpc_lines "$work/out"
  grep '"id":1' "$work/out" | grep -q '"result"' || fail "initialize got no result"
  grep '"id":2' "$work/out" | grep -q 'hello from an empty root' || fail "tools/call echo did not answer"
fi

step "PASS: the static binary runs with nothing from the OS ($isolation)"
