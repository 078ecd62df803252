#!/usr/bin/env python3
"""An HTTPS MCP peer made of Python's own `ssl` module (OpenSSL), for the TLS diagnosis tests.

OpenSSL servers behave differently from rustls in ways users meet every day: they accept X.509 v1
client certificates, they verify the client certificate after the client thinks a TLS 1.3
handshake is done, and asyncio servers (uvicorn) then close without sending the alert. This peer
does each of those for real, on 127.0.0.1 only, with the standard library alone (no install).

Usage: openssl_peer.py --cert CRT --key KEY [--client-ca CA] [--tls 1.2|1.3] [--seclevel N]
                       [--close-without-alert] [--post-handshake-auth] [--ciphers LIST]
Prints `PORT <n>` on stdout once listening, then serves until killed. Every POST carrying a
JSON-RPC request is answered with a JSON result (an `initialize` result for `initialize`); a POST
without an id gets 202; anything else 405.

--post-handshake-auth (TLS 1.3, with --client-ca) is Apache's `SSLVerifyClient require` inside a
<Location>: the handshake asks for no certificate, and each request then asks for one by
post-handshake authentication; a client that cannot do it (it did not offer the extension) gets
Apache's own 403 page.
"""

import argparse
import json
import socket
import ssl
import sys
import threading


def tls_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if args.seclevel is not None:
        # OpenSSL's default security level refuses a 1024-bit RSA key; a misconfigured server does not.
        ctx.set_ciphers(f"DEFAULT:@SECLEVEL={args.seclevel}")
    if args.ciphers:
        # An old server's list, e.g. CBC with RSA key exchange only (TLS 1.2 suites).
        ctx.set_ciphers(args.ciphers)
    if args.tls == "1.2":
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif args.tls == "1.3":
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        if args.post_handshake_auth:
            # SSL_VERIFY_POST_HANDSHAKE: no CertificateRequest in the handshake itself.
            ctx.post_handshake_auth = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def read_request(conn):
    """One HTTP/1.1 request (head and Content-Length body), or None at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method = lines[0].split(" ")[0]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return method, body[:length]


def answer(method, body):
    if method != "POST":
        return b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"
    try:
        message = json.loads(body)
    except ValueError:
        message = {}
    if "id" not in message:
        return b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
    result = {}
    if message.get("method") == "initialize":
        result = {
            "protocolVersion": message.get("params", {}).get("protocolVersion", "2025-11-25"),
            "capabilities": {},
            "serverInfo": {"name": "openssl-peer", "version": "1"},
        }
    payload = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    return head.encode() + payload


# Apache 2.4's answer when mod_ssl cannot perform post-handshake authentication (AH10158).
APACHE_PHA_FORBIDDEN = (
    b'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>403 Forbidden</title>\n'
    b"</head><body>\n<h1>Forbidden</h1>\n<p>You don't have permission to access this resource."
    b"Reason: Cannot perform Post-Handshake Authentication.<br />\n</p>\n</body></html>\n"
)


def post_handshake_auth(conn):
    """Ask for the client certificate now; Apache's 403 if the client cannot be asked."""
    try:
        conn.verify_client_post_handshake()
        return None
    except ssl.SSLError:
        head = (
            "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
            f"Content-Length: {len(APACHE_PHA_FORBIDDEN)}\r\n\r\n"
        )
        return head.encode() + APACHE_PHA_FORBIDDEN


def serve_http(conn, pha=False):
    try:
        while True:
            request = read_request(conn)
            if request is None:
                return
            refused = post_handshake_auth(conn) if pha else None
            conn.sendall(refused or answer(*request))
    except (OSError, ssl.SSLError):
        return
    finally:
        conn.close()


def handshake_without_alert(ctx, raw):
    """Do the handshake through memory BIOs, as asyncio (uvicorn) does, and on failure close the
    socket without flushing what OpenSSL queued: the client sees EOF and no alert."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pending = outgoing.read()
            if pending:
                raw.sendall(pending)
            data = raw.recv(65536)
            if not data:
                raw.close()
                return
            incoming.write(data)
        except ssl.SSLError:
            raw.close()
            return
    # Accepted: this mode is only used to reject, so just close politely.
    raw.sendall(outgoing.read())
    raw.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--tls", choices=["1.2", "1.3", "any"], default="any")
    parser.add_argument("--seclevel", type=int)
    parser.add_argument("--close-without-alert", action="store_true")
    parser.add_argument("--post-handshake-auth", action="store_true")
    parser.add_argument("--ciphers")
    args = parser.parse_args()
    ctx = tls_context(args)

    listener = socket.create_server(("127.0.0.1", 0))
    print(f"PORT {listener.getsockname()[1]}", flush=True)
    while True:
        raw, _ = listener.accept()
        if args.close_without_alert:
            threading.Thread(target=handshake_without_alert, args=(ctx, raw), daemon=True).start()
            continue

        def handle(raw=raw):
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                # OpenSSL has already sent its alert (unknown_ca, certificate_required, ...).
                raw.close()
                return
            serve_http(conn, args.post_handshake_auth)

        threading.Thread(target=handle, daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
