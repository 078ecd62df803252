#!/usr/bin/env bash
# A real mTLS session whose client key lives in an OS store (issue 21): the release workflow's
# native Windows and macOS jobs put fixtures/client.p12 into the Windows store / a temporary
# keychain as non-exportable, then run this with the selector of that identity.
#
# Usage: scripts/store-session.sh SELECTOR BRIDGE CLIENT ENDPOINT
#   SELECTOR  windows:user;sha1=…  or  keychain:login;sha1=…
#   BRIDGE    the built mcp-secure-remote(.exe); CLIENT the built mcp-secure-remote-client(.exe)
#   ENDPOINT  the built mtls_endpoint example (the project's mTLS MCP server, on 127.0.0.1)
#
# Portable to macOS's bash 3.2 and Git Bash on Windows: no coproc, no FIFO. Every wait is bounded.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: scripts/store-session.sh SELECTOR BRIDGE CLIENT ENDPOINT" >&2; exit 2; }
selector=$1 bridge=$2 client=$3 endpoint=$4
work=$(mktemp -d)
endpoint_pid=
cleanup() {
  [ -n "$endpoint_pid" ] && kill "$endpoint_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "store-session: FAIL: $*" >&2; exit 1; }

# wait_for PATTERN FILE SECONDS: until FILE holds PATTERN.
wait_for() {
  local i
  for i in $(seq 1 $(($3 * 10))); do
    grep -q "$1" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

"$endpoint" >"$work/endpoint.out" 2>&1 &
endpoint_pid=$!
wait_for '^PORT=' "$work/endpoint.out" 30 || fail "the endpoint did not start: $(cat "$work/endpoint.out")"
port=$(sed -n 's/^PORT=//p' "$work/endpoint.out" | tr -d '\r')
url="https://127.0.0.1:$port/mcp"
tls=(--tls-cert "$selector" --tls-ca fixtures/ca.crt)

echo "store-session: the test client with $selector"
"$client" "$url" "${tls[@]}" >"$work/client.out" 2>&1 || fail "the test client failed: $(tail -20 "$work/client.out")"
cat "$work/client.out"
grep -q echo "$work/client.out" || fail "the client listed no echo tool"

echo "store-session: the bridge with $selector: initialize, tools/call, stdin EOF"
: >"$work/bridge.out"
status=0
{
  printf '%s\n' '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"store-session","version":"1"}}}'
  wait_for '"serverInfo"' "$work/bridge.out" 60 || echo "no initialize answer" >"$work/timeout"
  printf '%s\n' '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  printf '%s\n' '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello from the store"}}}'
  wait_for '"hello from the store"' "$work/bridge.out" 60 || echo "no tools/call answer" >"$work/timeout"
  # stdin EOF here: how an MCP client ends its server.
} | "$bridge" "$url" "${tls[@]}" >"$work/bridge.out" 2>"$work/bridge.err" || status=$?
[ ! -e "$work/timeout" ] || fail "$(cat "$work/timeout"): $(cat "$work/bridge.err")"
[ "$status" = 0 ] || fail "the bridge exited $status: $(cat "$work/bridge.err")"
grep -q '"hello from the store"' "$work/bridge.out" || fail "tools/call answered: $(cat "$work/bridge.out")"
echo "store-session: passed ($(grep -c . "$work/bridge.out") answers, exit 0 after stdin EOF)"
