// TPM enrolment (tpm/enrol.h) between real swtpm processes and a CA
// directory: the whole exchange, and the refusals docs/tpm.md section 3
// promises: an EK certificate from an untrusted maker, keys with the wrong
// attributes, a key that claims to be in the TPM but is not (even loaded as
// a public area into the very TPM that holds the EK), wrong secrets,
// replayed or damaged documents.
#include "tpm/enrol.h"

#include <gtest/gtest.h>
#include <tss2/tss2_mu.h>

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/files.h"
#include "crypto/sha256.h"
#include "pki/ca.h"
#include "tpm/testing/swtpm.h"

namespace sealdrop {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::system_clock;

fs::path Scratch(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  fs::path p = fs::path(tmp ? tmp : "/tmp") / ("sealdrop-enrol-test-" + std::to_string(::getpid())) / name;
  fs::create_directories(p.parent_path());
  return p;
}

std::string ReadAll(const fs::path& p) { return *ReadTextFile(p, 1 << 20); }

// A TPM2B_PUBLIC for a software key that claims the TPM attributes.
Bytes ForgedPublic(const EcPublicKey& key, TpmKeyRole role) {
  TPM2B_PUBLIC pub{};
  TPMT_PUBLIC& p = pub.publicArea;
  p.type = TPM2_ALG_ECC;
  p.nameAlg = TPM2_ALG_SHA256;
  p.objectAttributes = TpmKeyAttributes(role);
  p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
  p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
  p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
  p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
  const Bytes point = key.ToPoint();
  p.unique.ecc.x.size = 32;
  std::copy(point.begin() + 1, point.begin() + 33, p.unique.ecc.x.buffer);
  p.unique.ecc.y.size = 32;
  std::copy(point.begin() + 33, point.end(), p.unique.ecc.y.buffer);
  uint8_t buf[sizeof(TPM2B_PUBLIC)];
  size_t off = 0;
  EXPECT_EQ(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof buf, &off), 0u);
  return Bytes(buf, buf + off);
}

class EnrolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto a = testing::Swtpm::Start(Scratch("tpm-a"), Scratch("maker"));
    ASSERT_TRUE(a.has_value()) << a.error().message;
    a_ = a->release();
    auto rogue = testing::Swtpm::Start(Scratch("tpm-rogue"), Scratch("rogue-maker"));
    ASSERT_TRUE(rogue.has_value()) << rogue.error().message;
    rogue_ = rogue->release();
  }
  static void TearDownTestSuite() {
    delete a_;
    delete rogue_;
    std::error_code ec;
    fs::remove_all(Scratch("").parent_path(), ec);
  }
  void SetUp() override {
    ca_ = Scratch("ca-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    auto made = CaInit(ca_, {.name = "Test Manufacturer"});
    ASSERT_TRUE(made.has_value()) << made.error().message;
    roots_ = Maker(a_);
  }
  static Tpm Open(const testing::Swtpm* t) {
    auto tpm = Tpm::Open(t->tcti());
    EXPECT_TRUE(tpm.has_value()) << tpm.error().message;
    return std::move(*tpm);
  }
  struct Device {
    TpmKeyFile identity, keywrap;
    std::string request;
  };
  static Device MakeDevice(Tpm& tpm, std::string_view serial) {
    Device d;
    d.identity = *tpm.CreateKey(TpmKeyRole::kSign);
    d.keywrap = *tpm.CreateKey(TpmKeyRole::kDecrypt);
    auto request = MakeTpmEnrolRequest(tpm, serial, d.identity, d.keywrap);
    EXPECT_TRUE(request.has_value()) << request.error().message;
    d.request = *request;
    return d;
  }
  // The maker's root and the intermediate that signs EK certificates.
  static std::string Maker(const testing::Swtpm* t) {
    return ReadAll(t->maker_root()) + ReadAll(t->maker_certificate());
  }
  static json Edit(std::string_view text) { return json::parse(text); }

  static testing::Swtpm* a_;
  static testing::Swtpm* rogue_;
  fs::path ca_;
  std::string roots_;
};
testing::Swtpm* EnrolTest::a_ = nullptr;
testing::Swtpm* EnrolTest::rogue_ = nullptr;

TEST_F(EnrolTest, TheWholeExchangeIssuesBoundCertificates) {
  Tpm tpm = Open(a_);
  Device d = MakeDevice(tpm, "SN-TPM-1");
  auto challenge = CaTpmEnrolChallenge(ca_, d.request, roots_, Clock::now());
  ASSERT_TRUE(challenge.has_value()) << challenge.error().message;
  EXPECT_EQ(challenge->serial, "SN-TPM-1");
  EXPECT_TRUE(fs::exists(ca_ / "pending" / (challenge->enrolment + ".json")));
  // The pending record keeps hashes, never the secrets.
  auto response = AnswerTpmEnrolChallenge(tpm, "SN-TPM-1", d.identity, d.keywrap, challenge->json);
  ASSERT_TRUE(response.has_value()) << response.error().message;
  const std::string pending = ReadAll(ca_ / "pending" / (challenge->enrolment + ".json"));
  for (const char* f : {"identity_secret", "keywrap_secret"})
    EXPECT_EQ(pending.find(Edit(*response)[f].get<std::string>()), std::string::npos);

  auto issued = CaTpmEnrolFinish(ca_, *response, 365, Clock::now());
  ASSERT_TRUE(issued.has_value()) << issued.error().message;
  EXPECT_FALSE(fs::exists(ca_ / "pending" / (challenge->enrolment + ".json")));

  TrustStore store;
  ASSERT_TRUE(store.AddRootsPem(ReadAll(ca_ / "ca.pem")).has_value());
  auto ek = tpm.ReadEkCertificate();
  ASSERT_TRUE(ek.has_value());
  const Digest ek_hash = Sha256Of(*ek);
  for (auto [pem, role, file] : {std::tuple{issued->identity_pem, DeviceKeyRole::kIdentity, &d.identity},
                                 std::tuple{issued->keywrap_pem, DeviceKeyRole::kKeyWrap, &d.keywrap}}) {
    auto chain = Certificate::AllFromPem(pem);
    ASSERT_TRUE(chain.has_value());
    auto leaf = store.Verify(*chain, CertProfile::kDevice, role, Clock::now());
    ASSERT_TRUE(leaf.has_value()) << leaf.error().message;
    EXPECT_EQ(leaf->device_serial, "SN-TPM-1");
    EXPECT_EQ(leaf->leaf.TpmEkCertificateSha256(), Bytes(ek_hash.begin(), ek_hash.end()));
    EXPECT_EQ(leaf->leaf.PublicKey().ToPoint(), ParseTpmPublic(file->public_area)->point);
  }
  // A response is used once.
  auto again = CaTpmEnrolFinish(ca_, *response, 365, Clock::now());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
}

TEST_F(EnrolTest, AnEkCertificateFromAnUntrustedMakerIsRefused) {
  Tpm rogue = Open(rogue_);
  Device d = MakeDevice(rogue, "SN-ROGUE");
  auto challenge = CaTpmEnrolChallenge(ca_, d.request, roots_, Clock::now());
  ASSERT_FALSE(challenge.has_value());
  EXPECT_EQ(challenge.error().code, ErrorCode::kUntrustedPeer);
  EXPECT_FALSE(fs::exists(ca_ / "pending"));
  // The intermediate alone is no trust anchor.
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, d.request, ReadAll(a_->maker_certificate()), Clock::now()).has_value());
  // Trusting that maker too lets it through: the refusal was about the maker.
  EXPECT_TRUE(CaTpmEnrolChallenge(ca_, d.request, roots_ + Maker(rogue_), Clock::now()));
  // An EK certificate is not valid before it was made.
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, d.request, roots_ + Maker(rogue_),
                                   Clock::now() - std::chrono::hours(24 * 365 * 30)));
}

TEST_F(EnrolTest, KeysWithTheWrongAttributesAreRefused) {
  Tpm tpm = Open(a_);
  Device d = MakeDevice(tpm, "SN-ATTR");
  // Roles swapped: the identity key can decrypt, the key-wrap key can sign.
  json swapped = Edit(d.request);
  std::swap(swapped["identity_public"], swapped["keywrap_public"]);
  auto r = CaTpmEnrolChallenge(ca_, swapped.dump(), roots_, Clock::now());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kRefused);
  // A key that could be duplicated (fixedTPM clear), honestly declared.
  auto soft = EcPrivateKey::Generate();
  ASSERT_TRUE(soft.has_value());
  Bytes forged = ForgedPublic(soft->PublicKey(), TpmKeyRole::kSign);
  forged[9] &= static_cast<uint8_t>(~0x02);  // TPMA_OBJECT (bytes 6-9, big-endian): fixedTPM
  json dup = Edit(d.request);
  dup["identity_public"] = Base64UrlEncode(forged);
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, dup.dump(), roots_, Clock::now()).has_value());
  // The same key twice.
  json same = Edit(d.request);
  same["identity_public"] = same["keywrap_public"];
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, same.dump(), roots_, Clock::now()).has_value());
}

// The attack the design rests on: a software key described as a TPM key.
// The CA cannot tell from the request, so it makes the challenge; the host
// that holds the real TPM cannot answer it, not even by loading the forged
// public area into that TPM.
TEST_F(EnrolTest, AKeyThatClaimsToBeInTheTpmButIsNotGetsNoCertificate) {
  Tpm tpm = Open(a_);
  Device d = MakeDevice(tpm, "SN-FAKE");
  auto soft = EcPrivateKey::Generate();
  ASSERT_TRUE(soft.has_value());
  const Bytes forged = ForgedPublic(soft->PublicKey(), TpmKeyRole::kSign);
  ASSERT_EQ(ParseTpmPublic(forged)->attributes, TpmKeyAttributes(TpmKeyRole::kSign));
  json request = Edit(d.request);
  request["identity_public"] = Base64UrlEncode(forged);
  auto challenge = CaTpmEnrolChallenge(ca_, request.dump(), roots_, Clock::now());
  ASSERT_TRUE(challenge.has_value()) << challenge.error().message;
  json c = Edit(challenge->json);
  auto blob = Base64UrlDecode(c["identity"]["id_object"].get<std::string>());
  auto enc = Base64UrlDecode(c["identity"]["encrypted_secret"].get<std::string>());
  ASSERT_TRUE(blob && enc);

  // Loaded as a public area only, into the TPM that holds the EK.
  auto external = tpm_internal::ActivateWithPublicOnly(tpm, forged, *blob, *enc);
  ASSERT_FALSE(external.has_value()) << "the TPM released a credential for a public-only object";
  std::cout << "public-only activation: " << external.error().message << "\n";
  // Answering with the real identity key instead does not match the name.
  EXPECT_FALSE(AnswerTpmEnrolChallenge(tpm, "SN-FAKE", d.identity, d.keywrap, challenge->json).has_value());
  // Guessing the secret closes the enrolment.
  auto good_keywrap = tpm.ActivateCredential(
      d.keywrap, *Base64UrlDecode(c["keywrap"]["id_object"].get<std::string>()),
      *Base64UrlDecode(c["keywrap"]["encrypted_secret"].get<std::string>()));
  ASSERT_TRUE(good_keywrap.has_value());
  json response = {{"format", "sealdrop-tpm-enrol-response-1"},
                   {"enrolment", challenge->enrolment},
                   {"identity_secret", Base64UrlEncode(Bytes(32, 0))},
                   {"keywrap_secret", Base64UrlEncode(good_keywrap->Reveal(SecretAccess{}))}};
  auto finish = CaTpmEnrolFinish(ca_, response.dump(), 365, Clock::now());
  ASSERT_FALSE(finish.has_value());
  EXPECT_EQ(finish.error().code, ErrorCode::kRefused);
  EXPECT_FALSE(fs::exists(ca_ / "pending" / (challenge->enrolment + ".json")));
  EXPECT_TRUE(CaList(ca_)->empty());
}

TEST_F(EnrolTest, ChallengesForAnotherTpmOrSerialAreRefused) {
  Tpm tpm = Open(a_);
  Device d = MakeDevice(tpm, "SN-ONE");
  auto challenge = CaTpmEnrolChallenge(ca_, d.request, roots_, Clock::now());
  ASSERT_TRUE(challenge.has_value()) << challenge.error().message;
  auto wrong_serial = AnswerTpmEnrolChallenge(tpm, "SN-TWO", d.identity, d.keywrap, challenge->json);
  ASSERT_FALSE(wrong_serial.has_value());
  EXPECT_EQ(wrong_serial.error().code, ErrorCode::kInvalidArgument);
  // Another TPM cannot load these keys, let alone activate.
  Tpm rogue = Open(rogue_);
  EXPECT_FALSE(AnswerTpmEnrolChallenge(rogue, "SN-ONE", d.identity, d.keywrap, challenge->json).has_value());
  // Another device's keys in the same TPM are not the ones named.
  Device other = MakeDevice(tpm, "SN-ONE");
  EXPECT_FALSE(AnswerTpmEnrolChallenge(tpm, "SN-ONE", other.identity, other.keywrap, challenge->json).has_value());
}

TEST_F(EnrolTest, AnExpiredEnrolmentIsRefused) {
  Tpm tpm = Open(a_);
  Device d = MakeDevice(tpm, "SN-LATE");
  auto challenge = CaTpmEnrolChallenge(ca_, d.request, roots_, Clock::now());
  ASSERT_TRUE(challenge.has_value()) << challenge.error().message;
  auto response = AnswerTpmEnrolChallenge(tpm, "SN-LATE", d.identity, d.keywrap, challenge->json);
  ASSERT_TRUE(response.has_value());
  auto late = CaTpmEnrolFinish(ca_, *response, 365, Clock::now() + kEnrolPendingLifetime + std::chrono::minutes(1));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, ErrorCode::kNotFound);
}

TEST_F(EnrolTest, DamagedDocumentsAreRefused) {
  Tpm tpm = Open(a_);
  Device d = MakeDevice(tpm, "SN-DMG");
  // Truncations and flipped bytes of the request.
  for (size_t cut : {size_t{0}, size_t{1}, d.request.size() / 2, d.request.size() - 3})
    EXPECT_FALSE(CaTpmEnrolChallenge(ca_, d.request.substr(0, cut), roots_, Clock::now()).has_value()) << cut;
  json base = Edit(d.request);
  for (const char* field : {"ek_certificate", "identity_public", "keywrap_public"}) {
    Bytes raw = *Base64UrlDecode(base[field].get<std::string>());
    for (size_t i : {size_t{0}, size_t{1}, raw.size() / 2, raw.size() - 1}) {
      json j = base;
      Bytes t = raw;
      t[i] ^= 0x01;
      j[field] = Base64UrlEncode(t);
      EXPECT_FALSE(CaTpmEnrolChallenge(ca_, j.dump(), roots_, Clock::now()).has_value()) << field << " " << i;
    }
    json j = base;
    j[field] = Base64UrlEncode(ByteView(raw).first(raw.size() - 1));
    EXPECT_FALSE(CaTpmEnrolChallenge(ca_, j.dump(), roots_, Clock::now()).has_value()) << field;
    j[field] = 7;
    EXPECT_FALSE(CaTpmEnrolChallenge(ca_, j.dump(), roots_, Clock::now()).has_value()) << field;
  }
  json extra = base;
  extra["comment"] = "x";
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, extra.dump(), roots_, Clock::now()).has_value());
  json wrong_format = base;
  wrong_format["format"] = "sealdrop-tpm-enrol-response-1";
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, wrong_format.dump(), roots_, Clock::now()).has_value());
  json bad_serial = base;
  bad_serial["serial"] = "SN 1";
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, bad_serial.dump(), roots_, Clock::now()).has_value());
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, std::string(kMaxEnrolDocument + 1, ' '), roots_, Clock::now()).has_value());
  EXPECT_FALSE(CaTpmEnrolChallenge(ca_, d.request, "", Clock::now()).has_value());
  EXPECT_FALSE(CaTpmEnrolChallenge(Scratch("no-ca"), d.request, roots_, Clock::now()).has_value());
  // Nothing was left pending by any refusal.
  EXPECT_FALSE(fs::exists(ca_ / "pending"));

  // The challenge and the response.
  auto challenge = CaTpmEnrolChallenge(ca_, d.request, roots_, Clock::now());
  ASSERT_TRUE(challenge.has_value()) << challenge.error().message;
  json c = Edit(challenge->json);
  for (const char* role : {"identity", "keywrap"})
    for (const char* field : {"id_object", "encrypted_secret"}) {
      json j = c;
      Bytes t = *Base64UrlDecode(c[role][field].get<std::string>());
      t[t.size() / 2] ^= 0x20;
      j[role][field] = Base64UrlEncode(t);
      EXPECT_FALSE(AnswerTpmEnrolChallenge(tpm, "SN-DMG", d.identity, d.keywrap, j.dump()).has_value())
          << role << " " << field;
    }
  auto response = AnswerTpmEnrolChallenge(tpm, "SN-DMG", d.identity, d.keywrap, challenge->json);
  ASSERT_TRUE(response.has_value());
  json r = Edit(*response);
  json bad_id = r;
  bad_id["enrolment"] = "../../etc/passwd";
  EXPECT_EQ(CaTpmEnrolFinish(ca_, bad_id.dump(), 365, Clock::now()).error().code, ErrorCode::kMalformed);
  json unknown = r;
  unknown["enrolment"] = std::string(32, '0');
  EXPECT_EQ(CaTpmEnrolFinish(ca_, unknown.dump(), 365, Clock::now()).error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(CaTpmEnrolFinish(ca_, response->substr(0, response->size() / 2), 365, Clock::now()).has_value());
  // None of that consumed the enrolment: the real response still works.
  EXPECT_TRUE(CaTpmEnrolFinish(ca_, *response, 365, Clock::now()).has_value());
}

}  // namespace
}  // namespace sealdrop
