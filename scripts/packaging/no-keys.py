#!/usr/bin/env python3
"""Fails if a release artifact holds private key material: a PEM private key block, or a file named
like a key or a PKCS#12 bundle. The test fixtures' keys must never ship (README, "Secrets").

Usage: no-keys.py ARTIFACT...   (.crate/.tar.gz/.tgz archives, .whl/.mcpb/.zip archives)
"""
import re
import sys
import tarfile
import zipfile

# A real PEM key block: the BEGIN line followed by base64 (the binaries and sources only contain the
# bare marker strings they parse for).
PEM_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n(Proc-Type:[^\n]*\n(DEK-Info:[^\n]*\n)?\r?\n)?[A-Za-z0-9+/=]{40,}")
KEY_NAME = re.compile(r"\.(key|p12|pfx|p8|jks)$|(^|/)fixtures/", re.IGNORECASE)


def members(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                yield name, z.read(name)
    else:
        with tarfile.open(path) as t:
            for m in t.getmembers():
                if m.isfile():
                    yield m.name, t.extractfile(m).read()


def main(paths):
    bad = []
    for path in paths:
        found = []
        count = 0
        for name, data in members(path):
            count += 1
            if KEY_NAME.search(name):
                found.append(f"{path}: {name} (a key or fixture file)")
            elif PEM_KEY.search(data):
                found.append(f"{path}: {name} (contains a PEM private key)")
        if not found:
            print(f"no-keys: {path}: {count} files, no private key")
        bad += found
    if bad:
        print("no-keys: private key material in release artifacts:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
