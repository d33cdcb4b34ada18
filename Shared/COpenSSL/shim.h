// The OpenSSL (libcrypto) boundary: EVP AEAD, digests, HMAC, CSPRNG and constant-time compare.
// Only the Cryptography module imports this.
#ifndef METERLAKE_COPENSSL_SHIM_H
#define METERLAKE_COPENSSL_SHIM_H

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

/// EVP_MD_CTX_new and friends are functions, but the SHA-256 size is a macro expression.
static inline int copenssl_sha256_size(void) { return 32; }

#endif
