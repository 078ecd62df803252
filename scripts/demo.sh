#!/usr/bin/env bash
# `make demo`: the whole product on one machine, offline, loopback only.
#  1. start a local MCP server over HTTPS that REQUIRES client certificates signed by fixtures/ca.crt
#  2. check it with mcp-secure-remote-client (TLS facts, transport, tools, resources, prompts)
#  3. drive mcp-secure-remote through initialize + one real tools/call over stdio, as an agent would
#  4. stop the endpoint
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Building (release)"
cargo build --release --quiet --bins --example mtls_endpoint
BIN=target/release
ENDPOINT_OUT=$(mktemp)
cleanup() {
  [ -n "${ENDPOINT_PID:-}" ] && kill "$ENDPOINT_PID" 2>/dev/null || true
  rm -f "$ENDPOINT_OUT"
}
trap cleanup EXIT

say "Starting the local mTLS endpoint"
"$BIN/examples/mtls_endpoint" >"$ENDPOINT_OUT" &
ENDPOINT_PID=$!
for _ in $(seq 1 100); do
  grep -q '^PORT=' "$ENDPOINT_OUT" 2>/dev/null && break
  sleep 0.05
done
PORT=$(sed -n 's/^PORT=//p' "$ENDPOINT_OUT")
[ -n "$PORT" ] || { echo "demo: the endpoint did not start" >&2; exit 1; }
URL="https://127.0.0.1:$PORT/mcp"
TLS=(--tls-cert fixtures/client-rsa.crt --tls-key fixtures/client-rsa.key --tls-ca fixtures/ca.crt)
echo "endpoint: $URL (client certificates signed by fixtures/ca.crt required)"

say "mcp-secure-remote-client $URL ${TLS[*]}"
"$BIN/mcp-secure-remote-client" "$URL" "${TLS[@]}"

say "Without a client certificate, the server refuses (expected: exit 1 and a diagnosis)"
if "$BIN/mcp-secure-remote-client" "$URL" --tls-ca fixtures/ca.crt >/dev/null; then
  echo "demo: the endpoint accepted a client without a certificate" >&2; exit 1
fi

say "mcp-secure-remote over stdio: initialize, then tools/call echo"
coproc BRIDGE { exec "$BIN/mcp-secure-remote" "$URL" "${TLS[@]}"; }
send() { printf '→ %s\n' "$1"; printf '%s\n' "$1" >&"${BRIDGE[1]}"; }
recv() {
  local line
  IFS= read -r -t 15 line <&"${BRIDGE[0]}" || { echo "demo: no answer from the bridge" >&2; exit 1; }
  printf '← %s\n' "$line"
  REPLY_LINE=$line
}
send '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"demo","version":"1"}}}'
recv
send '{"jsonrpc":"2.0","method":"notifications/initialized"}'
send '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello over mTLS"}}}'
recv
case "$REPLY_LINE" in
  *'"hello over mTLS"'*) ;;
  *) echo "demo: unexpected tools/call answer" >&2; exit 1 ;;
esac
BRIDGE_PID_SAVED=$BRIDGE_PID
exec {BRIDGE[1]}>&-   # stdin EOF: the MCP stdio shutdown signal
wait "$BRIDGE_PID_SAVED"
echo "bridge exited with status $? after stdin EOF"

say "Demo complete"
