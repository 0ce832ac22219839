// EC_KEY_METHOD is deprecated in OpenSSL 3 in favour of providers; the one
// provider for TPMs does not fit (see "keys as OpenSSL keys" below).
#define OPENSSL_SUPPRESS_DEPRECATED
#include "tpm/tpm.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/ec.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "base/reader.h"
#include "crypto/ossl_internal.h"
#include "crypto/sha256.h"

namespace sealdrop {
namespace {

Error TpmError(ErrorCode code, std::string_view what, TSS2_RC rc) {
  const char* text = Tss2_RC_Decode(rc);
  return Error{code, std::string(what) + " (" + (text != nullptr ? text : "unknown TPM error") + ")"};
}

// The storage parent: the template tpm2-openssl uses for parent
// TPM2_RH_OWNER, so that keys made here load in the provider.
TPM2B_PUBLIC StorageParentTemplate() {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | TPMA_OBJECT_NODA |
                       TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN;
  p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
  p.parameters.eccDetail.symmetric.keyBits.aes = 128;
  p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  return t;
}

// TCG EK Credential Profile 2.0, template L-1 (RSA 2048): what the maker's
// EK certificate certifies.
TPM2B_PUBLIC EkTemplate() {
  static const uint8_t kPolicyA[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
                                       0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
                                       0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.type = TPM2_ALG_RSA;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
                       TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
  p.authPolicy.size = sizeof kPolicyA;
  std::memcpy(p.authPolicy.buffer, kPolicyA, sizeof kPolicyA);
  p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
  p.parameters.rsaDetail.symmetric.keyBits.aes = 128;
  p.parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
  p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.rsaDetail.keyBits = 2048;
  p.parameters.rsaDetail.exponent = 0;
  p.unique.rsa.size = 256;  // zeros
  return t;
}

TPM2B_PUBLIC KeyTemplate(TpmKeyRole role) {
  TPM2B_PUBLIC t{};
  TPMT_PUBLIC& p = t.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TpmKeyAttributes(role);
  p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  return t;
}

// --- DER for TSS2 PRIVATE KEY ---

constexpr uint8_t kLoadableKeyOid[] = {0x06, 0x06, 0x67, 0x81, 0x05, 0x0a, 0x01, 0x03};  // 2.23.133.10.1.3
constexpr std::string_view kPemLabel = "TSS2 PRIVATE KEY";

void DerLength(Bytes& out, size_t n) {
  if (n < 0x80) {
    out.push_back(static_cast<uint8_t>(n));
    return;
  }
  Bytes be;
  for (size_t v = n; v > 0; v >>= 8) be.insert(be.begin(), static_cast<uint8_t>(v));
  out.push_back(static_cast<uint8_t>(0x80 | be.size()));
  out.insert(out.end(), be.begin(), be.end());
}

void DerTlv(Bytes& out, uint8_t tag, ByteView value) {
  out.push_back(tag);
  DerLength(out, value.size());
  out.insert(out.end(), value.begin(), value.end());
}

// Reads one TLV of `tag` at `in`, advancing it; the value must be DER
// (minimal length encoding).
// One DER TLV of `tag` (definite length, minimal long form up to 3 length
// bytes): its value. The cursor advances only on success.
Result<ByteView> DerRead(Reader& in, uint8_t tag) {
  auto bad = [] { return Fail(ErrorCode::kMalformed, "the TPM key file is not valid DER"); };
  Reader r = in;
  uint8_t got = 0, first = 0;
  if (!r.ReadU8(&got) || got != tag || !r.ReadU8(&first)) return bad();
  size_t len = first;
  if (first & 0x80) {
    const size_t count = first & 0x7f;
    ByteView length;
    if (count == 0 || count > 3 || !r.ReadBytes(count, &length) || length[0] == 0) return bad();
    len = 0;
    for (uint8_t byte : length) len = (len << 8) | byte;
    if (len < 0x80) return bad();
  }
  ByteView value;
  if (!r.ReadBytes(len, &value)) return bad();
  in = r;
  return value;
}

struct EsysFree {
  void operator()(void* p) const { Esys_Free(p); }
};
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFree>;

}  // namespace

uint32_t TpmKeyAttributes(TpmKeyRole role) {
  return TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
         TPMA_OBJECT_USERWITHAUTH | (role == TpmKeyRole::kSign ? TPMA_OBJECT_SIGN_ENCRYPT : TPMA_OBJECT_DECRYPT);
}

// --- TpmKeyFile ---

std::string TpmKeyFile::ToPem() const {
  Bytes body(std::begin(kLoadableKeyOid), std::end(kLoadableKeyOid));
  const uint8_t empty_auth[] = {0x01, 0x01, 0xff};  // BOOLEAN TRUE
  DerTlv(body, 0xa0, empty_auth);
  Bytes parent_int;
  for (int shift = 24; shift >= 0; shift -= 8) parent_int.push_back(static_cast<uint8_t>(parent >> shift));
  if (parent_int[0] & 0x80) parent_int.insert(parent_int.begin(), 0);
  DerTlv(body, 0x02, parent_int);
  DerTlv(body, 0x04, public_area);
  DerTlv(body, 0x04, private_area);
  Bytes der;
  DerTlv(der, 0x30, body);
  return EncodePem(kPemLabel, der);
}

Result<TpmKeyFile> TpmKeyFile::FromPem(std::string_view pem) {
  if (pem.size() > 64 * 1024) return Fail(ErrorCode::kTooLarge, "the TPM key file is too large");
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) OsslFatal("BIO_new_mem_buf");
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  const bool read = PEM_read_bio(bio.get(), &name, &header, &data, &len) == 1;
  ERR_clear_error();
  const bool labelled = read && std::string_view(name) == kPemLabel && std::string_view(header).empty();
  Bytes der;
  if (read) der.assign(data, data + len);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  if (!labelled)
    return Fail(ErrorCode::kMalformed, "not a TPM key file (no \"-----BEGIN " + std::string(kPemLabel) + "-----\" block)");
  Reader in(der);
  SEALDROP_ASSIGN(ByteView body, DerRead(in, 0x30));
  if (!in.empty()) return Fail(ErrorCode::kMalformed, "the TPM key file has bytes after its key");
  Reader seq(body);
  ByteView oid;
  if (!seq.ReadBytes(sizeof kLoadableKeyOid, &oid) ||
      std::memcmp(oid.data(), kLoadableKeyOid, sizeof kLoadableKeyOid) != 0)
    return Fail(ErrorCode::kMalformed, "the TPM key file is not a loadable TPM key");
  uint8_t next = 0;
  if (seq.PeekU8(&next) && next == 0xa0) {
    SEALDROP_ASSIGN(ByteView auth, DerRead(seq, 0xa0));
    // TRUE is 0xff in DER; tpm2-openssl writes 0x01. Nothing else.
    if (auth.size() != 3 || auth[0] != 0x01 || auth[1] != 0x01 || (auth[2] != 0xff && auth[2] != 0x01))
      return Fail(ErrorCode::kMalformed, "the TPM key file's key needs a password (not supported)");
  } else {
    return Fail(ErrorCode::kMalformed, "the TPM key file's key needs a password (not supported)");
  }
  if (seq.PeekU8(&next) && (next == 0xa1 || next == 0xa2))
    return Fail(ErrorCode::kMalformed, "the TPM key file's key has a policy or secret (not supported)");
  SEALDROP_ASSIGN(ByteView parent, DerRead(seq, 0x02));
  if (parent.empty() || parent.size() > 5 || (parent[0] & 0x80) || (parent.size() == 5 && parent[0] != 0))
    return Fail(ErrorCode::kMalformed, "the TPM key file's parent handle is invalid");
  TpmKeyFile key;
  key.parent = 0;
  for (uint8_t byte : parent) key.parent = (key.parent << 8) | byte;
  SEALDROP_ASSIGN(ByteView pub, DerRead(seq, 0x04));
  SEALDROP_ASSIGN(ByteView priv, DerRead(seq, 0x04));
  if (!seq.empty()) return Fail(ErrorCode::kMalformed, "the TPM key file has unknown fields");
  // Both must unmarshal as their TPM2B types, with nothing left over.
  TPM2B_PUBLIC p{};
  TPM2B_PRIVATE s{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub.data(), pub.size(), &off, &p) != TSS2_RC_SUCCESS || off != pub.size())
    return Fail(ErrorCode::kMalformed, "the TPM key file's public area is malformed");
  off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(priv.data(), priv.size(), &off, &s) != TSS2_RC_SUCCESS || off != priv.size())
    return Fail(ErrorCode::kMalformed, "the TPM key file's private area is malformed");
  key.public_area.assign(pub.begin(), pub.end());
  key.private_area.assign(priv.begin(), priv.end());
  return key;
}

Result<TpmPublicInfo> ParseTpmPublic(ByteView tpm2b_public) {
  TPM2B_PUBLIC p{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(tpm2b_public.data(), tpm2b_public.size(), &off, &p) != TSS2_RC_SUCCESS ||
      off != tpm2b_public.size())
    return Fail(ErrorCode::kMalformed, "the TPM public area is malformed");
  const TPMT_PUBLIC& t = p.publicArea;
  if (t.nameAlg != TPM2_ALG_SHA256) return Fail(ErrorCode::kMalformed, "the TPM key's name algorithm is not SHA-256");
  TpmPublicInfo info;
  info.attributes = t.objectAttributes;
  if (t.type == TPM2_ALG_ECC && t.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256 &&
      t.unique.ecc.x.size == 32 && t.unique.ecc.y.size == 32) {
    info.ecc_p256 = true;
    info.point.push_back(0x04);
    info.point.insert(info.point.end(), t.unique.ecc.x.buffer, t.unique.ecc.x.buffer + 32);
    info.point.insert(info.point.end(), t.unique.ecc.y.buffer, t.unique.ecc.y.buffer + 32);
  }
  // Name = nameAlg || H(marshalled TPMT_PUBLIC): the TPMT_PUBLIC is the
  // TPM2B's contents after its two size bytes.
  Digest d = Sha256Of(tpm2b_public.subspan(2));
  info.name = {static_cast<uint8_t>(TPM2_ALG_SHA256 >> 8), static_cast<uint8_t>(TPM2_ALG_SHA256 & 0xff)};
  info.name.insert(info.name.end(), d.begin(), d.end());
  return info;
}

// --- Tpm ---

struct Tpm::Impl {
  TSS2_TCTI_CONTEXT* tcti = nullptr;
  ESYS_CONTEXT* esys = nullptr;
  ~Impl() {
    if (esys != nullptr) Esys_Finalize(&esys);
    if (tcti != nullptr) Tss2_TctiLdr_Finalize(&tcti);
  }
};

namespace {

// Flushes a transient object or session when it goes out of scope: without
// a resource manager (swtpm, /dev/tpm0) nothing else would.
class Transient {
 public:
  Transient(ESYS_CONTEXT* esys, ESYS_TR handle) : esys_(esys), handle_(handle) {}
  ~Transient() {
    if (handle_ != ESYS_TR_NONE) Esys_FlushContext(esys_, handle_);
  }
  Transient(const Transient&) = delete;
  Transient& operator=(const Transient&) = delete;
  ESYS_TR get() const { return handle_; }

 private:
  ESYS_CONTEXT* esys_;
  ESYS_TR handle_;
};

Result<ESYS_TR> CreatePrimary(ESYS_CONTEXT* esys, ESYS_TR hierarchy, const TPM2B_PUBLIC& tmpl,
                              TPM2B_PUBLIC** out_public, std::string_view what) {
  TPM2B_SENSITIVE_CREATE sensitive{};
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  ESYS_TR handle = ESYS_TR_NONE;
  TSS2_RC rc = Esys_CreatePrimary(esys, hierarchy, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                                  &outside, &pcrs, &handle, out_public, nullptr, nullptr, nullptr);
  if (rc != TSS2_RC_SUCCESS) return std::unexpected(TpmError(ErrorCode::kUnavailable, what, rc));
  return handle;
}

}  // namespace

Tpm::Tpm(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tpm::Tpm(Tpm&&) noexcept = default;
Tpm& Tpm::operator=(Tpm&&) noexcept = default;
Tpm::~Tpm() = default;

// tpm2-tss logs every TPM error to stderr itself; sealdrop reports errors
// in its own words, so its logging is off unless TSS2_LOG asks for it.
static void QuietTss() { setenv("TSS2_LOG", "all+NONE", 0); }

namespace {
Result<std::unique_ptr<Tpm::Impl>> OpenImpl(std::string_view tcti);
}  // namespace

Result<Tpm> Tpm::Open(std::string_view tcti) {
  SEALDROP_ASSIGN(auto impl, OpenImpl(tcti));
  return Tpm(std::move(impl));
}

namespace {
Result<std::unique_ptr<Tpm::Impl>> OpenImpl(std::string_view tcti) {
  using Impl = Tpm::Impl;
  QuietTss();
  auto impl = std::make_unique<Impl>();
  const std::string conf(tcti.empty() ? kDefaultTcti : tcti);
  TSS2_RC rc = Tss2_TctiLdr_Initialize(conf.c_str(), &impl->tcti);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kUnavailable, "cannot reach the TPM through \"" + conf + "\"", rc));
  rc = Esys_Initialize(&impl->esys, impl->tcti, nullptr);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kUnavailable, "cannot start a TPM session on \"" + conf + "\"", rc));
  // A TPM that was never started (a fresh swtpm without startup-clear)
  // answers TPM2_RC_INITIALIZE; start it. Anything else that fails here
  // means there is no working TPM behind the TCTI.
  EsysPtr<TPM2B_DIGEST> random;
  TPM2B_DIGEST* raw = nullptr;
  rc = Esys_GetRandom(impl->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 8, &raw);
  random.reset(raw);
  if ((rc & ~TSS2_RC_LAYER_MASK) == TPM2_RC_INITIALIZE) {
    rc = Esys_Startup(impl->esys, TPM2_SU_CLEAR);
    if (rc == TSS2_RC_SUCCESS) {
      rc = Esys_GetRandom(impl->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, 8, &raw);
      random.reset(raw);
    }
  }
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kUnavailable, "the TPM at \"" + conf + "\" does not answer", rc));
  return impl;
}
}  // namespace

Result<Bytes> Tpm::ReadEkCertificate() {
  ESYS_CONTEXT* esys = impl_->esys;
  ESYS_TR nv = ESYS_TR_NONE;
  TSS2_RC rc = Esys_TR_FromTPMPublic(esys, kRsaEkCertNvIndex, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kNotFound, "this TPM has no RSA EK certificate in NV 0x01c00002", rc));
  TPM2B_NV_PUBLIC* pub_raw = nullptr;
  rc = Esys_NV_ReadPublic(esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub_raw, nullptr);
  EsysPtr<TPM2B_NV_PUBLIC> pub(pub_raw);
  if (rc != TSS2_RC_SUCCESS) {
    Esys_TR_Close(esys, &nv);
    return std::unexpected(TpmError(ErrorCode::kUnavailable, "cannot read the EK certificate's NV index", rc));
  }
  const uint16_t size = pub->nvPublic.dataSize;
  Bytes cert;
  constexpr uint16_t kChunk = 512;  // every TPM's NV buffer holds at least this
  while (cert.size() < size) {
    const uint16_t n = static_cast<uint16_t>(std::min<size_t>(kChunk, size - cert.size()));
    TPM2B_MAX_NV_BUFFER* data_raw = nullptr;
    rc = Esys_NV_Read(esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
                      static_cast<uint16_t>(cert.size()), &data_raw);
    EsysPtr<TPM2B_MAX_NV_BUFFER> data(data_raw);
    if (rc != TSS2_RC_SUCCESS || data->size != n) {
      Esys_TR_Close(esys, &nv);
      return std::unexpected(TpmError(ErrorCode::kUnavailable, "cannot read the EK certificate", rc));
    }
    cert.insert(cert.end(), data->buffer, data->buffer + n);
  }
  Esys_TR_Close(esys, &nv);
  // Some makers pad the index; the certificate is the first DER SEQUENCE.
  Reader in(cert);
  auto seq = DerRead(in, 0x30);
  if (!seq) return Fail(ErrorCode::kMalformed, "the TPM's EK certificate is not DER");
  cert.resize(cert.size() - in.remaining());
  return cert;
}

Result<Bytes> Tpm::EkPublicKeyDer() {
  TPM2B_PUBLIC* out_raw = nullptr;
  SEALDROP_ASSIGN(ESYS_TR ek, CreatePrimary(impl_->esys, ESYS_TR_RH_ENDORSEMENT, EkTemplate(), &out_raw,
                                            "cannot recreate the endorsement key"));
  Transient flush(impl_->esys, ek);
  EsysPtr<TPM2B_PUBLIC> out(out_raw);
  const TPM2B_PUBLIC_KEY_RSA& n = out->publicArea.unique.rsa;
  UniquePtr<BIGNUM> modulus(BN_bin2bn(n.buffer, n.size, nullptr));
  UniquePtr<BIGNUM> exponent(BN_new());
  if (!modulus || !exponent || BN_set_word(exponent.get(), 65537) != 1) OsslFatal("building the EK key");
  UniquePtr<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, modulus.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, exponent.get()) != 1)
    OsslFatal("building the EK key");
  UniquePtr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
  UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", "provider=default"));
  EVP_PKEY* pkey_raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey_raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return std::unexpected(OsslError(ErrorCode::kMalformed, "the TPM's endorsement key is not a usable RSA key"));
  UniquePtr<EVP_PKEY> pkey(pkey_raw);
  const int len = i2d_PUBKEY(pkey.get(), nullptr);
  if (len <= 0) OsslFatal("encoding the EK key");
  Bytes der(static_cast<size_t>(len));
  uint8_t* p = der.data();
  i2d_PUBKEY(pkey.get(), &p);
  return der;
}

Result<TpmKeyFile> Tpm::CreateKey(TpmKeyRole role) {
  SEALDROP_ASSIGN(ESYS_TR parent, CreatePrimary(impl_->esys, ESYS_TR_RH_OWNER, StorageParentTemplate(), nullptr,
                                                "cannot make the TPM's storage parent"));
  Transient flush(impl_->esys, parent);
  TPM2B_SENSITIVE_CREATE sensitive{};
  const TPM2B_PUBLIC tmpl = KeyTemplate(role);
  TPM2B_DATA outside{};
  TPML_PCR_SELECTION pcrs{};
  TPM2B_PRIVATE* priv_raw = nullptr;
  TPM2B_PUBLIC* pub_raw = nullptr;
  TSS2_RC rc = Esys_Create(impl_->esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                           &outside, &pcrs, &priv_raw, &pub_raw, nullptr, nullptr, nullptr);
  EsysPtr<TPM2B_PRIVATE> priv(priv_raw);
  EsysPtr<TPM2B_PUBLIC> pub(pub_raw);
  if (rc != TSS2_RC_SUCCESS) return std::unexpected(TpmError(ErrorCode::kUnavailable, "the TPM cannot create a key", rc));
  TpmKeyFile key;
  key.public_area.resize(sizeof(TPM2B_PUBLIC));
  key.private_area.resize(sizeof(TPM2B_PRIVATE));
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub.get(), key.public_area.data(), key.public_area.size(), &off) != 0)
    return Fail(ErrorCode::kInternal, "cannot marshal the TPM key's public area");
  key.public_area.resize(off);
  off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv.get(), key.private_area.data(), key.private_area.size(), &off) != 0)
    return Fail(ErrorCode::kInternal, "cannot marshal the TPM key's private area");
  key.private_area.resize(off);
  return key;
}

namespace {

// Loads a key file under a fresh storage parent; the caller flushes both.
// Loads `key` under a freshly recreated storage parent, which is flushed
// again at once: a loaded key stays usable without its parent.
Result<ESYS_TR> LoadKey(ESYS_CONTEXT* esys, const TpmKeyFile& key) {
  TPM2B_PUBLIC pub{};
  TPM2B_PRIVATE priv{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(key.public_area.data(), key.public_area.size(), &off, &pub) != 0 ||
      off != key.public_area.size())
    return Fail(ErrorCode::kMalformed, "the key's public area is malformed");
  off = 0;
  if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(key.private_area.data(), key.private_area.size(), &off, &priv) != 0 ||
      off != key.private_area.size())
    return Fail(ErrorCode::kMalformed, "the key's private area is malformed");
  SEALDROP_ASSIGN(ESYS_TR parent, CreatePrimary(esys, ESYS_TR_RH_OWNER, StorageParentTemplate(), nullptr,
                                                "cannot make the TPM's storage parent"));
  Transient parent_flush(esys, parent);
  ESYS_TR loaded = ESYS_TR_NONE;
  TSS2_RC rc = Esys_Load(esys, parent, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub, &loaded);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kCryptoFailure,
                                    "this TPM cannot load the key (another TPM made it, the TPM was cleared, or "
                                    "the key file was altered)",
                                    rc));
  return loaded;
}

}  // namespace

Status Tpm::CheckKey(const TpmKeyFile& key) {
  SEALDROP_ASSIGN(ESYS_TR loaded, LoadKey(impl_->esys, key));
  Transient key_flush(impl_->esys, loaded);
  return Ok();
}

namespace {

Result<std::pair<TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET>> UnmarshalCredential(ByteView credential_blob,
                                                                              ByteView encrypted_secret) {
  TPM2B_ID_OBJECT blob{};
  TPM2B_ENCRYPTED_SECRET secret{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(credential_blob.data(), credential_blob.size(), &off, &blob) != 0 ||
      off != credential_blob.size())
    return Fail(ErrorCode::kMalformed, "the credential blob is malformed");
  off = 0;
  if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(encrypted_secret.data(), encrypted_secret.size(), &off, &secret) != 0 ||
      off != encrypted_secret.size())
    return Fail(ErrorCode::kMalformed, "the credential's encrypted seed is malformed");
  return std::pair{blob, secret};
}

// TPM2_ActivateCredential for an object already loaded: recreates the EK
// and authorises it with PolicySecret(endorsement).
Result<SecretBytes> ActivateLoaded(ESYS_CONTEXT* esys, ESYS_TR loaded, const TPM2B_ID_OBJECT& blob,
                                   const TPM2B_ENCRYPTED_SECRET& secret) {
  TSS2_RC rc = TSS2_RC_SUCCESS;
  SEALDROP_ASSIGN(ESYS_TR ek, CreatePrimary(esys, ESYS_TR_RH_ENDORSEMENT, EkTemplate(), nullptr,
                                            "cannot recreate the endorsement key"));
  Transient ek_flush(esys, ek);

  TPMT_SYM_DEF sym{};
  sym.algorithm = TPM2_ALG_NULL;
  ESYS_TR session = ESYS_TR_NONE;
  rc = Esys_StartAuthSession(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nullptr,
                             TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256, &session);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kUnavailable, "cannot start a TPM policy session", rc));
  Transient session_flush(esys, session);
  TPM2B_TIMEOUT* timeout = nullptr;
  TPMT_TK_AUTH* ticket = nullptr;
  rc = Esys_PolicySecret(esys, ESYS_TR_RH_ENDORSEMENT, session, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, nullptr,
                         nullptr, nullptr, 0, &timeout, &ticket);
  Esys_Free(timeout);
  Esys_Free(ticket);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kUnavailable, "the TPM refused the endorsement policy", rc));

  TPM2B_DIGEST* cert_info_raw = nullptr;
  rc = Esys_ActivateCredential(esys, loaded, ek, ESYS_TR_PASSWORD, session, ESYS_TR_NONE, &blob, &secret,
                               &cert_info_raw);
  EsysPtr<TPM2B_DIGEST> cert_info(cert_info_raw);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kCryptoFailure, "the TPM refused to activate the credential", rc));
  SecretBytes out(ByteView(cert_info->buffer, cert_info->size), SecretAccess{});
  SecureWipe(cert_info->buffer, cert_info->size);
  return out;
}

}  // namespace

Result<SecretBytes> Tpm::ActivateCredential(const TpmKeyFile& key, ByteView credential_blob,
                                            ByteView encrypted_secret) {
  ESYS_CONTEXT* esys = impl_->esys;
  SEALDROP_ASSIGN(auto cred, UnmarshalCredential(credential_blob, encrypted_secret));
  SEALDROP_ASSIGN(ESYS_TR loaded, LoadKey(esys, key));
  Transient key_flush(esys, loaded);
  return ActivateLoaded(esys, loaded, cred.first, cred.second);
}

namespace tpm_internal {

Result<SecretBytes> ActivateWithPublicOnly(Tpm& tpm, ByteView tpm2b_public, ByteView credential_blob,
                                           ByteView encrypted_secret) {
  ESYS_CONTEXT* esys = tpm.impl_->esys;
  SEALDROP_ASSIGN(auto cred, UnmarshalCredential(credential_blob, encrypted_secret));
  TPM2B_PUBLIC pub{};
  size_t off = 0;
  if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(tpm2b_public.data(), tpm2b_public.size(), &off, &pub) != 0)
    return Fail(ErrorCode::kMalformed, "the public area is malformed");
  ESYS_TR loaded = ESYS_TR_NONE;
  TSS2_RC rc = Esys_LoadExternal(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, nullptr, &pub, ESYS_TR_RH_NULL,
                                 &loaded);
  if (rc != TSS2_RC_SUCCESS)
    return std::unexpected(TpmError(ErrorCode::kCryptoFailure, "the TPM refused to load the public area", rc));
  Transient key_flush(esys, loaded);
  return ActivateLoaded(esys, loaded, cred.first, cred.second);
}

}  // namespace tpm_internal

// --- keys as OpenSSL keys ---
//
// A loaded key is an EC_KEY whose EC_KEY_METHOD sends ECDSA signatures
// (TPM2_Sign over the digest OpenSSL computed) and ECDH (TPM2_ECDH_ZGen) to
// the TPM through this file's own ESAPI session; OpenSSL treats such a
// "foreign" key through its legacy EVP_PKEY path for exactly those two
// operations, and everything else (digests, the TLS key exchange, verifying
// peers) stays in OpenSSL's default provider. Why not the tpm2-openssl
// provider: a TLS context that prefers a provider's signatures also verifies
// the peer's with them, and that provider verifies inside the TPM, which
// needs object slots a TPM without a resource manager (swtpm) does not have.

namespace {

// One ESAPI connection per TCTI, shared by every key loaded over it; its
// commands are serialised by `mu` (ESAPI contexts are single-threaded).
struct SharedTpm {
  std::mutex mu;
  std::unique_ptr<Tpm::Impl> impl;
};

std::mutex sessions_mu;
std::map<std::string, std::weak_ptr<SharedTpm>>& Sessions() {
  static auto* sessions = new std::map<std::string, std::weak_ptr<SharedTpm>>;
  return *sessions;
}

// What an EC_KEY's ex_data points to: the TPM and the loaded object.
struct LoadedKey {
  std::shared_ptr<SharedTpm> tpm;
  ESYS_TR handle = ESYS_TR_NONE;
  ~LoadedKey() {
    if (tpm && handle != ESYS_TR_NONE) {
      std::lock_guard lock(tpm->mu);
      Esys_FlushContext(tpm->impl->esys, handle);
    }
  }
};

void FreeLoadedKey(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<LoadedKey*>(ptr); }

int LoadedKeyIndex() {
  static const int index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeLoadedKey);
  return index;
}

LoadedKey* KeyOf(const EC_KEY* ec) { return static_cast<LoadedKey*>(EC_KEY_get_ex_data(ec, LoadedKeyIndex())); }

ECDSA_SIG* TpmSignSig(const unsigned char* dgst, int dlen, const BIGNUM*, const BIGNUM*, EC_KEY* ec) {
  LoadedKey* key = KeyOf(ec);
  if (key == nullptr || dlen <= 0 || static_cast<size_t>(dlen) > sizeof(TPMU_HA)) return nullptr;
  TPM2B_DIGEST digest{};
  digest.size = static_cast<UINT16>(dlen);
  std::memcpy(digest.buffer, dgst, static_cast<size_t>(dlen));
  TPMT_SIG_SCHEME scheme{};
  scheme.scheme = TPM2_ALG_ECDSA;
  scheme.details.ecdsa.hashAlg = dlen == 48 ? TPM2_ALG_SHA384 : dlen == 64 ? TPM2_ALG_SHA512 : TPM2_ALG_SHA256;
  TPMT_TK_HASHCHECK ticket{};  // a null ticket: the key is not restricted
  ticket.tag = TPM2_ST_HASHCHECK;
  ticket.hierarchy = TPM2_RH_NULL;
  TPMT_SIGNATURE* raw = nullptr;
  TSS2_RC rc;
  {
    std::lock_guard lock(key->tpm->mu);
    rc = Esys_Sign(key->tpm->impl->esys, key->handle, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &digest, &scheme,
                   &ticket, &raw);
  }
  EsysPtr<TPMT_SIGNATURE> sig(raw);
  if (rc != TSS2_RC_SUCCESS || sig->sigAlg != TPM2_ALG_ECDSA) return nullptr;
  const auto& e = sig->signature.ecdsa;
  BIGNUM* r = BN_bin2bn(e.signatureR.buffer, e.signatureR.size, nullptr);
  BIGNUM* s = BN_bin2bn(e.signatureS.buffer, e.signatureS.size, nullptr);
  ECDSA_SIG* out = ECDSA_SIG_new();
  if (r == nullptr || s == nullptr || out == nullptr || ECDSA_SIG_set0(out, r, s) != 1) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(out);
    return nullptr;
  }
  return out;
}

int TpmComputeKey(unsigned char** out, size_t* out_len, const EC_POINT* peer, const EC_KEY* ec) {
  LoadedKey* key = KeyOf(ec);
  if (key == nullptr) return 0;
  uint8_t point[kP256PointSize];
  if (EC_POINT_point2oct(EC_KEY_get0_group(ec), peer, POINT_CONVERSION_UNCOMPRESSED, point, sizeof point, nullptr) !=
      sizeof point)
    return 0;
  TPM2B_ECC_POINT in{};
  in.point.x.size = 32;
  std::memcpy(in.point.x.buffer, point + 1, 32);
  in.point.y.size = 32;
  std::memcpy(in.point.y.buffer, point + 33, 32);
  TPM2B_ECC_POINT* raw = nullptr;
  TSS2_RC rc;
  {
    std::lock_guard lock(key->tpm->mu);
    rc = Esys_ECDH_ZGen(key->tpm->impl->esys, key->handle, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &in, &raw);
  }
  EsysPtr<TPM2B_ECC_POINT> z(raw);
  if (rc != TSS2_RC_SUCCESS || z->point.x.size == 0 || z->point.x.size > 32) return 0;
  // The shared secret is Z's x-coordinate, left-padded to the field size.
  auto* secret = static_cast<unsigned char*>(OPENSSL_zalloc(32));
  if (secret == nullptr) return 0;
  std::memcpy(secret + (32 - z->point.x.size), z->point.x.buffer, z->point.x.size);
  SecureWipe(z->point.x.buffer, z->point.x.size);
  *out = secret;
  *out_len = 32;
  return 1;
}

const EC_KEY_METHOD* TpmKeyMethod() {
  static EC_KEY_METHOD* method = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (m == nullptr) OsslFatal("EC_KEY_METHOD_new");
    int (*sign)(int, const unsigned char*, int, unsigned char*, unsigned int*, const BIGNUM*, const BIGNUM*,
                EC_KEY*) = nullptr;
    int (*sign_setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
    EC_KEY_METHOD_get_sign(m, &sign, &sign_setup, nullptr);
    // OpenSSL's own `sign` DER-encodes what sign_sig returns.
    EC_KEY_METHOD_set_sign(m, sign, sign_setup, TpmSignSig);
    EC_KEY_METHOD_set_compute_key(m, TpmComputeKey);
    return m;
  }();
  return method;
}

Result<std::shared_ptr<SharedTpm>> SharedSession(std::string_view tcti) {
  const std::string conf(tcti.empty() ? kDefaultTcti : tcti);
  std::lock_guard lock(sessions_mu);
  auto& slot = Sessions()[conf];
  if (auto live = slot.lock()) return live;
  auto shared = std::make_shared<SharedTpm>();
  SEALDROP_ASSIGN(shared->impl, OpenImpl(conf));
  slot = shared;
  return shared;
}

}  // namespace

Result<EcPrivateKey> LoadTpmKey(const TpmKeyFile& key, std::string_view tcti) {
  SEALDROP_ASSIGN(TpmPublicInfo info, ParseTpmPublic(key.public_area));
  if (!info.ecc_p256) return Fail(ErrorCode::kInvalidArgument, "the TPM key is not a P-256 key");
  SEALDROP_ASSIGN(std::shared_ptr<SharedTpm> tpm, SharedSession(tcti));
  auto loaded = std::make_unique<LoadedKey>();
  loaded->tpm = tpm;
  {
    std::lock_guard lock(tpm->mu);
    ESYS_CONTEXT* esys = tpm->impl->esys;
    // The key stays loaded for the EC_KEY's life.
    SEALDROP_ASSIGN(loaded->handle, LoadKey(esys, key));
  }
  UniquePtr<EVP_PKEY> pkey;
  {
    EC_KEY* ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
    EC_POINT* point = ec ? EC_POINT_new(EC_KEY_get0_group(ec)) : nullptr;
    bool ok = ec != nullptr && point != nullptr &&
              EC_POINT_oct2point(EC_KEY_get0_group(ec), point, info.point.data(), info.point.size(), nullptr) == 1 &&
              EC_KEY_set_public_key(ec, point) == 1 && EC_KEY_set_method(ec, TpmKeyMethod()) == 1 &&
              EC_KEY_set_ex_data(ec, LoadedKeyIndex(), loaded.get()) == 1;
    EC_POINT_free(point);
    if (ok) loaded.release();  // owned by the EC_KEY now (FreeLoadedKey)
    pkey.reset(ok ? EVP_PKEY_new() : nullptr);
    if (!pkey || EVP_PKEY_assign_EC_KEY(pkey.get(), ec) != 1) {
      EC_KEY_free(ec);
      return std::unexpected(OsslError(ErrorCode::kInternal, "cannot make an OpenSSL key for the TPM key"));
    }
  }
  return WrapHardwarePrivateKey(pkey.get(), info.point);
}

}  // namespace sealdrop
