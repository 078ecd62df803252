#!/usr/bin/env python3
"""Writes a `bindings = "bin"` wheel from binaries `make dist` already built, as maturin lays it out:
<name>-<version>.data/scripts/<binaries>, .dist-info/{METADATA,WHEEL,licenses/LICENSE,RECORD}.

Why not maturin for these: maturin --zig runs cargo with its own zig wrappers as linker and C
compiler, and cargo fingerprints the linker, so every crate was compiled again (6 min here for the
x86_64 glibc build) only to produce the same bytes; and cargo-zigbuild's next run compiled them all
back. The core metadata is maturin's own: the PKG-INFO of the sdist it wrote (METADATA and PKG-INFO
are the same core metadata format).

Usage: wheel_from_binaries.py OUT_DIR PKG_INFO LICENSE PLATFORM_TAG[.TAG...] BINARY...
"""
import base64
import hashlib
import pathlib
import sys
import zipfile


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main() -> None:
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    out_dir, pkg_info, license_file, platforms, *binaries = sys.argv[1:]
    metadata = pathlib.Path(pkg_info).read_bytes()
    fields = dict(
        line.split(": ", 1) for line in metadata.decode().split("\n\n", 1)[0].splitlines() if ": " in line
    )
    dist = fields["Name"].replace("-", "_")
    version = fields["Version"]
    tags = platforms.split(".")
    wheel_meta = "Wheel-Version: 1.0\nGenerator: scripts/packaging/wheel_from_binaries.py\nRoot-Is-Purelib: false\n"
    wheel_meta += "".join(f"Tag: py3-none-{tag}\n" for tag in tags)
    info = f"{dist}-{version}.dist-info"
    files = [(f"{dist}-{version}.data/scripts/{pathlib.Path(b).name}", pathlib.Path(b).read_bytes(), 0o755) for b in binaries]
    files += [
        (f"{info}/METADATA", metadata, 0o644),
        (f"{info}/WHEEL", wheel_meta.encode(), 0o644),
        (f"{info}/licenses/LICENSE", pathlib.Path(license_file).read_bytes(), 0o644),
    ]
    record = "".join(f"{name},{record_hash(data)},{len(data)}\n" for name, data, _ in files) + f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode(), 0o644))
    wheel = pathlib.Path(out_dir) / f"{dist}-{version}-py3-none-{platforms}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, mode in files:
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(entry, data)
    print(wheel)


if __name__ == "__main__":
    main()
