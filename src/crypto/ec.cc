#include "crypto/ec.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include <array>
#include <cstring>
#include <optional>

#include "crypto/ossl_internal.h"
#include "crypto/sha256.h"

namespace sealdrop {
namespace {

constexpr size_t kScalarSize = 32;
constexpr size_t kCoordinateSize = 32;
constexpr char kCurveName[] = "prime256v1";
// Keys are a few hundred bytes; the bound keeps BIO lengths in int range.
constexpr size_t kMaxPemSize = 64 * 1024;

using Point = std::array<uint8_t, kP256PointSize>;

struct EcGroupFree {
  void operator()(EC_GROUP* g) const { EC_GROUP_free(g); }
};
struct EcPointFree {
  void operator()(EC_POINT* p) const { EC_POINT_free(p); }
};
struct BnCtxFree {
  void operator()(BN_CTX* c) const { BN_CTX_free(c); }
};
// For BIGNUMs that hold a private scalar: wiped, not just freed.
struct BnClearFree {
  void operator()(BIGNUM* b) const { BN_clear_free(b); }
};
using SecretBn = std::unique_ptr<BIGNUM, BnClearFree>;

// Named curve P-256 only. Keys with explicit curve parameters have no group
// name and are refused here, which also keeps OpenSSL's explicit-parameter
// code paths (a recurring source of CVEs) out of reach.
bool IsP256(EVP_PKEY* pkey) {
  if (pkey == nullptr || EVP_PKEY_is_a(pkey, "EC") != 1) return false;
  char name[64];
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name),
                                     &len) != 1)
    return false;
  return std::string_view(name, len) == kCurveName;
}

// The uncompressed point 0x04 || X || Y, whatever form the key was stored in.
std::optional<Point> UncompressedPoint(EVP_PKEY* pkey) {
  BIGNUM* x = nullptr;
  BIGNUM* y = nullptr;
  bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
            EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1;
  UniquePtr<BIGNUM> owned_x(x), owned_y(y);
  if (!ok) return std::nullopt;
  Point point;
  point[0] = 0x04;
  if (BN_bn2binpad(x, point.data() + 1, kCoordinateSize) != kCoordinateSize ||
      BN_bn2binpad(y, point.data() + 1 + kCoordinateSize, kCoordinateSize) != kCoordinateSize)
    return std::nullopt;
  return point;
}

// Partial public-key validation (SP 800-56A rev. 3, 5.6.2.3.4): not the
// point at infinity, coordinates in range, on the curve. The full check adds
// n*Q == O, a whole scalar multiplication per key, which on P-256 (cofactor 1)
// every point on the curve already satisfies; it was an eighth of the
// server's CPU per purchase.
bool PassesPublicCheck(EVP_PKEY* pkey) {
  UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  return ctx && EVP_PKEY_public_check_quick(ctx.get()) == 1;
}

// Builds an EVP_PKEY from OSSL_PARAMs (group name, public point, and for a
// private key the scalar).
UniquePtr<EVP_PKEY> KeyFromParams(int selection, OSSL_PARAM* params) {
  UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, selection, params) != 1)
    return nullptr;
  return UniquePtr<EVP_PKEY>(raw);
}

// A public-only key from an uncompressed point, rejecting points that are not
// on the curve (RFC 9180 section 7.1.4 requires this "partial public-key
// validation" for every public key input).
Result<EcPublicKey> PublicFromPoint(ByteView point) {
  if (point.size() != kP256PointSize || point[0] != 0x04)
    return Fail(ErrorCode::kMalformed, "EC point is not a 65-byte uncompressed P-256 point");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                       const_cast<char*>(kCurveName), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                        const_cast<uint8_t*>(point.data()), point.size()),
      OSSL_PARAM_construct_end(),
  };
  UniquePtr<EVP_PKEY> pkey = KeyFromParams(EVP_PKEY_PUBLIC_KEY, params);
  if (!pkey || !PassesPublicCheck(pkey.get())) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "EC point is not on the P-256 curve");
  }
  auto impl = std::make_shared<EcPublicKey::Impl>();
  impl->pkey = std::move(pkey);
  impl->point.assign(point.begin(), point.end());
  return EcPublicKey(std::move(impl));
}

const uint8_t* NonNull(ByteView b) {
  static const uint8_t kEmpty = 0;
  return b.empty() ? &kEmpty : b.data();
}

UniquePtr<BIO> ReadOnlyBio(ByteView data) {
  return UniquePtr<BIO>(BIO_new_mem_buf(NonNull(data), static_cast<int>(data.size())));
}

// Encrypted private keys are not supported; without this callback OpenSSL
// would prompt for a passphrase on the terminal.
int RefusePassphrase(char*, int, int, void*) { return -1; }

}  // namespace

Result<EcPublicKey> WrapPublicKey(EVP_PKEY* pkey) {
  if (!IsP256(pkey)) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "key is not an EC P-256 key");
  }
  std::optional<Point> point = UncompressedPoint(pkey);
  if (!point) return std::unexpected(OsslError(ErrorCode::kMalformed, "reading the EC point"));
  return PublicFromPoint(*point);
}

namespace {
// `check_pair`: a key read from outside gets the full check (scalar in range,
// public point valid, the two match); a key OpenSSL has just generated is a
// pair by construction, and the check is a scalar multiplication per
// ephemeral key.
Result<EcPrivateKey> WrapPrivate(EVP_PKEY* pkey, bool check_pair) {
  if (!IsP256(pkey)) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument, "private key is not an EC P-256 key");
  }
  UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx || (check_pair && EVP_PKEY_check(ctx.get()) != 1)) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument, "EC private key is not a valid P-256 key pair");
  }
  SEALDROP_ASSIGN(EcPublicKey public_key, WrapPublicKey(pkey));
  if (EVP_PKEY_up_ref(pkey) != 1) OsslFatal("EVP_PKEY_up_ref");
  auto impl = std::make_shared<EcPrivateKey::Impl>();
  impl->pkey.reset(pkey);
  impl->public_key = std::move(public_key);
  return EcPrivateKey(std::move(impl));
}
}  // namespace

Result<EcPrivateKey> WrapPrivateKey(EVP_PKEY* pkey) { return WrapPrivate(pkey, /*check_pair=*/true); }

Result<EcPrivateKey> WrapHardwarePrivateKey(EVP_PKEY* pkey, ByteView point) {
  if (pkey == nullptr || EVP_PKEY_is_a(pkey, "EC") != 1) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument, "the hardware key is not an EC key");
  }
  SEALDROP_ASSIGN(EcPublicKey public_key, PublicFromPoint(point));
  if (EVP_PKEY_up_ref(pkey) != 1) OsslFatal("EVP_PKEY_up_ref");
  auto impl = std::make_shared<EcPrivateKey::Impl>();
  impl->pkey.reset(pkey);
  impl->public_key = std::move(public_key);
  return EcPrivateKey(std::move(impl));
}

// --- EcPublicKey ---

Result<EcPublicKey> EcPublicKey::FromPem(std::string_view pem) {
  if (pem.size() > kMaxPemSize) return Fail(ErrorCode::kTooLarge, "public key PEM is too large");
  UniquePtr<BIO> bio = ReadOnlyBio(AsBytes(pem));
  if (!bio) OsslFatal("BIO_new_mem_buf");
  UniquePtr<EVP_PKEY> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "not a PEM public key (expected BEGIN PUBLIC KEY)");
  }
  return WrapPublicKey(pkey.get());
}

Result<EcPublicKey> EcPublicKey::FromSpkiDer(ByteView der) {
  if (der.size() > kMaxPemSize) return Fail(ErrorCode::kTooLarge, "public key DER is too large");
  const uint8_t* p = der.data();
  UniquePtr<EVP_PKEY> pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey || p != der.data() + der.size()) {
    ERR_clear_error();
    return Fail(ErrorCode::kMalformed, "not a DER SubjectPublicKeyInfo");
  }
  return WrapPublicKey(pkey.get());
}

Result<EcPublicKey> EcPublicKey::FromPoint(ByteView point) { return PublicFromPoint(point); }

// An EcPublicKey is always a named-curve P-256 key holding an uncompressed
// point (WrapPublicKey), so its SubjectPublicKeyInfo is this fixed DER
// header (SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING })
// followed by the 65-byte point: exactly what i2d_PUBKEY writes, without
// OpenSSL 3's encoder lookup, which cost ~100 us a call and dominated
// KeyId (ec_test checks this and ToPem against a Wycheproof key and
// OpenSSL's own encoders).
constexpr uint8_t kP256SpkiHeader[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
                                       0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};

std::string EcPublicKey::ToPem() const { return EncodePem("PUBLIC KEY", ToSpkiDer()); }

Bytes EcPublicKey::ToSpkiDer() const {
  Bytes out(std::begin(kP256SpkiHeader), std::end(kP256SpkiHeader));
  const Bytes point = ToPoint();
  out.insert(out.end(), point.begin(), point.end());
  return out;
}

Bytes EcPublicKey::ToPoint() const { return impl_->point; }

std::string EcPublicKey::KeyId() const { return Sha256Hex(ToSpkiDer()); }

Status EcPublicKey::Verify(ByteView message, ByteView signature) const {
  auto failed = [] {
    ERR_clear_error();
    return Fail(ErrorCode::kCryptoFailure, "signature does not verify");
  };
  if (signature.size() != kEs256SignatureSize) return failed();
  // JWS carries r || s (RFC 7518 section 3.4); OpenSSL verifies DER.
  UniquePtr<ECDSA_SIG> sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(signature.data(), kScalarSize, nullptr);
  BIGNUM* s = BN_bin2bn(signature.data() + kScalarSize, kScalarSize, nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    OsslFatal("building an ECDSA signature");
  }
  int der_len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (der_len <= 0) return failed();
  Bytes der(static_cast<size_t>(der_len));
  uint8_t* p = der.data();
  if (i2d_ECDSA_SIG(sig.get(), &p) != der_len) return failed();

  UniquePtr<EVP_MD_CTX> md(EVP_MD_CTX_new());
  if (!md ||
      EVP_DigestVerifyInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr,
                              impl_->pkey.get(), nullptr) != 1 ||
      EVP_DigestVerify(md.get(), der.data(), der.size(), NonNull(message), message.size()) != 1)
    return failed();
  return Ok();
}

bool EcPublicKey::operator==(const EcPublicKey& other) const {
  if (!impl_ || !other.impl_) return impl_ == other.impl_;
  // Both are P-256 points in the same (uncompressed) form.
  return impl_->point == other.impl_->point;
}

// --- EcPrivateKey ---

Result<EcPrivateKey> EcPrivateKey::Generate() {
  UniquePtr<EVP_PKEY> pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", kCurveName));
  if (!pkey) return std::unexpected(OsslError(ErrorCode::kInternal, "generating a P-256 key"));
  return WrapPrivate(pkey.get(), /*check_pair=*/false);
}

Result<EcPrivateKey> EcPrivateKey::FromPkcs8Pem(const SecretBytes& pem) {
  if (pem.size() > kMaxPemSize) return Fail(ErrorCode::kTooLarge, "private key PEM is too large");
  UniquePtr<BIO> bio = ReadOnlyBio(pem.Reveal(SecretAccess{}));
  if (!bio) OsslFatal("BIO_new_mem_buf");
  UniquePtr<EVP_PKEY> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, RefusePassphrase, nullptr));
  if (!pkey) {
    ERR_clear_error();
    return Fail(ErrorCode::kInvalidArgument,
                "not an unencrypted PEM private key (expected BEGIN PRIVATE KEY)");
  }
  return WrapPrivateKey(pkey.get());
}

Result<EcPrivateKey> EcPrivateKey::FromScalar(const SecretBytes& scalar) {
  if (scalar.size() != kScalarSize)
    return Fail(ErrorCode::kInvalidArgument, "P-256 private scalar must be 32 bytes");
  std::unique_ptr<EC_GROUP, EcGroupFree> group(
      EC_GROUP_new_by_curve_name_ex(nullptr, nullptr, NID_X9_62_prime256v1));
  std::unique_ptr<BN_CTX, BnCtxFree> bn_ctx(BN_CTX_secure_new());
  SecretBn priv(BN_secure_new());
  if (!group || !bn_ctx || !priv) OsslFatal("allocating P-256 objects");
  BN_set_flags(priv.get(), BN_FLG_CONSTTIME);
  if (BN_bin2bn(scalar.Reveal(SecretAccess{}).data(), kScalarSize, priv.get()) == nullptr)
    OsslFatal("BN_bin2bn");
  // RFC 9180 section 7.1.2: DeserializePrivateKey must reject 0 and values
  // not below the group order.
  if (BN_is_zero(priv.get()) || BN_cmp(priv.get(), EC_GROUP_get0_order(group.get())) >= 0)
    return Fail(ErrorCode::kInvalidArgument, "P-256 private scalar is out of range");

  // OpenSSL 3.0 does not derive the public point when importing a bare
  // scalar, so compute it: pub = priv * G.
  std::unique_ptr<EC_POINT, EcPointFree> pub(EC_POINT_new(group.get()));
  Point point;
  if (!pub ||
      EC_POINT_mul(group.get(), pub.get(), priv.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_point2oct(group.get(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, point.data(),
                         point.size(), bn_ctx.get()) != point.size())
    return std::unexpected(OsslError(ErrorCode::kInternal, "computing the P-256 public key"));

  // OSSL_PARAM integers are native-endian.
  SecretBytes native(kScalarSize);
  if (BN_bn2nativepad(priv.get(), native.MutableData(SecretAccess{}), kScalarSize) !=
      static_cast<int>(kScalarSize))
    OsslFatal("BN_bn2nativepad");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                       const_cast<char*>(kCurveName), 0),
      OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native.MutableData(SecretAccess{}),
                              kScalarSize),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end(),
  };
  UniquePtr<EVP_PKEY> pkey = KeyFromParams(EVP_PKEY_KEYPAIR, params);
  if (!pkey) return std::unexpected(OsslError(ErrorCode::kInternal, "importing a P-256 key"));
  return WrapPrivateKey(pkey.get());
}

SecretBytes EcPrivateKey::ToPkcs8Pem() const {
  // The secure-memory BIO wipes its buffer when freed.
  UniquePtr<BIO> bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0,
                                            nullptr, nullptr) != 1)
    OsslFatal("writing a private key PEM");
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(ByteView(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(len)),
                     SecretAccess{});
}

EcPublicKey EcPrivateKey::PublicKey() const { return *impl_->public_key; }

Result<Bytes> EcPrivateKey::Sign(ByteView message) const {
  UniquePtr<EVP_MD_CTX> md(EVP_MD_CTX_new());
  Bytes der(static_cast<size_t>(EVP_PKEY_get_size(impl_->pkey.get())));
  size_t der_len = der.size();
  if (!md || der.empty() ||
      EVP_DigestSignInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, impl_->pkey.get(),
                            nullptr) != 1 ||
      EVP_DigestSign(md.get(), der.data(), &der_len, NonNull(message), message.size()) != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "ECDSA signing"));

  const uint8_t* p = der.data();
  UniquePtr<ECDSA_SIG> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)));
  if (!sig) return std::unexpected(OsslError(ErrorCode::kInternal, "decoding an ECDSA signature"));
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  Bytes out(kEs256SignatureSize);
  if (BN_bn2binpad(r, out.data(), kScalarSize) != kScalarSize ||
      BN_bn2binpad(s, out.data() + kScalarSize, kScalarSize) != kScalarSize)
    return std::unexpected(OsslError(ErrorCode::kInternal, "encoding an ES256 signature"));
  return out;
}

Result<SecretBytes> EcPrivateKey::Ecdh(const EcPublicKey& peer) const {
  UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, impl_->pkey.get(), nullptr));
  SecretBytes shared(kCoordinateSize);
  size_t len = shared.size();
  // validate_peer=0: every EcPublicKey was validated when it was made
  // (PublicFromPoint, the only way one is built), and OpenSSL's full check
  // here would add a scalar multiplication to every agreement.
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), RawPkey(peer), 0) != 1 ||
      EVP_PKEY_derive(ctx.get(), shared.MutableData(SecretAccess{}), &len) != 1 ||
      len != kCoordinateSize) {
    ERR_clear_error();
    return Fail(ErrorCode::kCryptoFailure, "ECDH key agreement failed");
  }
  return shared;
}

}  // namespace sealdrop
