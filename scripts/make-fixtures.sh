#!/usr/bin/env bash
# Generates the TEST-ONLY keys and certificates in fixtures/ with the openssl CLI (3.x).
#
# Idempotent: when every expected file already exists it does nothing, so `make fixtures` does not
# churn the committed files. `--force` (or FORCE=1) throws them away and makes a fresh set.
#
# Every encrypted file uses the passphrase `fixture-pass`. Certificates are valid for 100 years,
# except client-expired.crt, whose validity lies entirely in the past.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/fixtures"
PASS="fixture-pass"
DAYS=36500

EXPECTED=(
  ca.crt ca.key
  server.crt server.key server-internal.crt server-internal.key
  client-rsa.crt client-rsa.key client-rsa.pkcs1.key client-rsa.enc.key
  client-rsa.legacy-enc.key client-rsa.des3-enc.key client-rsa.v1-3des-enc.key
  client-ec.crt client-ec.key client-ec.pkcs8.key client-ec.legacy-enc.key
  client-ec384.crt client-ec384.key client-ec384.pkcs8.key client-ed25519.crt client-ed25519.key
  client.p12 client-legacy.p12 client-nopass.p12
  intermediate-ca.crt intermediate-ca.key client-chain.crt client-chain.key
  rogue-ca.crt rogue-ca.key rogue-client.crt rogue-client.key rogue-server.crt rogue-server.key
  client-expired.crt client-expired.key client-mismatch.key
)

# Certificates met in the field, issued by the test CA above. Added later than the set above, so
# they are made on their own (with the committed CA) when missing, without churning the others.
FIELD=(
  client-v1.crt client-v1.key
  server-rsa1024.crt server-rsa1024.key server-sha1.crt server-sha1.key
  server-clientauth.crt server-clientauth.key server-ca-leaf.crt server-ca-leaf.key
)

force="${FORCE:-0}"
[[ "${1:-}" == "--force" ]] && force=1

core_missing=0
field_missing=0
for f in "${EXPECTED[@]}"; do [[ -s "$OUT/$f" ]] || core_missing=1; done
for f in "${FIELD[@]}"; do [[ -s "$OUT/$f" ]] || field_missing=1; done
if [[ "$force" != 1 && "$core_missing" == 0 && "$field_missing" == 0 ]]; then
  echo "fixtures/ is complete; nothing to do (use --force to regenerate)"
  exit 0
fi
# Only the field set is missing: keep the committed CA and everything it issued.
field_only=0
[[ "$force" != 1 && "$core_missing" == 0 ]] && field_only=1

case "$(openssl version)" in
  "OpenSSL 3."*) ;;
  *) echo "make-fixtures.sh needs OpenSSL 3.x, found: $(openssl version)" >&2; exit 1 ;;
esac

mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# X.509 v3 extension sections. rustls/webpki needs a SAN on server certificates (CN is ignored),
# an EKU matching the role, and CA:TRUE with keyCertSign on issuers.
cat > ext.cnf <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[server_internal]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:mcp.internal.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ed25519]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[server_clientauth]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[server_ca_leaf]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

rsa_key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }
ec_key() { openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$2" -out "$1"; }

# self_signed_ca KEY CRT CN
self_signed_ca() {
  openssl req -new -x509 -sha256 -key "$1" -out "$2" -days "$DAYS" -subj "/O=mcp-secure-remote tests/CN=$3" \
    -extensions ca -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n'; cat ext.cnf)
}

# issue KEY CRT CN SECTION CA_CRT CA_KEY
issue() {
  openssl req -new -key "$1" -subj "/O=mcp-secure-remote tests/CN=$3" -out req.csr
  openssl x509 -req -sha256 -in req.csr -CA "$5" -CAkey "$6" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$DAYS" -extfile ext.cnf -extensions "$4" -out "$2" 2>/dev/null
  rm -f req.csr
}

# issue_field: the FIELD certificates, issued by ca.crt/ca.key in the working directory.
issue_field() {
  # X.509 v1, as `openssl x509 -req` without an extensions file makes it (the original README's recipe).
  ec_key client-v1.key P-256
  openssl req -new -key client-v1.key -subj "/O=mcp-secure-remote tests/CN=mcp-test-client-v1" -out req.csr
  openssl x509 -req -sha256 -in req.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days "$DAYS" -out client-v1.crt 2>/dev/null
  rm -f req.csr
  # A 1024-bit RSA server key (rustls refuses to verify its signatures).
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out server-rsa1024.key 2>/dev/null
  issue server-rsa1024.key server-rsa1024.crt localhost server ca.crt ca.key
  # A server certificate signed with SHA-1.
  ec_key server-sha1.key P-256
  openssl req -new -key server-sha1.key -subj "/O=mcp-secure-remote tests/CN=localhost" -out req.csr
  openssl x509 -req -sha1 -in req.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
    -days "$DAYS" -extfile ext.cnf -extensions server -out server-sha1.crt 2>/dev/null
  rm -f req.csr
  # A server certificate whose extended key usage is clientAuth only, and a CA certificate as leaf.
  ec_key server-clientauth.key P-256
  issue server-clientauth.key server-clientauth.crt localhost server_clientauth ca.crt ca.key
  ec_key server-ca-leaf.key P-256
  issue server-ca-leaf.key server-ca-leaf.crt localhost server_ca_leaf ca.crt ca.key
}

if [[ "$field_only" == 1 ]]; then
  cp "$OUT/ca.crt" "$OUT/ca.key" .
  issue_field
  for f in "${FIELD[@]}"; do cp "$f" "$OUT/$f"; done
  chmod 644 "$OUT"/*
  echo "wrote ${#FIELD[@]} files to $OUT"
  exit 0
fi

# --- CA ---------------------------------------------------------------------------------------
rsa_key ca.key
self_signed_ca ca.key ca.crt "mcp-secure-remote test CA"
issue_field

# --- servers ----------------------------------------------------------------------------------
ec_key server.key P-256
issue server.key server.crt localhost server ca.crt ca.key
ec_key server-internal.key P-256
issue server-internal.key server-internal.crt mcp.internal.test server_internal ca.crt ca.key

# --- RSA client in every key encoding -----------------------------------------------------------
rsa_key client-rsa.key                       # PKCS#8 (unencrypted PEM)
issue client-rsa.key client-rsa.crt mcp-test-client-rsa client ca.crt ca.key
openssl rsa -in client-rsa.key -traditional -out client-rsa.pkcs1.key 2>/dev/null
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -in client-rsa.key \
  -passout "pass:$PASS" -out client-rsa.enc.key
openssl rsa -in client-rsa.key -traditional -aes256 -passout "pass:$PASS" -out client-rsa.legacy-enc.key 2>/dev/null
openssl rsa -in client-rsa.key -traditional -des3 -passout "pass:$PASS" -out client-rsa.des3-enc.key 2>/dev/null
# PKCS#5 v1.5 / PKCS#12 PBE (pbeWithSHA1And3-KeyTripleDES-CBC): a rare format we reject with advice.
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in client-rsa.key -passout "pass:$PASS" \
  -out client-rsa.v1-3des-enc.key

# --- EC and Ed25519 clients ---------------------------------------------------------------------
ec_key client-ec.pkcs8.key P-256
openssl ec -in client-ec.pkcs8.key -out client-ec.key 2>/dev/null   # SEC1 (the traditional EC PEM form)
issue client-ec.key client-ec.crt mcp-test-client-ec client ca.crt ca.key
openssl ec -in client-ec.key -aes256 -passout "pass:$PASS" -out client-ec.legacy-enc.key 2>/dev/null
ec_key client-ec384.pkcs8.key P-384
openssl ec -in client-ec384.pkcs8.key -out client-ec384.key 2>/dev/null
issue client-ec384.key client-ec384.crt mcp-test-client-ec384 client ca.crt ca.key
openssl genpkey -algorithm ED25519 -out client-ed25519.key
issue client-ed25519.key client-ed25519.crt mcp-test-client-ed25519 client_ed25519 ca.crt ca.key

# --- PKCS#12 bundles of the RSA client (with the CA certificate) --------------------------------
openssl pkcs12 -export -inkey client-rsa.key -in client-rsa.crt -certfile ca.crt \
  -name mcp-test-client-rsa -passout "pass:$PASS" -out client.p12
openssl pkcs12 -export -legacy -inkey client-rsa.key -in client-rsa.crt -certfile ca.crt \
  -name mcp-test-client-rsa -passout "pass:$PASS" -out client-legacy.p12
openssl pkcs12 -export -inkey client-rsa.key -in client-rsa.crt -certfile ca.crt \
  -name mcp-test-client-rsa -passout "pass:" -out client-nopass.p12

# --- a client issued by an intermediate CA: client-chain.crt is leaf + intermediate ----------------
rsa_key intermediate-ca.key
issue intermediate-ca.key intermediate-ca.crt "mcp-secure-remote test intermediate CA" intermediate ca.crt ca.key
ec_key client-chain.key P-256
issue client-chain.key client-chain.leaf.crt mcp-test-client-chain client intermediate-ca.crt intermediate-ca.key
cat client-chain.leaf.crt intermediate-ca.crt > client-chain.crt
rm -f client-chain.leaf.crt

# --- a CA nobody trusts, with a client and a server ---------------------------------------------
rsa_key rogue-ca.key
self_signed_ca rogue-ca.key rogue-ca.crt "mcp-secure-remote rogue CA"
ec_key rogue-client.key P-256
issue rogue-client.key rogue-client.crt mcp-test-rogue-client client rogue-ca.crt rogue-ca.key
ec_key rogue-server.key P-256
issue rogue-server.key rogue-server.crt localhost server rogue-ca.crt rogue-ca.key

# --- expired client: OpenSSL 3.0's `x509 -req` cannot back-date, `openssl ca` can ----------------
mkdir -p ca-db/new
: > ca-db/index.txt
openssl rand -hex 16 > ca-db/serial
cat > ca.cnf <<EOF
[ca]
default_ca = test_ca
[test_ca]
dir = $WORK/ca-db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir/new
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
organizationName = optional
commonName = supplied
EOF
cat ext.cnf >> ca.cnf
ec_key client-expired.key P-256
openssl req -new -key client-expired.key -subj "/O=mcp-secure-remote tests/CN=mcp-test-client-expired" -out expired.csr
openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr -out expired.full.crt \
  -startdate 20200101000000Z -enddate 20210101000000Z -extfile ext.cnf -extensions client -notext 2>/dev/null
openssl x509 -in expired.full.crt -out client-expired.crt

# --- a valid key that belongs to no certificate -------------------------------------------------
rsa_key client-mismatch.key

for f in "${EXPECTED[@]}" "${FIELD[@]}"; do cp "$f" "$OUT/$f"; done
chmod 644 "$OUT"/*
echo "wrote $((${#EXPECTED[@]} + ${#FIELD[@]})) files to $OUT"
