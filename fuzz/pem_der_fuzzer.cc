// Certificates and text encodings, chosen by the first byte:
//   0 Certificate::FromPem        1 Certificate::AllFromPem, then
//   2 Certificate::FromDer          TrustStore::Verify of the chain for both
//   3 Base64UrlDecode               profiles and roles, at a fixed time,
//   4 HexDecode                     against the seed PKI's roots
//   5 Base64UrlEncode/HexEncode of the bytes, decoded back
//   6 IsValidUtf8, against a reference validator written from the Unicode
//     standard (table 3-7) and against nlohmann's strict serialiser
//   7 TruncateUtf8 to a length from the next two bytes
// The rest of the input is the text or bytes.
//
// Round trips: an accepted certificate's ToDer must parse back to the same
// DER, its ToPem to the same certificate; every accessor must work on it.
// The decoders are strict (one value, one encoding): an accepted base64url
// text is exactly the encoding of what it decodes to, an accepted hex text
// exactly that (up to letter case); encoding then decoding is the identity.
//
// The trust roots (fuzz/data/pki, written by make_corpus) are the issuers
// of the certificates in the seeds, so verification of the seeds and their
// mutations gets past the issuer lookup into signatures and profiles. The
// time is fixed two days after the manufacturer root's notBefore.
#include <cctype>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/files.h"
#include "fuzz_util.h"
#include "pki/cert.h"

using namespace sealdrop;

namespace {

struct Pki {
  TrustStore manufacturers;
  TrustStore vendors;
  std::chrono::system_clock::time_point now;
  bool loaded = false;
};

const Pki& Roots() {
  static const Pki* pki = [] {
    auto* p = new Pki;
    const std::string dir = std::string(SEALDROP_FUZZ_DIR) + "/data/pki/";
    auto mfr = ReadTextFile(dir + "mfr-ca.pem", kMaxPemFileSize);
    auto vendor = ReadTextFile(dir + "vendor-ca.pem", kMaxPemFileSize);
    if (mfr && vendor && p->manufacturers.AddRootsPem(*mfr) && p->vendors.AddRootsPem(*vendor)) {
      p->now = Certificate::FromPem(*mfr)->NotBefore() + std::chrono::hours(48);
      p->loaded = true;
    } else {
      std::fprintf(stderr, "pem_der_fuzzer: no seed PKI in %s; chains are parsed but not verified\n", dir.c_str());
    }
    return p;
  }();
  return *pki;
}

void CheckCertificate(const Certificate& cert) {
  const Bytes der = cert.ToDer();
  FUZZ_CHECK(!der.empty() && der.size() <= kMaxCertDerSize, "ToDer of an accepted certificate");
  auto from_der = Certificate::FromDer(der);
  FUZZ_CHECK(from_der.has_value(), "FromDer refused ToDer's output: " + (from_der ? "" : from_der.error().message));
  FUZZ_CHECK(from_der->ToDer() == der, "DER changed in a round trip");
  auto from_pem = Certificate::FromPem(cert.ToPem());
  FUZZ_CHECK(from_pem.has_value() && from_pem->ToDer() == der, "PEM round trip");
  (void)cert.SerialHex();
  (void)cert.SubjectCommonName();
  (void)cert.SubjectSerialNumber();
  (void)cert.NotBefore();
  (void)cert.NotAfter();
  (void)cert.IsCa();
  FUZZ_CHECK(cert.PublicKey().KeyId().size() == 64, "key id");
  FUZZ_CHECK(from_der->PublicKey() == cert.PublicKey(), "public key changed in a round trip");
}

void VerifyChain(const std::vector<Certificate>& chain) {
  const Pki& pki = Roots();
  if (!pki.loaded) return;
  for (DeviceKeyRole role : {DeviceKeyRole::kIdentity, DeviceKeyRole::kKeyWrap}) {
    auto leaf = pki.manufacturers.Verify(chain, CertProfile::kDevice, role, pki.now);
    FUZZ_TRACE("pem_der: device chain, role %d: %s\n", static_cast<int>(role),
               leaf ? "verified" : leaf.error().message.c_str());
    if (leaf) {
      FUZZ_CHECK(!leaf->device_serial.empty() && leaf->device_serial == chain[0].SubjectSerialNumber(),
                 "a verified device certificate without its serial");
      FUZZ_CHECK(leaf->leaf.ToDer() == chain[0].ToDer(), "Verify returned another leaf");
    } else {
      FUZZ_CHECK(leaf.error().code == ErrorCode::kUntrustedPeer || leaf.error().code == ErrorCode::kMalformed,
                 "unexpected error code: " + leaf.error().message);
    }
  }
  auto server = pki.vendors.Verify(chain, CertProfile::kServer, DeviceKeyRole::kIdentity, pki.now);
  FUZZ_TRACE("pem_der: server chain: %s\n", server ? "verified" : server.error().message.c_str());
  if (server) FUZZ_CHECK(server->leaf.ToDer() == chain[0].ToDer(), "Verify returned another leaf");
}

// Well-formed UTF-8 byte sequences, The Unicode Standard, table 3-7.
bool ReferenceUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  auto in = [&](size_t k, unsigned lo, unsigned hi) { return i + k < n && p[i + k] >= lo && p[i + k] <= hi; };
  while (i < n) {
    const unsigned b = p[i];
    if (b <= 0x7f) { i += 1; continue; }
    if (b >= 0xc2 && b <= 0xdf && in(1, 0x80, 0xbf)) { i += 2; continue; }
    if (b == 0xe0 && in(1, 0xa0, 0xbf) && in(2, 0x80, 0xbf)) { i += 3; continue; }
    if (((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) && in(1, 0x80, 0xbf) && in(2, 0x80, 0xbf)) { i += 3; continue; }
    if (b == 0xed && in(1, 0x80, 0x9f) && in(2, 0x80, 0xbf)) { i += 3; continue; }
    if (b == 0xf0 && in(1, 0x90, 0xbf) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf)) { i += 4; continue; }
    if (b >= 0xf1 && b <= 0xf3 && in(1, 0x80, 0xbf) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf)) { i += 4; continue; }
    if (b == 0xf4 && in(1, 0x80, 0x8f) && in(2, 0x80, 0xbf) && in(3, 0x80, 0xbf)) { i += 4; continue; }
    return false;
  }
  return true;
}

// What the JSON writers the project uses accept (strict error handler).
bool JsonAccepts(std::string_view text) {
  try {
    (void)nlohmann::json(std::string(text)).dump();
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ByteView bytes(data + 1, size - 1);
  const std::string_view text = AsString(bytes);
  switch (data[0] % 8) {
    case 0: {
      auto cert = Certificate::FromPem(text);
      if (cert) CheckCertificate(*cert);
      break;
    }
    case 1: {
      auto chain = Certificate::AllFromPem(text);
      if (!chain) break;
      FUZZ_CHECK(!chain->empty(), "AllFromPem returned no certificate");
      for (const Certificate& c : *chain) CheckCertificate(c);
      VerifyChain(*chain);
      break;
    }
    case 2: {
      auto cert = Certificate::FromDer(bytes);
      if (cert) {
        CheckCertificate(*cert);
        VerifyChain({*cert});
      }
      break;
    }
    case 3: {
      auto decoded = Base64UrlDecode(text);
      if (decoded) FUZZ_CHECK(Base64UrlEncode(*decoded) == text, "base64url text is not the encoding of its value");
      break;
    }
    case 4: {
      auto decoded = HexDecode(text);
      if (!decoded) break;
      std::string lower(text);
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      FUZZ_CHECK(HexEncode(*decoded) == lower, "hex text is not the encoding of its value");
      break;
    }
    case 6: {
      const bool valid = IsValidUtf8(text);
      FUZZ_CHECK(valid == ReferenceUtf8(text), std::string("IsValidUtf8 says ") + (valid ? "valid" : "invalid") +
                                                   ", the Unicode table says otherwise");
      FUZZ_CHECK(valid == JsonAccepts(text), "IsValidUtf8 and the JSON serialiser disagree");
      break;
    }
    case 7: {
      if (text.size() < 2) break;
      const size_t max = (static_cast<size_t>(static_cast<unsigned char>(text[0])) << 8) |
                         static_cast<unsigned char>(text[1]);
      const std::string_view rest = text.substr(2);
      const std::string cut = TruncateUtf8(rest, max);
      FUZZ_CHECK(cut.size() <= max && rest.substr(0, cut.size()) == cut, "TruncateUtf8 is not a short prefix");
      if (rest.size() <= max) FUZZ_CHECK(cut == rest, "TruncateUtf8 cut a text within the limit");
      if (IsValidUtf8(rest)) {
        FUZZ_CHECK(IsValidUtf8(cut) && JsonAccepts(cut), "TruncateUtf8 made valid UTF-8 invalid");
        FUZZ_CHECK(cut.size() + 3 >= std::min(max, rest.size()), "TruncateUtf8 dropped more than one character");
      }
      break;
    }
    default: {
      auto b64 = Base64UrlDecode(Base64UrlEncode(bytes));
      FUZZ_CHECK(b64 && std::equal(b64->begin(), b64->end(), bytes.begin(), bytes.end()), "base64url round trip");
      auto hex = HexDecode(HexEncode(bytes));
      FUZZ_CHECK(hex && std::equal(hex->begin(), hex->end(), bytes.begin(), bytes.end()), "hex round trip");
      break;
    }
  }
  return 0;
}
