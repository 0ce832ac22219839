#!/usr/bin/env python3
"""What an attacker (or a standard JOSE/X.509 library) does from outside the
project's own code: unseal a soft processor's key with its root key, make
certificates the manufacturer never issued, and verify receipts.

  forge.py unseal STATE identity|keywrap OUT.pem
  forge.py selfsign KEY.pem SERIAL identity|keywrap OUT.pem
  forge.py issue CA_DIR CSR.pem identity|keywrap OUT.pem --start-days D --days N
  forge.py verify-jws JWS_FILE CERT.pem      (prints the payload JSON)
"""
import argparse
import base64
import datetime
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def unseal(args):
    root = open(f"{args.state}/root.key", "rb").read()
    sealed = open(f"{args.state}/{args.role}.key.sealed", "rb").read()
    pem = AESGCM(root).decrypt(sealed[:12], sealed[12:], f"sealdrop trp key v1 {args.role}".encode())
    open(args.out, "wb").write(pem)


def device_cert(subject_key, issuer_name, issuer_key, serial, role, start, days, self_signed=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before = now + datetime.timedelta(days=start)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sealdrop processor {serial}"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, serial)])
    usage = dict(digital_signature=role == "identity", key_agreement=role == "keywrap",
                 content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    b = (x509.CertificateBuilder()
         .subject_name(name)
         .issuer_name(name if self_signed else issuer_name)
         .public_key(subject_key)
         .serial_number(x509.random_serial_number())
         .not_valid_before(not_before)
         .not_valid_after(not_before + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(**usage), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                        critical=False))
    return b.sign(issuer_key, hashes.SHA256())


def selfsign(args):
    key = serialization.load_pem_private_key(open(args.key, "rb").read(), None)
    cert = device_cert(key.public_key(), None, key, args.serial, args.role, -1, 365, self_signed=True)
    open(args.out, "wb").write(cert.public_bytes(serialization.Encoding.PEM))


def issue(args):
    ca_key = serialization.load_pem_private_key(open(f"{args.ca}/ca.key", "rb").read(), None)
    ca_cert = x509.load_pem_x509_certificate(open(f"{args.ca}/ca.pem", "rb").read())
    csr = x509.load_pem_x509_csr(open(args.csr, "rb").read())
    serial = csr.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value
    cert = device_cert(csr.public_key(), ca_cert.subject, ca_key, serial, args.role, args.start_days, args.days)
    open(args.out, "wb").write(cert.public_bytes(serialization.Encoding.PEM))


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jws(args):
    jws = open(args.jws).read().strip()
    header_b64, payload_b64, sig_b64 = jws.split(".")
    header = json.loads(b64d(header_b64))
    if header.get("alg") != "ES256":
        sys.exit("not ES256")
    sig = b64d(sig_b64)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    cert = x509.load_pem_x509_certificate(open(args.cert, "rb").read())
    cert.public_key().verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    print(b64d(payload_b64).decode())


p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="cmd", required=True)
s = sub.add_parser("unseal"); s.add_argument("state"); s.add_argument("role"); s.add_argument("out"); s.set_defaults(f=unseal)
s = sub.add_parser("selfsign"); s.add_argument("key"); s.add_argument("serial"); s.add_argument("role"); s.add_argument("out"); s.set_defaults(f=selfsign)
s = sub.add_parser("issue"); s.add_argument("ca"); s.add_argument("csr"); s.add_argument("role"); s.add_argument("out")
s.add_argument("--start-days", type=int, default=0); s.add_argument("--days", type=int, default=365); s.set_defaults(f=issue)
s = sub.add_parser("verify-jws"); s.add_argument("jws"); s.add_argument("cert"); s.set_defaults(f=verify_jws)
a = p.parse_args()
a.f(a)
