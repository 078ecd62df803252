# syntax=docker/dockerfile:1
# mcp-secure-remote as a FROM-scratch image: static musl binaries, a CA bundle, nothing else (no shell,
# no libc). The proxy reads MCP on stdin, so run it with `docker run --rm -i` (see compose.yml).
#
#   docker build -t mcp-secure-remote .
#   docker run --rm -i -v /abs/certs:/certs:ro mcp-secure-remote https://mcp.example.com/mcp \
#     --tls-cert /certs/client.crt --tls-key /certs/client.key --tls-ca /certs/ca-bundle.pem
#
# The certificate files must be readable by uid 65532, the user the proxy runs as.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Native build for the image's platform (amd64 or arm64). The [profile.release] of Cargo.toml applies
# (size-optimised, stripped). The cache mounts keep crates and build output between builds.
# --no-default-features: no PKCS#11 (a static binary cannot load a module).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    set -eu; \
    triple="$(uname -m)-unknown-linux-musl"; \
    rustup target add "$triple"; \
    cargo build --release --locked --bins --no-default-features --target "$triple"; \
    mkdir /out; \
    find "target/$triple/release" -maxdepth 1 -type f -perm -u+x -exec cp {} /out/ \; ; \
    ls -l /out

FROM scratch
LABEL org.opencontainers.image.title="mcp-secure-remote" \
      org.opencontainers.image.description="stdio <-> remote MCP bridge with mTLS client-certificate authentication" \
      org.opencontainers.image.licenses="MIT"
# Public roots for servers with public certificates; --tls-ca replaces them for a private CA. (Without
# this file the proxy would fall back to the Mozilla roots compiled into it.)
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/ /usr/local/bin/
ENV PATH=/usr/local/bin
# 65532 is the conventional "nonroot" user of distroless images; it owns nothing in the image.
USER 65532:65532
ENTRYPOINT ["mcp-secure-remote"]
