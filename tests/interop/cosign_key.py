#!/usr/bin/env python3
"""An independent implementation of cosign's encrypted private key format.

Written from the format's description (docs/formats.md §1.1, go-securesystemslib
`encrypted`), not from hermetic's code, to check hermetic's keys against it. It uses only
hashlib.scrypt (standard library), PyNaCl (secretbox) and cryptography (PKCS#8); on Debian:
python3-nacl and python3-cryptography. Used by engine/src/signing/interop_tests.rs.

The password is read from COSIGN_PASSWORD (empty when unset), as cosign does.

  cosign_key.py generate KEY PUB [--label SIGSTORE|COSIGN] [--log-n 15|16|17] [--crlf]
      writes an encrypted private key to KEY and its public key to PUB
  cosign_key.py decrypt KEY
      decrypts KEY and prints its public key (PEM); exit 1 on a wrong password
"""
import argparse
import base64
import hashlib
import json
import os
import sys

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ENCRYPTED_LABELS = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
# Enough for N = 2^17, r = 8 (128 MiB); hashlib's default limit is 32 MiB.
SCRYPT_MAXMEM = 256 * 1024 * 1024


def password():
    return os.environb.get(b"COSIGN_PASSWORD", b"")


def scrypt_key(secret, salt, n, r, p):
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)


def b64(data):
    return base64.b64encode(data).decode("ascii")


def pem_encode(label, data, newline):
    body = b64(data)
    lines = [f"-----BEGIN {label}-----"]
    lines += [body[i : i + 64] for i in range(0, len(body), 64)]
    lines.append(f"-----END {label}-----")
    return newline.join(lines) + newline


def pem_decode(text):
    lines = [line.strip() for line in text.splitlines()]
    begin = next(i for i, line in enumerate(lines) if line.startswith("-----BEGIN "))
    label = lines[begin][len("-----BEGIN ") : -len("-----")]
    end = lines.index(f"-----END {label}-----", begin)
    return label, base64.b64decode("".join(lines[begin + 1 : end]), validate=True)


def generate(args):
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    n = 1 << args.log_n
    salt = os.urandom(32)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(scrypt_key(password(), salt, n, 8, 1))
    # EncryptedMessage.ciphertext is the Poly1305 tag followed by the encrypted bytes.
    ciphertext = box.encrypt(pkcs8, nonce).ciphertext
    document = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(ciphertext),
    }
    encoded = json.dumps(document, separators=(",", ":")).encode()
    newline = "\r\n" if args.crlf else "\n"
    with open(args.key, "w", newline="") as out:
        out.write(pem_encode(f"ENCRYPTED {args.label} PRIVATE KEY", encoded, newline))
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open(args.pub, "wb") as out:
        out.write(public)
    return 0


def decrypt(args):
    with open(args.key) as source:
        label, body = pem_decode(source.read())
    if label not in ENCRYPTED_LABELS:
        print(f"not an encrypted cosign key: {label}", file=sys.stderr)
        return 2
    document = json.loads(body)
    kdf, cipher = document["kdf"], document["cipher"]
    if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
        print(f"unsupported algorithms: {kdf['name']}, {cipher['name']}", file=sys.stderr)
        return 2
    params = kdf["params"]
    box_key = scrypt_key(
        password(), base64.b64decode(kdf["salt"]), params["N"], params["r"], params["p"]
    )
    try:
        pkcs8 = nacl.secret.SecretBox(box_key).decrypt(
            base64.b64decode(document["ciphertext"]), base64.b64decode(cipher["nonce"])
        )
    except nacl.exceptions.CryptoError:
        print("wrong password", file=sys.stderr)
        return 1
    key = serialization.load_der_private_key(pkcs8, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        print("not an ECDSA P-256 key", file=sys.stderr)
        return 2
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sys.stdout.write(public.decode("ascii"))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate")
    gen.add_argument("key")
    gen.add_argument("pub")
    gen.add_argument("--label", choices=["SIGSTORE", "COSIGN"], default="SIGSTORE")
    gen.add_argument("--log-n", type=int, choices=[15, 16, 17], default=16)
    gen.add_argument("--crlf", action="store_true")
    gen.set_defaults(run=generate)
    dec = commands.add_parser("decrypt")
    dec.add_argument("key")
    dec.set_defaults(run=decrypt)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
