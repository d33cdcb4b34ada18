#!/usr/bin/env python3
"""Writes jwks.json and tokens.json: JWTs signed by an independent implementation (pyca/cryptography),
so the Swift verifier is checked against signatures it did not make. Run once; the output is committed.

    python3 -m pip install cryptography && python3 make_tokens.py

The private keys are thrown away: nothing here can mint new tokens.
"""
import base64, json
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def num(n, size):
    return b64(n.to_bytes(size, "big"))


es, other_es = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
rs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
k1 = ec.generate_private_key(ec.SECP256K1())
small = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def ec_jwk(key, kid, crv="P-256"):
    pub = key.public_key().public_numbers()
    return {"kty": "EC", "crv": crv, "kid": kid, "use": "sig", "alg": "ES256", "x": num(pub.x, 32), "y": num(pub.y, 32)}


rpub = rs.public_key().public_numbers()
jwks = {"keys": [
    ec_jwk(es, "es-1"),
    {"kty": "RSA", "kid": "rs-1", "use": "sig", "alg": "RS256", "n": num(rpub.n, 256), "e": b64(rpub.e.to_bytes(3, "big"))},
    {"kty": "oct", "kid": "ignored-symmetric", "k": b64(b"not a key for us")},
]}


def token(header, claims, key):
    signing = (b64(json.dumps(header, separators=(",", ":")).encode()) + "." + b64(json.dumps(claims, separators=(",", ":")).encode())).encode()
    if header["alg"] == "ES256":
        r, s = decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif header["alg"] == "RS256":
        signature = key.sign(signing, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = b""
    return signing.decode() + "." + b64(signature)


FAR = 4102444800  # 2100-01-01
good = {"sub": "user-7", "aud": "authenticated", "exp": FAR, "iat": 1764000000, "role": "authenticated",
        "app_metadata": {"organization_ids": [7, "8"]}, "user_metadata": {"organization_id": 99}}
tokens = {
    "es256_valid": token({"alg": "ES256", "kid": "es-1", "typ": "JWT"}, good, es),
    "rs256_valid": token({"alg": "RS256", "kid": "rs-1", "typ": "JWT"}, dict(good, app_metadata={"organization_id": 7}), rs),
    "es256_expired": token({"alg": "ES256", "kid": "es-1"}, dict(good, exp=1700000000), es),
    "es256_wrong_audience": token({"alg": "ES256", "kid": "es-1"}, dict(good, aud="anon"), es),
    "es256_unknown_kid": token({"alg": "ES256", "kid": "es-2"}, good, es),
    "es256_other_key": token({"alg": "ES256", "kid": "es-1"}, good, other_es),
    "rs256_signed_as_es_kid": token({"alg": "RS256", "kid": "es-1"}, good, rs),
    "es256_not_before_2100": token({"alg": "ES256", "kid": "es-1"}, dict(good, nbf=FAR - 10), es),
    "alg_none": token({"alg": "none", "typ": "JWT"}, good, None),
}
# The secp256k1 key listed as P-256 must never verify (a wrong curve under a P-256 label).
jwks_wrong_curve = {"keys": [dict(ec_jwk(k1, "k1"), crv="P-256")]}
tokens["es256_secp256k1"] = token({"alg": "ES256", "kid": "k1"}, good, k1)
tokens["es256_crit"] = token({"alg": "ES256", "kid": "es-1", "crit": ["b64"], "b64": True}, good, es)

from cryptography.hazmat.primitives import serialization
der = lambda key: base64.b64encode(key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
# SubjectPublicKeyInfo DER (standard base64) of keys the verifier must refuse or accept directly.
spki = {"rsa1024": der(small), "rsa2048": der(rs), "p256": der(es), "secp256k1": der(k1)}
# A message signed with the 1024-bit key (RS256), and with the 2048-bit one, over b"meterlake".
signatures = {"rsa1024": b64(small.sign(b"meterlake", padding.PKCS1v15(), hashes.SHA256())),
              "rsa2048": b64(rs.sign(b"meterlake", padding.PKCS1v15(), hashes.SHA256()))}
with open("jwks.json", "w") as handle:
    json.dump({"jwks": jwks, "jwks_wrong_curve": jwks_wrong_curve, "spki": spki, "signatures": signatures}, handle, indent=1)
with open("tokens.json", "w") as handle:
    json.dump(tokens, handle, indent=1)
