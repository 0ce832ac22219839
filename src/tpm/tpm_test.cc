// The TPM backend against real swtpm processes (tpm/testing/swtpm.h): keys
// made in one TPM, used through OpenSSL with the TPM doing the work, refused by
// another TPM and after TPM2_Clear; EK certificates; credential activation
// checked against tpm2-tools' independent TPM2_MakeCredential.
#include "tpm/tpm.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include <cstdlib>
#include <fstream>

#include "base/encoding.h"
#include "base/files.h"
#include "crypto/ossl_internal.h"
#include "crypto/random.h"
#include "tpm/credential.h"
#include "tpm/testing/swtpm.h"

namespace sealdrop {
namespace {
namespace fs = std::filesystem;

fs::path Scratch(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  fs::path p = fs::path(tmp ? tmp : "/tmp") / ("sealdrop-tpm-test-" + std::to_string(::getpid())) / name;
  fs::create_directories(p.parent_path());
  return p;
}

class TpmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto a = testing::Swtpm::Start(Scratch("tpm-a"), Scratch("maker"));
    ASSERT_TRUE(a.has_value()) << a.error().message;
    a_ = a->release();
    auto b = testing::Swtpm::Start(Scratch("tpm-b"));
    ASSERT_TRUE(b.has_value()) << b.error().message;
    b_ = b->release();
  }
  static void TearDownTestSuite() {
    delete a_;
    delete b_;
    std::error_code ec;
    fs::remove_all(Scratch("").parent_path(), ec);
  }
  static Tpm Open(const testing::Swtpm* t) {
    auto tpm = Tpm::Open(t->tcti());
    EXPECT_TRUE(tpm.has_value()) << tpm.error().message;
    return std::move(*tpm);
  }
  static testing::Swtpm* a_;
  static testing::Swtpm* b_;
};
testing::Swtpm* TpmTest::a_ = nullptr;
testing::Swtpm* TpmTest::b_ = nullptr;

TEST_F(TpmTest, KeysAreP256WithExactlyTheirRole) {
  Tpm tpm = Open(a_);
  for (TpmKeyRole role : {TpmKeyRole::kSign, TpmKeyRole::kDecrypt}) {
    auto key = tpm.CreateKey(role);
    ASSERT_TRUE(key.has_value()) << key.error().message;
    auto info = ParseTpmPublic(key->public_area);
    ASSERT_TRUE(info.has_value()) << info.error().message;
    EXPECT_TRUE(info->ecc_p256);
    EXPECT_EQ(info->attributes, TpmKeyAttributes(role));
    EXPECT_EQ(info->name.size(), 34u);
    // The file round-trips exactly.
    auto back = TpmKeyFile::FromPem(key->ToPem());
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->public_area, key->public_area);
    EXPECT_EQ(back->private_area, key->private_area);
    EXPECT_EQ(back->parent, 0x40000001u);
  }
}

TEST_F(TpmTest, KeyFileParserRefusesDamage) {
  Tpm tpm = Open(a_);
  auto key = tpm.CreateKey(TpmKeyRole::kSign);
  ASSERT_TRUE(key.has_value());
  const std::string pem = key->ToPem();
  EXPECT_FALSE(TpmKeyFile::FromPem("").has_value());
  EXPECT_FALSE(TpmKeyFile::FromPem(pem.substr(0, pem.size() / 2)).has_value());
  std::string relabelled = pem;
  relabelled.replace(relabelled.find("TSS2 PRIVATE KEY"), 16, "EC PRIVATE KEY  ");
  EXPECT_FALSE(TpmKeyFile::FromPem(relabelled).has_value());
  // Every truncation and every single-byte change of the DER is refused or
  // parses to the same key (a change that the parser cannot see must not
  // exist: it would be a second encoding).
  TpmKeyFile parsed = *TpmKeyFile::FromPem(pem);
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  char *name = nullptr, *header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  ASSERT_EQ(PEM_read_bio(bio.get(), &name, &header, &data, &len), 1);
  Bytes der(data, data + len);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  auto as_pem = [](const Bytes& d) {
    UniquePtr<BIO> out(BIO_new(BIO_s_mem()));
    PEM_write_bio(out.get(), "TSS2 PRIVATE KEY", "", d.data(), static_cast<long>(d.size()));
    char* p = nullptr;
    long n = BIO_get_mem_data(out.get(), &p);
    return std::string(p, static_cast<size_t>(n));
  };
  for (size_t cut = 0; cut < der.size(); ++cut)
    EXPECT_FALSE(TpmKeyFile::FromPem(as_pem(Bytes(der.begin(), der.begin() + cut))).has_value()) << cut;
  size_t refused = 0;
  for (size_t i = 0; i < der.size(); ++i) {
    Bytes d = der;
    d[i] ^= 0x01;
    auto r = TpmKeyFile::FromPem(as_pem(d));
    if (!r) {
      ++refused;
      continue;
    }
    // Accepted: the change is inside the public or private area's contents
    // (caught by the TPM's integrity check at load), never in the framing.
    EXPECT_TRUE(r->public_area != parsed.public_area || r->private_area != parsed.private_area ||
                r->parent != parsed.parent || i == 15 /* TRUE written as 0x01, as tpm2-openssl does */)
        << i;
  }
  EXPECT_GT(refused, 20u);
}

TEST_F(TpmTest, SignAndEcdhRunInTheTpm) {
  Tpm tpm = Open(a_);
  auto sign = tpm.CreateKey(TpmKeyRole::kSign);
  auto wrap = tpm.CreateKey(TpmKeyRole::kDecrypt);
  ASSERT_TRUE(sign && wrap);
  auto sk = LoadTpmKey(*sign, a_->tcti());
  ASSERT_TRUE(sk.has_value()) << sk.error().message;
  EXPECT_EQ(sk->PublicKey().ToPoint(), ParseTpmPublic(sign->public_area)->point);
  const Bytes msg = {'s', 'e', 'a', 'l'};
  auto sig = sk->Sign(msg);
  ASSERT_TRUE(sig.has_value()) << sig.error().message;
  EXPECT_TRUE(sk->PublicKey().Verify(msg, *sig).has_value());
  EXPECT_FALSE(sk->PublicKey().Verify(Bytes{'x'}, *sig).has_value());

  auto wk = LoadTpmKey(*wrap, a_->tcti());
  ASSERT_TRUE(wk.has_value()) << wk.error().message;
  auto peer = EcPrivateKey::Generate();
  ASSERT_TRUE(peer.has_value());
  auto z_tpm = wk->Ecdh(peer->PublicKey());
  ASSERT_TRUE(z_tpm.has_value()) << z_tpm.error().message;
  auto z_soft = peer->Ecdh(wk->PublicKey());
  ASSERT_TRUE(z_soft.has_value());
  EXPECT_EQ(*z_tpm, *z_soft);

  // The TPM enforces each key's single role.
  EXPECT_FALSE(sk->Ecdh(peer->PublicKey()).has_value());
  EXPECT_FALSE(wk->Sign(msg).has_value());
}

TEST_F(TpmTest, AnotherTpmCannotLoadTheKeys) {
  Tpm a = Open(a_);
  Tpm b = Open(b_);
  auto key = a.CreateKey(TpmKeyRole::kDecrypt);
  ASSERT_TRUE(key.has_value());
  EXPECT_TRUE(a.CheckKey(*key).has_value());
  auto st = b.CheckKey(*key);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kCryptoFailure);
  // A damaged private area is refused by the TPM that made it.
  TpmKeyFile bad = *key;
  bad.private_area[bad.private_area.size() / 2] ^= 0x40;
  EXPECT_FALSE(a.CheckKey(bad).has_value());
}

TEST_F(TpmTest, EkCertificateIsTheMakersAndMatchesTheEk) {
  Tpm a = Open(a_);
  auto cert = a.ReadEkCertificate();
  ASSERT_TRUE(cert.has_value()) << cert.error().message;
  const uint8_t* p = cert->data();
  UniquePtr<X509> x(d2i_X509(nullptr, &p, static_cast<long>(cert->size())));
  ASSERT_TRUE(x);
  auto ek = a.EkPublicKeyDer();
  ASSERT_TRUE(ek.has_value()) << ek.error().message;
  uint8_t* der = nullptr;
  int n = i2d_PUBKEY(X509_get0_pubkey(x.get()), &der);
  ASSERT_GT(n, 0);
  EXPECT_EQ(Bytes(der, der + n), *ek);
  OPENSSL_free(der);
  // Signed by the maker's CA.
  auto maker_pem = ReadFile(a_->maker_certificate(), 1 << 20);
  ASSERT_TRUE(maker_pem.has_value());
  UniquePtr<BIO> bio(BIO_new_mem_buf(maker_pem->data(), static_cast<int>(maker_pem->size())));
  UniquePtr<X509> maker(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(maker);
  EXPECT_EQ(X509_verify(x.get(), X509_get0_pubkey(maker.get())), 1);

  Tpm b = Open(b_);
  auto none = b.ReadEkCertificate();
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
}

// tpm2_makecredential (tpm2-tools, in software with --tcti none) makes the
// credential; only the TPM holding both the EK and the named key opens it.
TEST_F(TpmTest, ActivateCredentialOnlyForTheNamedKeyInThisTpm) {
  Tpm a = Open(a_);
  auto key = a.CreateKey(TpmKeyRole::kSign);
  auto other = a.CreateKey(TpmKeyRole::kSign);
  ASSERT_TRUE(key && other);
  auto ek = a.EkPublicKeyDer();
  ASSERT_TRUE(ek.has_value());
  const fs::path dir = Scratch("cred");
  fs::create_directories(dir);
  {
    const uint8_t* p = ek->data();
    UniquePtr<EVP_PKEY> pk(d2i_PUBKEY(nullptr, &p, static_cast<long>(ek->size())));
    UniquePtr<BIO> out(BIO_new_file((dir / "ek.pem").c_str(), "w"));
    ASSERT_EQ(PEM_write_bio_PUBKEY(out.get(), pk.get()), 1);
  }
  SecretBytes secret = RandomSecret(32);
  ASSERT_TRUE(WriteFileAtomic(dir / "secret", secret.Reveal(SecretAccess{}), 0600).has_value());
  const std::string name = HexEncode(ParseTpmPublic(key->public_area)->name);
  const std::string cmd = "tpm2_makecredential -T none -G rsa -u " + (dir / "ek.pem").string() + " -s " +
                          (dir / "secret").string() + " -n " + name + " -o " + (dir / "cred").string() + " >" +
                          (dir / "log").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto file = ReadFile(dir / "cred", 1 << 16);
  ASSERT_TRUE(file.has_value());
  // tpm2-tools' file: magic 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET.
  ASSERT_GT(file->size(), 8u);
  const uint8_t* b = reinterpret_cast<const uint8_t*>(file->data());
  ByteView rest(b + 8, file->size() - 8);
  TPM2B_ID_OBJECT id{};
  size_t off = 0;
  ASSERT_EQ(Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(rest.data(), rest.size(), &off, &id), 0u);
  ByteView blob = rest.first(off);
  ByteView enc = rest.subspan(off);

  auto got = a.ActivateCredential(*key, blob, enc);
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(*got, secret);
  // Another key of the same TPM is not the one named.
  auto wrong_key = a.ActivateCredential(*other, blob, enc);
  ASSERT_FALSE(wrong_key.has_value());
  EXPECT_EQ(wrong_key.error().code, ErrorCode::kCryptoFailure);
  // A flipped byte anywhere in the blob is refused.
  for (size_t i : {size_t{2}, blob.size() / 2, blob.size() - 1}) {
    Bytes tampered(blob.begin(), blob.end());
    tampered[i] ^= 0x01;
    EXPECT_FALSE(a.ActivateCredential(*key, tampered, enc).has_value()) << i;
  }
  // Another TPM cannot even load the key.
  Tpm other_tpm = Open(b_);
  EXPECT_FALSE(other_tpm.ActivateCredential(*key, blob, enc).has_value());
}

// The manufacturer CA's own TPM2_MakeCredential (tpm/credential.h): the TPM
// releases the secret for the named key only, and on no other TPM.
TEST_F(TpmTest, SoftwareMakeCredentialActivatesInTheTpm) {
  Tpm a = Open(a_);
  auto key = a.CreateKey(TpmKeyRole::kDecrypt);
  auto other = a.CreateKey(TpmKeyRole::kDecrypt);
  ASSERT_TRUE(key && other);
  auto ek = a.EkPublicKeyDer();
  ASSERT_TRUE(ek.has_value());
  const Bytes name = ParseTpmPublic(key->public_area)->name;
  for (size_t size : {size_t{1}, size_t{16}, size_t{32}}) {
    SecretBytes secret = RandomSecret(size);
    auto cred = MakeTpmCredential(*ek, name, secret);
    ASSERT_TRUE(cred.has_value()) << cred.error().message;
    auto got = a.ActivateCredential(*key, cred->id_object, cred->encrypted_secret);
    ASSERT_TRUE(got.has_value()) << got.error().message;
    EXPECT_EQ(*got, secret);
    EXPECT_FALSE(a.ActivateCredential(*other, cred->id_object, cred->encrypted_secret).has_value());
    for (size_t i : {size_t{4}, cred->id_object.size() - 1}) {
      Bytes t = cred->id_object;
      t[i] ^= 0x80;
      EXPECT_FALSE(a.ActivateCredential(*key, t, cred->encrypted_secret).has_value()) << i;
    }
    Bytes t = cred->encrypted_secret;
    t[100] ^= 0x01;
    EXPECT_FALSE(a.ActivateCredential(*key, cred->id_object, t).has_value());
  }
  // Made for TPM B's EK, it does not open on TPM A even for A's own key.
  Tpm b = Open(b_);
  auto ek_b = b.EkPublicKeyDer();
  ASSERT_TRUE(ek_b.has_value());
  auto for_b = MakeTpmCredential(*ek_b, name, RandomSecret(32));
  ASSERT_TRUE(for_b.has_value());
  EXPECT_FALSE(a.ActivateCredential(*key, for_b->id_object, for_b->encrypted_secret).has_value());
  // Bad inputs.
  EXPECT_FALSE(MakeTpmCredential(*ek, ByteView(name).first(33), RandomSecret(32)).has_value());
  EXPECT_FALSE(MakeTpmCredential(*ek, name, RandomSecret(33)).has_value());
  EXPECT_FALSE(MakeTpmCredential(*ek, name, SecretBytes()).has_value());
  EXPECT_FALSE(MakeTpmCredential(ByteView(*ek).first(ek->size() - 1), name, RandomSecret(32)).has_value());
  auto ec = EcPrivateKey::Generate();
  ASSERT_TRUE(ec.has_value());
  EXPECT_FALSE(MakeTpmCredential(ec->PublicKey().ToSpkiDer(), name, RandomSecret(32)).has_value());
}

// Runs last in this file: it clears TPM B for good.
TEST_F(TpmTest, ZClearMakesKeysUnusableForGood) {
  Tpm b = Open(b_);
  auto key = b.CreateKey(TpmKeyRole::kDecrypt);
  ASSERT_TRUE(key.has_value());
  ASSERT_TRUE(b.CheckKey(*key).has_value());
  const std::string cmd = "tpm2_clear -T '" + b_->tcti() + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  auto st = b.CheckKey(*key);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kCryptoFailure);
  // Also after a power cycle.
  ASSERT_TRUE(b_->Restart().has_value());
  Tpm again = Open(b_);
  EXPECT_FALSE(again.CheckKey(*key).has_value());
}

}  // namespace
}  // namespace sealdrop
