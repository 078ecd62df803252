"""A stdio MCP client (Python SDK 2.3.0) for the conformance suite's OAuth client scenarios (auth/*).

The runner calls: conformance_auth_client.py BRIDGE [BRIDGE ARGS...] URL
(it appends the URL of its plain-HTTP scenario server). This script maps the scenario's context
(MCP_CONFORMANCE_SCENARIO, MCP_CONFORMANCE_CONTEXT) to the bridge's OAuth flags, exactly the ones a
user would pass, prints that command line so anyone can rerun it by hand, spawns
`BRIDGE [BRIDGE ARGS...] --allow-http <oauth flags> URL`, and runs tools/list, then tools/call of
`test-tool` (what the suite's reference client calls) when it is listed. Only the bridge speaks
HTTP, so the runner's checks grade the bridge's OAuth client, not this script.

Exit status: 0 when both requests succeeded, 1 otherwise, with one line saying why. Scenarios in which
a correct client must give up (auth/scope-retry-limit, auth/resource-mismatch, auth/iss-*, ...) are
marked by the runner itself as allowed to end in an error. The bridge's stderr is copied to this
script's stderr, which the runner saves with the scenario's results.
"""

import json
import os
import shlex
import shutil
import sys
import tempfile

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

# The whole run must end before the runner's own timeout (scripts/interop.sh passes --timeout 60000:
# a login is several round trips and a browser process, on a loaded 2-core CI machine), so that a
# hang is reported here, with the bridge's stderr, rather than as a bare "client timed out".
RUN_TIMEOUT = 50.0
REQUEST_TIMEOUT = 45.0

# Headless browser: the conformance AS's /authorize answers a 302 straight to the bridge's
# loopback redirect URI, so following redirects completes the login.
OPENER = "curl -fsS -o /dev/null --max-redirs 5 -L"

# auth/basic-cimd: the AS advertises client_id_metadata_document_supported and checks that the
# client id is this URL (it never fetches the document).
CIMD_URL = "https://conformance-test.local/client-metadata.json"

# The verdict line's prefix, which scripts/interop.sh looks for.
PREFIX = "conformance_auth_client:"

SECRET_ENV = "MCP_REMOTE_OAUTH_CLIENT_SECRET"
IDP_SECRET_ENV = "MCP_REMOTE_OAUTH_IDP_CLIENT_SECRET"

# Context fields deliberately not passed to the bridge, and why. Any other unmapped field is
# reported on stderr: a new suite version has grown a field this mapping must learn.
IGNORED = {
    "name": "the scenario name, also in MCP_CONFORMANCE_SCENARIO",
    "issuer": "the AS issuer (auth/pre-registration, 0.2.0-alpha.12); the bridge discovers it",
    "idp_issuer": "the IdP issuer; the bridge is given the IdP token endpoint itself",
    "signing_algorithm": "ES256; the bridge takes the algorithm from the key (P-256 -> ES256)",
    "wrong_audience_jwt": "negative material for SDK tests; a user configures the valid assertion",
    "expired_jwt": "negative material for SDK tests; a user configures the valid assertion",
}


class Mapping:
    """The bridge flags and environment for one scenario, and the context fields they used."""

    def __init__(self, context, secret_dir):
        self.context = context
        self.secret_dir = secret_dir
        self.args = ["--oauth-token-store", "memory"]  # every scenario starts with no tokens
        self.env = {}  # variable -> (context field, value)
        self.used = set(IGNORED)

    def take(self, key):
        self.used.add(key)
        return self.context[key]

    def file_of(self, key, filename):
        """Writes a context value (PEM key, JWT) to a private file and returns its path: the
        bridge reads keys and assertions from files, as a user's deployment would provide them."""
        path = os.path.join(self.secret_dir, filename)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(self.take(key))
        return path

    def unmapped(self):
        return sorted(set(self.context) - self.used)


def map_scenario(scenario, context, secret_dir):
    """Maps a scenario and its MCP_CONFORMANCE_CONTEXT to bridge flags (see
    /work/shared/notes/mcp-authorization.md §2 and §3 for what each scenario expects)."""
    m = Mapping(context, secret_dir)
    name = scenario.removeprefix("auth/")
    if name == "basic-cimd":
        m.args += ["--oauth-client-metadata-url", CIMD_URL, "--oauth-browser", OPENER]
    elif name in ("client-credentials-basic", "client-credentials-jwt"):
        m.args += ["--oauth-grant", "client-credentials"]
    elif name in ("enterprise-managed-authorization", "cross-app-access-complete-flow"):
        # RFC 8693 exchange of the IdP's ID token for an ID-JAG, then jwt-bearer at the MCP AS.
        m.args += ["--oauth-grant", "id-jag"]
        m.args += ["--oauth-idp-token-endpoint", m.take("idp_token_endpoint")]
        m.args += ["--oauth-idp-client-id", m.take("idp_client_id")]
        m.args += ["--oauth-idp-id-token-file", m.file_of("idp_id_token", "idp-id-token.jwt")]
        if "idp_client_secret" in context:
            m.env[IDP_SECRET_ENV] = ("idp_client_secret", m.take("idp_client_secret"))
    elif name == "wif-jwt-bearer":
        m.args += ["--oauth-grant", "jwt-bearer"]
        m.args += ["--oauth-assertion-file", m.file_of("valid_jwt", "workload.jwt")]
    else:
        # Authorization code: the browser login, made headless.
        m.args += ["--oauth-browser", OPENER]
    # Pre-registered client (auth/pre-registration, and the extension scenarios' clients).
    if "client_id" in context:
        m.args += ["--oauth-client-id", m.take("client_id")]
    if "client_secret" in context:
        m.env[SECRET_ENV] = ("client_secret", m.take("client_secret"))
    if "private_key_pem" in context:
        m.args += ["--oauth-client-auth", "private_key_jwt"]
        m.args += ["--oauth-jwt-key", m.file_of("private_key_pem", "client-key.pem")]
    return m


def command_line(env, argv):
    """The bridge's command line as a user would type it. Secrets travel in the environment and
    are never printed: each is named by the context field (printed by the runner) that holds it."""
    prefix = [f"{var}=<{field} from the context>" for var, (field, _) in sorted(env.items())]
    return " ".join(prefix + [shlex.quote(a) for a in argv])


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:150] if lines else "(nothing on stderr)"


async def exercise(client):
    """tools/list, then tools/call of test-tool if listed; returns a one-line summary."""
    names = [t.name for t in (await client.list_tools()).tools]
    if "test-tool" not in names:
        return f"tools/list: {names} (no test-tool to call)"
    result = await client.call_tool("test-tool", {}, read_timeout_seconds=REQUEST_TIMEOUT)
    text = " ".join(getattr(c, "text", "") for c in result.content)
    if result.is_error:
        raise RuntimeError(f"tools/call test-tool returned an error result: {text[:200]}")
    return f"tools/list: {names}; tools/call test-tool: {text[:80]!r}"


async def run(bridge, url, scenario, context, modern, secret_dir, errlog):
    m = map_scenario(scenario, context, secret_dir)
    if OPENER in m.args and shutil.which(OPENER.split()[0]) is None:
        raise RuntimeError("curl, the headless browser, is not installed (apt-get install curl)")
    argv = [*bridge, "--allow-http", *m.args, url]
    print(f"bridge command: {command_line(m.env, argv)}", file=sys.stderr)
    if m.unmapped():
        print(f"context fields not mapped to bridge flags: {', '.join(m.unmapped())}", file=sys.stderr)
    env = {var: value for var, (_, value) in m.env.items()}
    params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
    with anyio.fail_after(RUN_TIMEOUT):
        async with Client(
            stdio_client(params, errlog=errlog),
            mode="auto" if modern else "legacy",
            read_timeout_seconds=REQUEST_TIMEOUT,
        ) as client:
            print(f"connected: protocol {client.protocol_version}", file=sys.stderr)
            return await exercise(client)


def describe(error):
    """One line for an exception, reaching into the task groups the SDK wraps errors in."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    if isinstance(error, TimeoutError):
        return f"no answer within {RUN_TIMEOUT:.0f} s"
    return f"{type(error).__name__}: {error}".splitlines()[0][:150]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: conformance_auth_client.py BRIDGE [BRIDGE ARGS...] URL")
    *bridge, url = sys.argv[1:]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    modern = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "") >= "2026-07-28"
    outcome, failure = None, None
    with tempfile.TemporaryDirectory(prefix="conformance-auth-") as secret_dir, tempfile.TemporaryFile(
        "w+", encoding="utf-8", errors="replace"
    ) as errlog:
        try:
            outcome = anyio.run(run, bridge, url, scenario, context, modern, secret_dir, errlog)
        except BaseException as error:  # noqa: BLE001 - every failure becomes the one-line verdict
            if isinstance(error, KeyboardInterrupt):
                raise
            failure = describe(error)
        errlog.seek(0)
        bridge_stderr = errlog.read()
    print("--- bridge stderr ---", file=sys.stderr)
    print(bridge_stderr.rstrip("\n") or "(empty)", file=sys.stderr)
    print("--- end of bridge stderr ---", file=sys.stderr)
    if failure is not None:
        print(f"{PREFIX} FAIL {scenario}: {failure}; bridge: {last_line(bridge_stderr)}", file=sys.stderr)
        sys.exit(1)
    print(f"{PREFIX} OK {scenario}: {outcome}", file=sys.stderr)


if __name__ == "__main__":
    main()
