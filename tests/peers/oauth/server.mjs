// The OAuth test peer: a real authorization server (npm oidc-provider) and an MCP server that it protects,
// both HTTPS on 127.0.0.1, plus a plain-HTTP control endpoint the tests read and steer. One process.
//
//   node server.mjs --fixtures DIR --modules DIR [--access-ttl S] [--token-format opaque|jwt]
//                   [--offline-access-needs-consent] [--clients FILE] [--dpop off|on|nonce|nonce+bearer]
//                   [--dpop-algs ALG,…] [--mcp-self-signed-clients]
//
// --clients names a JSON file of pre-registered machine clients (client_credentials only), each
//   {"client_id", "token_endpoint_auth_method", "bound": bool (RFC 8705 certificate-bound tokens),
//    "subject_dn_of": PEM certificate (tls_client_auth: registered with that certificate's subject DN),
//    "jwks_of": [PEM certificate or key, …] (public JWKs; a certificate's also carries its x5c),
//    "client_secret"}
// so a test registers exactly the client its bridge presents, from the files it uses.
// --dpop turns on DPoP (RFC 9449) at the AS; `nonce` makes the token endpoint and the MCP server
//   demand their server nonces; `nonce+bearer` too, the MCP server's demand then following a
//   Bearer challenge in the same header (a server that takes both schemes, RFC 9449 §7.1).
// --dpop-algs ES256,… narrows the DPoP proof algorithms the AS accepts (default: all it knows).
// --mcp-self-signed-clients lets the MCP server's TLS accept any client certificate, as a resource
//   server of self_signed_tls_client_auth clients must (RFC 8705 §2.2, §3): a request on a
//   connection whose certificate is not from the fixtures CA is then served only with a token
//   bound to exactly that certificate (else 401, counted as `unverified_certificate`).
//
// --modules is the node_modules directory of scripts/peers/install-oauth.sh (.peers/oauth/node_modules):
// the packages live outside the source tree, so they are imported by path, not by name.
// When every listener is up, one JSON line goes to stdout:
//   {"issuer":…,"mcp_url":…,"resource":…,"prm_url":…,"control_url":…}
// and nothing else does (diagnostics go to stderr). The process ends when stdin closes, so a test that
// dies cannot leave it behind.
//
// The AS: DCR (public `none` and secret clients), authorization_code + refresh_token + client_credentials,
// PKCE S256 required for every client, refresh tokens (offline_access) rotated on every use, resource
// indicators (the MCP resource, scopes mcp:read mcp:write, opaque or JWT access tokens), revocation,
// introspection, RFC 8705 (client certificates requested, not required). Its interaction finishes at once
// (login and consent, no page), so any opener that follows redirects and keeps cookies completes a login.
//
// The MCP server requires a client certificate from the fixtures CA and a Bearer token the AS issued for
// the resource (not expired, not revoked; bound tokens must match the connection's certificate). Without
// one: 401 with a `resource_metadata` challenge. With one: a minimal Streamable HTTP server in JSON.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// ---------------------------------------------------------------------------------------------- options
function parseArgs(argv) {
  const opts = {
    fixtures: null, modules: null, accessTtl: 3600, tokenFormat: 'opaque', offlineAccessNeedsConsent: false,
    clients: null, dpop: 'off', dpopAlgs: ['ES256', 'ES384', 'PS256', 'RS256', 'Ed25519', 'EdDSA'],
    mcpSelfSignedClients: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag === '--offline-access-needs-consent') { opts.offlineAccessNeedsConsent = true; continue; }
    if (flag === '--mcp-self-signed-clients') { opts.mcpSelfSignedClients = true; continue; }
    const value = argv[i + 1];
    if (value === undefined) fail(`${flag} needs a value`);
    i += 1;
    switch (flag) {
      case '--fixtures': opts.fixtures = value; break;
      case '--modules': opts.modules = value; break;
      case '--access-ttl': opts.accessTtl = positiveInt(flag, value); break;
      case '--clients': opts.clients = value; break;
      case '--dpop-algs': opts.dpopAlgs = value.split(','); break;
      case '--dpop':
        if (!['off', 'on', 'nonce', 'nonce+bearer'].includes(value)) fail('--dpop is off, on, nonce or nonce+bearer');
        opts.dpop = value;
        break;
      case '--token-format':
        if (value !== 'opaque' && value !== 'jwt') fail('--token-format is opaque or jwt');
        opts.tokenFormat = value;
        break;
      default: fail(`unknown flag ${flag}`);
    }
  }
  if (!opts.fixtures || !opts.modules) {
    fail('usage: server.mjs --fixtures DIR --modules DIR [--access-ttl S] [--token-format opaque|jwt] [--offline-access-needs-consent] [--clients FILE] [--dpop off|on|nonce|nonce+bearer] [--dpop-algs ALG,…]');
  }
  return opts;
}

function positiveInt(flag, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) fail(`${flag} must be a whole number of seconds >= 1, not ${value}`);
  return n;
}

// Startup phases go to stderr, which the test harness shows only when the peer fails to report ready:
// a peer that hangs then says how far it got.
const started = Date.now();
function phase(name) {
  process.stderr.write(`oauth peer: ${name} (+${Date.now() - started} ms)\n`);
}

function fail(message) {
  process.stderr.write(`oauth peer: ${message}\n`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));
const moduleEntry = (name, entry) => pathToFileURL(path.join(opts.modules, name, entry)).href;
let Provider;
let errors;
let jose;
try {
  ({ default: Provider, errors } = await import(moduleEntry('oidc-provider', 'lib/index.js')));
  jose = await import(moduleEntry('jose', 'dist/webapi/index.js'));
} catch (err) {
  fail(`cannot load oidc-provider from ${opts.modules} (run scripts/peers/install-oauth.sh): ${err.message}`);
}
phase('modules loaded');

const fixture = (name) => fs.readFileSync(path.join(opts.fixtures, name));
const tls = { key: fixture('server.key'), cert: fixture('server.crt'), ca: fixture('ca.crt') };
const HOST = '127.0.0.1';
const SCOPES = 'mcp:read mcp:write';
const ACCOUNT = 'test-user';

// ---------------------------------------------------------------------------------------------- state
// Everything the control endpoint reports. `secrets` is every token, code, verifier and client secret
// that crossed the AS, so tests can assert that none of them reaches the bridge's stdout or stderr.
const state = {
  accessTtl: opts.accessTtl,
  authorizations: 0,
  interactions: 0,
  registrations: 0,
  revocations: 0,
  tokenRequests: {},
  tokenErrors: {},
  refreshTokenReuse: 0,
  offlineAccessWithoutConsent: 0,
  secrets: new Set(),
  tokens: new Set(), // the access, refresh and ID tokens among the secrets
  refreshTokens: new Map(), // jti -> clientId, every refresh token ever saved
  accessTokens: new Map(), // jti -> clientId (opaque format only: JWTs are not stored)
  clients: [],
  mcp: {
    authorized: 0, unauthorized: 0, wrongCertificate: 0, unverifiedCertificate: 0, selfSigned: 0, dpop: 0, badProof: 0, nonceDemanded: 0, byToken: new Map(), methods: {},
    // The x5t#S256 (certificate) and jkt (DPoP key) bindings of the tokens the MCP server accepted.
    certificateBindings: new Set(), keyBindings: new Set(),
  },
};

const bump = (table, key) => { table[key] = (table[key] ?? 0) + 1; };
const keep = (value) => { if (typeof value === 'string' && value.length >= 8) state.secrets.add(value); };
const tokenTag = (token) => crypto.createHash('sha256').update(token).digest('hex').slice(0, 12);

// ---------------------------------------------------------------------------------------------- listeners
// Ports are ephemeral: listen first, then build the provider with the issuer that names the real port.
let asHandler = (_req, res) => { res.writeHead(503).end(); };
const asServer = https.createServer(
  { ...tls, requestCert: true, rejectUnauthorized: false },
  (req, res) => asHandler(req, res),
);
const mcpServer = https.createServer(
  { ...tls, requestCert: true, rejectUnauthorized: !opts.mcpSelfSignedClients },
  (req, res) => { handleMcp(req, res).catch((err) => internalError(res, err)); },
);
const controlServer = http.createServer((req, res) => {
  handleControl(req, res).catch((err) => internalError(res, err));
});

const listen = (server) => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, HOST, () => resolve(server.address().port));
});
const [asPort, mcpPort, controlPort] = await Promise.all([asServer, mcpServer, controlServer].map(listen));
phase('listening');

const issuer = `https://${HOST}:${asPort}`;
const resource = `https://${HOST}:${mcpPort}/mcp`;
const prmUrl = `https://${HOST}:${mcpPort}/.well-known/oauth-protected-resource/mcp`;

// ---------------------------------------------------------------------------------------------- the AS
// The signing keys are fixture keys that nothing else trusts (the rogue CA's RSA key, the rogue
// server's P-256 key), read rather than generated: generating an RSA key was most of the peer's start
// time, and many peers start at once beside qemu on a 2-core machine.
const ecKey = crypto.createPrivateKey(fixture('rogue-server.key'));
const rsaKey = crypto.createPrivateKey(fixture('rogue-ca.key'));
phase('signing keys loaded');
const signingJwks = {
  keys: [
    { ...ecKey.export({ format: 'jwk' }), kid: 'es256', alg: 'ES256', use: 'sig' },
    { ...rsaKey.export({ format: 'jwk' }), kid: 'rs256', alg: 'RS256', use: 'sig' },
  ],
};
const publicJwks = jose.createLocalJWKSet({
  keys: signingJwks.keys.map(({ d, p, q, dp, dq, qi, ...pub }) => pub),
});

// ---------------------------------------------------------------------------------------------- machine clients
// A PEM certificate's public JWK with its x5c (self_signed_tls_client_auth matches on it), or a PEM
// key's public JWK (private_key_jwt verifies the assertion with it).
function publicJwk(file) {
  const pem = fs.readFileSync(file, 'utf8');
  if (pem.includes('BEGIN CERTIFICATE')) {
    const cert = new crypto.X509Certificate(pem);
    return { ...cert.publicKey.export({ format: 'jwk' }), x5c: [cert.raw.toString('base64')] };
  }
  return crypto.createPublicKey(pem).export({ format: 'jwk' });
}

function machineClient(entry) {
  const metadata = {
    client_id: entry.client_id,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: entry.token_endpoint_auth_method,
    tls_client_certificate_bound_access_tokens: entry.bound === true,
  };
  if (entry.client_secret) metadata.client_secret = entry.client_secret;
  if (entry.subject_dn_of) {
    metadata.tls_client_auth_subject_dn = new crypto.X509Certificate(fs.readFileSync(entry.subject_dn_of))
      .subject.replaceAll('\n', ',');
  }
  if (entry.jwks_of) metadata.jwks = { keys: entry.jwks_of.map(publicJwk) };
  return metadata;
}

let staticClients = [];
if (opts.clients) {
  try {
    staticClients = JSON.parse(fs.readFileSync(opts.clients, 'utf8')).map(machineClient);
  } catch (err) {
    fail(`--clients ${opts.clients}: ${err.message}`);
  }
}

function peerCertificate(ctx) {
  const peer = ctx.socket.getPeerCertificate?.();
  return peer?.raw ? new crypto.X509Certificate(peer.raw) : undefined;
}

const provider = new Provider(issuer, {
  clients: staticClients,
  // oidc-provider offers only the secret, JWT and `none` methods unless told: RFC 8705's too.
  clientAuthMethods: [
    'none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt',
    'tls_client_auth', 'self_signed_tls_client_auth',
  ],
  enabledJWA: {
    clientAuthSigningAlgValues: ['RS256', 'PS256', 'ES256', 'ES384', 'Ed25519', 'EdDSA'],
    dPoPSigningAlgValues: opts.dpopAlgs,
  },
  jwks: signingJwks,
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access'],
  responseTypes: ['code'],
  clientDefaults: { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] },
  findAccount: async (_ctx, accountId) => ({ accountId, claims: async () => ({ sub: accountId }) }),
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // PKCE S256 for every client, confidential ones too (OAuth 2.1; the bridge always sends it).
  pkce: { required: () => true },
  // Every refresh rotates, so two processes redeeming the same refresh token is a detected reuse.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: () => state.accessTtl,
    ClientCredentials: () => state.accessTtl,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true },
    registrationManagement: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    clientCredentials: { enabled: true },
    dPoP: {
      enabled: opts.dpop !== 'off',
      nonceSecret: crypto.randomBytes(32),
      requireNonce: () => nonces,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? resource,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        return {
          scope: SCOPES,
          audience: resource,
          accessTokenTTL: state.accessTtl,
          accessTokenFormat: opts.tokenFormat,
          ...(opts.tokenFormat === 'jwt' ? { jwt: { sign: { alg: 'ES256' } } } : {}),
        };
      },
    },
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      getCertificate: peerCertificate,
      certificateAuthorized(ctx) { return ctx.socket.authorized === true; },
      // oidc-provider calls these without `this`: no method may use another.
      certificateSubjectMatches(ctx, property, expected) {
        const cert = peerCertificate(ctx);
        if (!cert) return false;
        switch (property) {
          case 'tls_client_auth_subject_dn': return cert.subject.replaceAll('\n', ',') === expected;
          case 'tls_client_auth_san_dns': return (cert.subjectAltName ?? '').split(', ').includes(`DNS:${expected}`);
          default: return false;
        }
      },
    },
  },
});
provider.proxy = false;

// Headless interaction: log the fixed test account in and grant what was asked, at once.
async function finishInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { params } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: ACCOUNT, clientId: params.client_id });
  const requested = String(params.scope ?? '').split(' ').filter(Boolean);
  const oidcScopes = requested.filter((s) => s === 'openid' || s === 'offline_access');
  if (oidcScopes.length) grant.addOIDCScope(oidcScopes.join(' '));
  const resources = Array.isArray(params.resource) ? params.resource : [params.resource ?? resource];
  for (const indicator of resources) {
    const resourceScopes = requested.filter((s) => SCOPES.split(' ').includes(s));
    grant.addResourceScope(indicator, (resourceScopes.length ? resourceScopes : SCOPES.split(' ')).join(' '));
  }
  const grantId = await grant.save();
  state.interactions += 1;
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: ACCOUNT }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

// offline_access without prompt=consent: oidc-provider follows OIDC Core §11 and drops the scope (so no
// refresh token), as few other ASes do (Auth0, Okta and Keycloak issue one). By default the peer behaves
// like those, by adding the consent prompt itself; --offline-access-needs-consent keeps the strict rule.
// Either way such requests are counted, so a test that got no refresh token can say why.
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === '/auth') {
    const scope = String(ctx.query.scope ?? '').split(' ');
    const prompt = String(ctx.query.prompt ?? '').split(' ');
    if (scope.includes('offline_access') && !prompt.includes('consent')) {
      state.offlineAccessWithoutConsent += 1;
      if (!opts.offlineAccessNeedsConsent) {
        ctx.query = { ...ctx.query, prompt: [...prompt.filter(Boolean), 'consent'].join(' ') };
      }
    }
  }
  await next();
});

// Records what crossed the AS: counters for the tests' assertions, and every secret value.
provider.use(async (ctx, next) => {
  await next();
  const route = ctx.oidc?.route;
  const params = ctx.oidc?.params ?? {};
  const body = ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body) ? ctx.body : {};
  const location = ctx.response.get('location');
  if (location && location.includes('code=')) {
    const code = new URL(location, issuer).searchParams.get('code');
    keep(code);
  }
  if (route === 'token') {
    const grantType = String(params.grant_type ?? 'missing');
    bump(state.tokenRequests, grantType);
    ['code', 'code_verifier', 'refresh_token', 'client_secret', 'client_assertion'].forEach((k) => keep(params[k]));
    keep(ctx.get('dpop'));
    const basic = ctx.get('authorization').match(/^Basic (.+)$/i);
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString();
      keep(decodeURIComponent(decoded.slice(decoded.indexOf(':') + 1)));
    }
    ['access_token', 'refresh_token', 'id_token'].forEach((k) => {
      keep(body[k]);
      if (typeof body[k] === 'string') state.tokens.add(body[k]);
    });
    if (ctx.status >= 400) {
      bump(state.tokenErrors, String(body.error ?? ctx.status));
    }
  }
  if (route === 'registration' || route === 'client' || route === 'client_update') {
    keep(body.client_secret);
    keep(body.registration_access_token);
  }
  if (route === 'revocation') {
    keep(params.token);
    if (ctx.status === 200) state.revocations += 1;
  }
  if (route === 'introspection') keep(params.token);
});

// The error's detail (hidden from the client, which sees only "grant request is invalid") says why.
provider.on('grant.error', (ctx, err) => {
  if (err.error_detail === 'refresh token already used') state.refreshTokenReuse += 1;
  process.stderr.write(`oauth peer: token ${ctx.oidc?.params?.grant_type} refused: ${err.error} (${err.error_detail ?? err.error_description})\n`);
});
provider.on('authorization.success', () => { state.authorizations += 1; });
provider.on('registration_create.success', (_ctx, client) => {
  state.registrations += 1;
  state.clients.push(client.clientId);
});
provider.on('refresh_token.saved', (token) => { state.refreshTokens.set(token.jti, token.clientId); });
provider.on('access_token.saved', (token) => { state.accessTokens.set(token.jti, token.clientId); });
provider.on('server_error', (_ctx, err) => { process.stderr.write(`oauth peer: AS server_error: ${err.stack}\n`); });

const providerCallback = provider.callback();
asHandler = (req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/interaction/')) {
    finishInteraction(req, res).catch((err) => internalError(res, err));
    return;
  }
  providerCallback(req, res);
};

// ---------------------------------------------------------------------------------------------- MCP server
const MAX_BODY = 1 << 20;

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body over 1 MiB');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function json(res, status, value, headers = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function internalError(res, err) {
  process.stderr.write(`oauth peer: ${err.stack ?? err}\n`);
  if (!res.headersSent) json(res, 500, { error: 'internal', message: String(err.message ?? err) });
  else res.destroy();
}

function challenge(res, error) {
  const parts = [`Bearer resource_metadata="${prmUrl}"`];
  if (error) parts.push(`error="${error}"`);
  state.mcp.unauthorized += 1;
  json(res, 401, { error: error ?? 'unauthorized' }, { 'www-authenticate': parts.join(', ') });
}

const certThumbprint = (socket) => {
  const raw = socket.getPeerCertificate?.()?.raw;
  return raw ? crypto.createHash('sha256').update(raw).digest('base64url') : undefined;
};

// The token's claims if the AS issued it for this resource and it is live, else undefined.
async function verifyToken(token) {
  if (opts.tokenFormat === 'jwt') {
    try {
      const { payload } = await jose.jwtVerify(token, publicJwks, { issuer, audience: resource });
      return { scope: payload.scope, cnf: payload.cnf, clientId: payload.client_id };
    } catch {
      return undefined;
    }
  }
  // Client credentials tokens are a model of their own in oidc-provider.
  const stored = (await provider.AccessToken.find(token)) ?? (await provider.ClientCredentials.find(token));
  if (!stored || stored.isExpired) return undefined;
  const audiences = [].concat(stored.aud ?? []);
  if (!audiences.includes(resource)) return undefined;
  const cnf = {};
  if (stored['x5t#S256']) cnf['x5t#S256'] = stored['x5t#S256'];
  if (stored.jkt) cnf.jkt = stored.jkt;
  return { scope: stored.scope, cnf: Object.keys(cnf).length ? cnf : undefined, clientId: stored.clientId };
}

// With --dpop nonce the MCP server demands its own nonce too (RFC 9449 §9), one per process.
const resourceNonce = crypto.randomBytes(16).toString('base64url');
const nonces = opts.dpop === 'nonce' || opts.dpop === 'nonce+bearer';

// RFC 9449 §7.1: a DPoP-bound token comes with a proof for this request, signed by the key the
// token is bound to. 'ok' when the proof holds, 'nonce' when it holds but lacks the server's
// nonce (with --dpop nonce), else false.
async function dpopProofHolds(req, token, claims) {
  const proof = req.headers.dpop;
  if (typeof proof !== 'string') return false;
  keep(proof);
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, {
      typ: 'dpop+jwt', maxTokenAge: '120s',
    });
    const ath = crypto.createHash('sha256').update(token).digest('base64url');
    const htu = new URL(req.url, resource).href.split(/[?#]/)[0];
    const jkt = await jose.calculateJwkThumbprint(protectedHeader.jwk, 'sha256');
    const holds = payload.htm === req.method && payload.htu === htu && payload.ath === ath
      && (!claims.cnf?.jkt || claims.cnf.jkt === jkt);
    if (!holds) return false;
    return nonces && payload.nonce !== resourceNonce ? 'nonce' : 'ok';
  } catch {
    return false;
  }
}

const TOOLS = [{
  name: 'echo',
  description: 'Echoes its message back',
  inputSchema: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] },
}];

function answer(message) {
  const { id, method, params } = message;
  bump(state.mcp.methods, method);
  const result = (value) => ({ jsonrpc: '2.0', id, result: value });
  switch (method) {
    case 'initialize':
      return result({
        protocolVersion: params?.protocolVersion ?? '2025-11-25',
        capabilities: { tools: {} },
        serverInfo: { name: 'oauth-peer-mcp', version: '1.0.0' },
      });
    case 'ping': return result({});
    case 'tools/list': return result({ tools: TOOLS });
    case 'tools/call':
      if (params?.name !== 'echo') return { jsonrpc: '2.0', id, error: { code: -32602, message: `unknown tool ${params?.name}` } };
      return result({ content: [{ type: 'text', text: `Echo: ${params?.arguments?.message ?? ''}` }] });
    default:
      return { jsonrpc: '2.0', id, error: { code: -32601, message: `method not found: ${method}` } };
  }
}

async function handleMcp(req, res) {
  // Read before any await: once the client has closed the socket (the bridge ending its listening
  // GET at exit), Node no longer returns the peer's certificate, and a bound token would be
  // counted as presented with the wrong one.
  const presented = certThumbprint(req.socket);
  const url = new URL(req.url, resource);
  if (req.method === 'GET' && url.pathname === '/.well-known/oauth-protected-resource/mcp') {
    json(res, 200, {
      resource,
      authorization_servers: [issuer],
      scopes_supported: SCOPES.split(' '),
      bearer_methods_supported: ['header'],
    });
    return;
  }
  if (url.pathname !== '/mcp') { json(res, 404, { error: 'not found' }); return; }

  const auth = req.headers.authorization ?? '';
  const match = auth.match(/^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/);
  if (!match) { challenge(res); return; }
  const token = match[2];
  const claims = await verifyToken(token);
  if (!claims) { challenge(res, 'invalid_token'); return; }
  // A DPoP-bound token is refused as a Bearer one, and needs a valid proof (RFC 9449 §7.1).
  if (match[1] === 'DPoP' || claims.cnf?.jkt) {
    const proof = match[1] === 'DPoP' ? await dpopProofHolds(req, token, claims) : false;
    if (proof === 'nonce') {
      // RFC 9449 §9, as its example: a DPoP challenge (alone, or after a Bearer one), and the nonce.
      state.mcp.nonceDemanded += 1;
      const dpopChallenge = 'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"';
      json(res, 401, { error: 'use_dpop_nonce' }, {
        'www-authenticate': opts.dpop === 'nonce+bearer'
          ? `Bearer resource_metadata="${prmUrl}", ${dpopChallenge}` : dpopChallenge,
        'dpop-nonce': resourceNonce,
      });
      return;
    }
    if (proof !== 'ok') {
      state.mcp.badProof += 1;
      challenge(res, 'invalid_token');
      return;
    }
    state.mcp.dpop += 1;
  }
  if (claims.cnf?.['x5t#S256'] && claims.cnf['x5t#S256'] !== presented) {
    state.mcp.wrongCertificate += 1;
    challenge(res, 'invalid_token');
    return;
  }
  if (!req.socket.authorized) {
    // Only with --mcp-self-signed-clients: the certificate is trusted through the token alone.
    if (!presented || !claims.cnf?.['x5t#S256']) {
      state.mcp.unverifiedCertificate += 1;
      challenge(res, 'invalid_token');
      return;
    }
    state.mcp.selfSigned += 1;
  }
  state.mcp.authorized += 1;
  if (claims.cnf?.['x5t#S256']) state.mcp.certificateBindings.add(claims.cnf['x5t#S256']);
  if (claims.cnf?.jkt) state.mcp.keyBindings.add(claims.cnf.jkt);
  const tag = tokenTag(token);
  state.mcp.byToken.set(tag, (state.mcp.byToken.get(tag) ?? 0) + 1);

  if (req.method !== 'POST') { res.writeHead(405, { allow: 'POST' }).end(); return; }
  let message;
  try {
    message = JSON.parse(await readBody(req));
  } catch (err) {
    json(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: `parse error: ${err.message}` } });
    return;
  }
  const messages = Array.isArray(message) ? message : [message];
  const replies = messages.filter((m) => m && m.method !== undefined && m.id !== undefined).map(answer);
  messages.filter((m) => m && m.method !== undefined && m.id === undefined).forEach((m) => bump(state.mcp.methods, m.method));
  if (replies.length === 0) { res.writeHead(202).end(); return; }
  json(res, 200, Array.isArray(message) ? replies : replies[0]);
}

// ---------------------------------------------------------------------------------------------- control
async function liveRefreshTokens(clientId) {
  let live = 0;
  for (const [jti, owner] of state.refreshTokens) {
    if (clientId && owner !== clientId) continue;
    const token = await provider.RefreshToken.find(jti);
    if (token && !token.consumed && !token.isExpired) live += 1;
  }
  return live;
}

async function handleControl(req, res) {
  const url = new URL(req.url, `http://${HOST}`);
  const clientId = url.searchParams.get('client_id') ?? undefined;
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /stats':
      json(res, 200, {
        issuer,
        resource,
        access_ttl: state.accessTtl,
        authorizations: state.authorizations,
        interactions: state.interactions,
        registrations: state.registrations,
        clients: state.clients,
        revocations: state.revocations,
        token_requests: state.tokenRequests,
        token_errors: state.tokenErrors,
        refresh_token_reuse: state.refreshTokenReuse,
        offline_access_without_consent: state.offlineAccessWithoutConsent,
        offline_access_needs_consent: opts.offlineAccessNeedsConsent,
        live_refresh_tokens: await liveRefreshTokens(clientId),
        mcp: {
          authorized: state.mcp.authorized,
          unauthorized: state.mcp.unauthorized,
          wrong_certificate: state.mcp.wrongCertificate,
          unverified_certificate: state.mcp.unverifiedCertificate,
          self_signed: state.mcp.selfSigned,
          dpop: state.mcp.dpop,
          bad_proof: state.mcp.badProof,
          nonce_demanded: state.mcp.nonceDemanded,
          methods: state.mcp.methods,
          requests_by_token: Object.fromEntries(state.mcp.byToken),
          certificate_bindings: [...state.mcp.certificateBindings],
          key_bindings: [...state.mcp.keyBindings],
        },
      });
      return;
    case 'GET /secrets':
      json(res, 200, { secrets: [...state.secrets], tokens: [...state.tokens] });
      return;
    case 'POST /revoke': {
      // Revokes every refresh token (of one client with ?client_id=), and with ?access=1 its access
      // tokens too, as an administrator or a security event would.
      let revoked = 0;
      const stores = [[provider.RefreshToken, state.refreshTokens]];
      if (url.searchParams.get('access') === '1') stores.push([provider.AccessToken, state.accessTokens]);
      for (const [Model, tokens] of stores) {
        for (const [jti, owner] of tokens) {
          if (clientId && owner !== clientId) continue;
          const token = await Model.find(jti, { ignoreExpiration: true });
          if (token) { await token.destroy(); revoked += 1; }
        }
      }
      json(res, 200, { revoked });
      return;
    }
    case 'POST /access-ttl': {
      const seconds = Number(url.searchParams.get('seconds'));
      if (!Number.isInteger(seconds) || seconds < 1) { json(res, 400, { error: 'seconds must be a whole number >= 1' }); return; }
      state.accessTtl = seconds;
      json(res, 200, { access_ttl: seconds });
      return;
    }
    default:
      json(res, 404, { error: `no route ${route}` });
  }
}

// ---------------------------------------------------------------------------------------------- ready
phase('ready');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdout.write(`${JSON.stringify({
  issuer,
  mcp_url: resource,
  resource,
  prm_url: prmUrl,
  control_url: `http://${HOST}:${controlPort}`,
})}\n`);
