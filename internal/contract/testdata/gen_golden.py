#!/usr/bin/env python3
"""Writes the golden files of package contract with orjson and cryptography.

The Go tests never run this script; they only read what it wrote. Run it by
hand from anywhere (Python 3.11, orjson 3.8, cryptography) after changing an
input, and commit the outputs:

    edge.golden                  canonical form of edge.json
    sample-contract.golden       canonical form of sample-contract.json
    floats.json, floats.golden   generated number literals and their canonical form
    addressbook.sha256           SHA-256 of the canonical form of the shared
                                 address book contract (not ours to ship)
    edge.signed-by-python.json   edge.json signed as service, then as network
    test-only-rsa2048-key.pem    throwaway key for the signatures; made once
"""

import base64
import hashlib
import json
import math
import os
import random
import struct

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
ADDRESS_BOOK = os.path.join(
    HERE, "..", "..", "..", "..", "shared", "testdata", "contracts", "addressbook.json"
)
KEY_FILE = os.path.join(HERE, "test-only-rsa2048-key.pem")

# The certificate names the Go test gives its self-signed test certificates.
SERVICE_CN = "data.service-data-4294967040.byoda.test"
NETWORK_CN = "network.network-data.byoda.test"


def canonical(text: str) -> bytes:
    """Canonical bytes of a JSON text, checked to agree for both loaders."""
    opts = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2
    out = orjson.dumps(json.loads(text), option=opts)
    if orjson.dumps(orjson.loads(text), option=opts) != out:
        raise SystemExit("json.loads and orjson.loads disagree")
    return out


def read(name: str) -> str:
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


def write(name: str, data: bytes) -> None:
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def float_literals(count: int) -> list[str]:
    """Number literals of many shapes, the same on every run."""
    rng = random.Random(20250101)
    lits: list[str] = []
    while len(lits) < count:
        kind = rng.randrange(5)
        if kind == 0:
            x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
            if math.isfinite(x):
                lits.append(repr(x))
        elif kind == 1:
            mant = rng.randrange(10 ** rng.randrange(1, 18))
            lits.append(f"{mant}.{rng.randrange(1000)}E{rng.randrange(-30, 30):+d}")
        elif kind == 2:
            lits.append(f"{rng.randrange(10 ** rng.randrange(1, 18))}.{rng.randrange(10**6)}")
        elif kind == 3:
            lits.append(repr(rng.random() * 10.0 ** rng.randrange(-25, 25)))
        else:
            lits.append(repr(float(rng.randrange(1, 10**16)) * 10.0 ** rng.randrange(-20, 20)))
    return lits


def test_key() -> rsa.RSAPrivateKey:
    if not os.path.exists(KEY_FILE):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write(os.path.basename(KEY_FILE), pem)
    with open(KEY_FILE, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def signed(doc: dict, key: rsa.RSAPrivateKey) -> bytes:
    """doc signed as service, then as network, both with key."""
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    entries = [("service", SERVICE_CN, "2025-01-02T03:04:05"),
               ("network", NETWORK_CN, "2025-01-02T03:04:06")]
    doc["signatures"] = {}
    for signer, cn, timestamp in entries:
        message = canonical(json.dumps(doc))
        signature = key.sign(message, pss, hashes.SHA256())
        doc["signatures"][signer] = {
            "signature": base64.b64encode(signature).decode(),
            "hash_algorithm": "SHA256",
            "timestamp": timestamp,
            "certificate": cn,
        }
    return canonical(json.dumps(doc))


def main() -> None:
    write("edge.golden", canonical(read("edge.json")))
    write("sample-contract.golden", canonical(read("sample-contract.json")))

    floats = "[\n" + ",\n".join(float_literals(1500)) + "\n]\n"
    write("floats.json", floats.encode())
    write("floats.golden", canonical(floats))

    with open(ADDRESS_BOOK, encoding="utf-8") as f:
        digest = hashlib.sha256(canonical(f.read())).hexdigest()
    write("addressbook.sha256", (digest + "\n").encode())

    write("edge.signed-by-python.json", signed(json.loads(read("edge.json")), test_key()))


if __name__ == "__main__":
    main()
