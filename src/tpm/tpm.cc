#include "tpm/tpm.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <cstdlib>
#include <cstring>
#include <mutex>

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
Result<ByteView> DerRead(ByteView& in, uint8_t tag) {
  auto bad = [] { return Fail(ErrorCode::kMalformed, "the TPM key file is not valid DER"); };
  if (in.size() < 2 || in[0] != tag) return bad();
  size_t len = in[1];
  size_t header = 2;
  if (len & 0x80) {
    const size_t count = len & 0x7f;
    if (count == 0 || count > 3 || in.size() < 2 + count || in[2] == 0) return bad();
    len = 0;
    for (size_t i = 0; i < count; ++i) len = (len << 8) | in[2 + i];
    if (len < 0x80) return bad();
    header += count;
  }
  if (in.size() - header < len) return bad();
  ByteView value = in.subspan(header, len);
  in = in.subspan(header + len);
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
  ByteView in(der);
  SEALDROP_ASSIGN(ByteView seq, DerRead(in, 0x30));
  if (!in.empty()) return Fail(ErrorCode::kMalformed, "the TPM key file has bytes after its key");
  if (seq.size() < sizeof kLoadableKeyOid || std::memcmp(seq.data(), kLoadableKeyOid, sizeof kLoadableKeyOid) != 0)
    return Fail(ErrorCode::kMalformed, "the TPM key file is not a loadable TPM key");
  seq = seq.subspan(sizeof kLoadableKeyOid);
  if (!seq.empty() && seq[0] == 0xa0) {
    SEALDROP_ASSIGN(ByteView auth, DerRead(seq, 0xa0));
    // TRUE is 0xff in DER; tpm2-openssl writes 0x01. Nothing else.
    if (auth.size() != 3 || auth[0] != 0x01 || auth[1] != 0x01 || (auth[2] != 0xff && auth[2] != 0x01))
      return Fail(ErrorCode::kMalformed, "the TPM key file's key needs a password (not supported)");
  } else {
    return Fail(ErrorCode::kMalformed, "the TPM key file's key needs a password (not supported)");
  }
  if (!seq.empty() && (seq[0] == 0xa1 || seq[0] == 0xa2))
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

Result<Tpm> Tpm::Open(std::string_view tcti) {
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
  return Tpm(std::move(impl));
}

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
  ByteView in(cert);
  ByteView whole = in;
  auto seq = DerRead(in, 0x30);
  if (!seq) return Fail(ErrorCode::kMalformed, "the TPM's EK certificate is not DER");
  cert.resize(whole.size() - in.size());
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
Result<ESYS_TR> LoadKey(ESYS_CONTEXT* esys, ESYS_TR parent, const TpmKeyFile& key) {
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
  SEALDROP_ASSIGN(ESYS_TR parent, CreatePrimary(impl_->esys, ESYS_TR_RH_OWNER, StorageParentTemplate(), nullptr,
                                                "cannot make the TPM's storage parent"));
  Transient parent_flush(impl_->esys, parent);
  SEALDROP_ASSIGN(ESYS_TR loaded, LoadKey(impl_->esys, parent, key));
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
  SEALDROP_ASSIGN(ESYS_TR parent, CreatePrimary(esys, ESYS_TR_RH_OWNER, StorageParentTemplate(), nullptr,
                                                "cannot make the TPM's storage parent"));
  Transient parent_flush(esys, parent);
  SEALDROP_ASSIGN(ESYS_TR loaded, LoadKey(esys, parent, key));
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

// --- keys through the provider ---

namespace {

std::mutex provider_mu;
std::string provider_tcti;  // the TCTI the provider was loaded with; empty: not loaded
OSSL_PROVIDER* default_provider = nullptr;
OSSL_PROVIDER* tpm2_provider = nullptr;

// Unloads the providers at exit (before OpenSSL's own clean-up, which was
// registered earlier), so the tpm2 provider closes its TPM connection.
void UnloadProviders() {
  if (tpm2_provider != nullptr) OSSL_PROVIDER_unload(tpm2_provider);
  if (default_provider != nullptr) OSSL_PROVIDER_unload(default_provider);
  tpm2_provider = default_provider = nullptr;
}

Status LoadProvider(std::string_view tcti) {
  std::lock_guard lock(provider_mu);
  const std::string conf(tcti.empty() ? kDefaultTcti : tcti);
  if (!provider_tcti.empty()) {
    if (provider_tcti != conf)
      return Fail(ErrorCode::kInvalidArgument, "the TPM provider is already loaded for \"" + provider_tcti + "\"");
    return Ok();
  }
  QuietTss();
  // The provider reads its TCTI from the environment when it is loaded.
  if (setenv("TPM2OPENSSL_TCTI", conf.c_str(), 1) != 0) return Fail(ErrorCode::kInternal, "setenv failed");
  // Loading any provider explicitly stops OpenSSL from loading the default
  // one implicitly: load both, and prefer the default for every algorithm
  // that is not bound to a TPM key (digests, ciphers, randomness).
  default_provider = OSSL_PROVIDER_load(nullptr, "default");
  if (default_provider == nullptr)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot load OpenSSL's default provider"));
  tpm2_provider = OSSL_PROVIDER_load(nullptr, "tpm2");
  if (tpm2_provider == nullptr)
    return std::unexpected(OsslError(ErrorCode::kUnavailable,
                                     "cannot load the tpm2 OpenSSL provider (Debian package tpm2-openssl) for \"" +
                                         conf + "\""));
  if (EVP_set_default_properties(nullptr, "?provider=default") != 1)
    return std::unexpected(OsslError(ErrorCode::kInternal, "cannot prefer the default provider"));
  std::atexit(UnloadProviders);
  provider_tcti = conf;
  return Ok();
}

}  // namespace

Result<EcPrivateKey> LoadTpmKey(const TpmKeyFile& key, std::string_view tcti) {
  SEALDROP_TRY(LoadProvider(tcti));
  const std::string pem = key.ToPem();
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) OsslFatal("BIO_new_mem_buf");
  ERR_clear_error();
  UniquePtr<EVP_PKEY> pkey(PEM_read_bio_PrivateKey_ex(bio.get(), nullptr, nullptr, nullptr, nullptr, "provider=tpm2"));
  if (!pkey)
    return std::unexpected(OsslError(ErrorCode::kCryptoFailure,
                                     "the TPM cannot load this key (made by another TPM, or the TPM was cleared)"));
  return WrapHardwarePrivateKey(pkey.get(), "?provider=tpm2");
}

}  // namespace sealdrop
