// Cross-checks against an independent implementation: Python's
// `cryptography` package, run as a subprocess. These tests show that receipts
// are standard JWS (ES256, RFC 7515/7518) and that the HPKE envelope is
// standard RFC 9180, not merely self-consistent.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "base/encoding.h"
#include "crypto/hpke.h"
#include "crypto/jws.h"
#include "crypto/random.h"

namespace sealdrop {
namespace {

namespace fs = std::filesystem;

constexpr int kSkipExit = 77;

// Shared by every script: exits 77 when the needed module is missing so the
// test can skip rather than fail on a machine without it.
constexpr char kPrelude[] = R"PY(
import base64, json, sys
try:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils
except ImportError:
    sys.exit(77)

def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
)PY";

constexpr char kVerifyJws[] = R"PY(
pem_path, jws_path, kid, typ = sys.argv[1:5]
key = serialization.load_pem_public_key(open(pem_path, "rb").read())
h, p, s = open(jws_path).read().split(".")
header = json.loads(b64d(h))
assert header == {"alg": "ES256", "kid": kid, "typ": typ}, header
sig = b64d(s)
assert len(sig) == 64
der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                 int.from_bytes(sig[32:], "big"))
key.verify(der, (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
sys.stdout.write(b64d(p).decode())
)PY";

constexpr char kSignJws[] = R"PY(
pem_path, jws_path, kid, typ, payload = sys.argv[1:6]
key = ec.generate_private_key(ec.SECP256R1())
open(pem_path, "wb").write(key.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
header = json.dumps({"alg": "ES256", "kid": kid, "typ": typ}, separators=(",", ":"))
signing_input = b64e(header.encode()) + "." + b64e(payload.encode())
r, s = utils.decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
open(jws_path, "w").write(signing_input + "." + b64e(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
)PY";

// cryptography's HPKE takes no aad, so these use an empty one.
constexpr char kHpke[] = R"PY(
try:
    from cryptography.hazmat.primitives import hpke
except ImportError:
    sys.exit(77)
suite = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
mode, key_path, data_path, info = sys.argv[1:5]
if mode == "open":
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    sys.stdout.write(suite.decrypt(open(data_path, "rb").read(), key, info=info.encode()).hex())
else:
    key = serialization.load_pem_public_key(open(key_path, "rb").read())
    open(data_path, "wb").write(suite.encrypt(bytes.fromhex(mode), key, info=info.encode()))
)PY";

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sealdrop-interop-" + RandomHexId(8));
    fs::create_directories(dir_);
    // One test writes a private key here.
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path Write(const std::string& name, std::string_view content) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ / name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  // Runs python3 on prelude + body; returns the exit status and stdout.
  // Arguments are single-quoted; callers pass only paths and plain tokens.
  int RunPython(std::string_view body, const std::vector<std::string>& args, std::string* out) {
    fs::path script = Write("script.py", std::string(kPrelude) + std::string(body));
    std::string cmd = "python3 '" + script.string() + "'";
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " 2>'" + (dir_ / "stderr.txt").string() + "'";
    FILE* pipe = popen(cmd.c_str(), "r");
    if (pipe == nullptr) return -1;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out->append(buf, n);
    int status = pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path dir_;
};

#define SKIP_IF_UNAVAILABLE(rc)                                                     \
  if ((rc) == kSkipExit) GTEST_SKIP() << "python3 'cryptography' lacks this feature"; \
  if ((rc) == 127) GTEST_SKIP() << "python3 is not installed"

TEST_F(InteropTest, PythonVerifiesOurJws) {
  auto key = EcPrivateKey::Generate().value();
  std::string kid = key.PublicKey().KeyId();
  std::string payload = R"({"receipt":"r-1","amount":"9.99 EUR"})";
  std::string jws = JwsSign(key, kid, "receipt+jws", AsBytes(payload)).value();
  fs::path pem = Write("pub.pem", key.PublicKey().ToPem());
  fs::path jws_path = Write("token.jws", jws);

  std::string out;
  int rc = RunPython(kVerifyJws, {pem.string(), jws_path.string(), kid, "receipt+jws"}, &out);
  SKIP_IF_UNAVAILABLE(rc);
  ASSERT_EQ(rc, 0) << Read("stderr.txt");
  EXPECT_EQ(out, payload);

  // And the same script refuses a tampered token, so the check above means something.
  std::string bad = jws;
  bad[bad.size() - 3] = bad[bad.size() - 3] == 'A' ? 'B' : 'A';
  Write("token.jws", bad);
  out.clear();
  EXPECT_NE(RunPython(kVerifyJws, {pem.string(), jws_path.string(), kid, "receipt+jws"}, &out),
            0);
}

TEST_F(InteropTest, WeVerifyPythonJws) {
  fs::path pem = dir_ / "pub.pem", jws_path = dir_ / "token.jws";
  std::string out;
  int rc = RunPython(kSignJws, {pem.string(), jws_path.string(), "py-key", "receipt+jws",
                                "hello from python"},
                     &out);
  SKIP_IF_UNAVAILABLE(rc);
  ASSERT_EQ(rc, 0) << Read("stderr.txt");
  auto pub = EcPublicKey::FromPem(Read("pub.pem"));
  ASSERT_TRUE(pub.has_value()) << pub.error().message;
  auto payload = JwsVerifyCompact(Read("token.jws"), *pub, "receipt+jws");
  ASSERT_TRUE(payload.has_value()) << payload.error().message;
  EXPECT_EQ(ToString(*payload), "hello from python");
  EXPECT_EQ(JwsParse(Read("token.jws")).value().kid, "py-key");
}

TEST_F(InteropTest, PythonOpensOurHpke) {
  auto recipient = EcPrivateKey::Generate().value();
  SecretBytes kx = RandomSecret(32);
  auto sealed = HpkeSeal(recipient.PublicKey(), AsBytes("envelope-info"), {}, kx).value();
  SecretBytes pem = recipient.ToPkcs8Pem();
  fs::path key_path = Write("key.pem", AsString(pem.Reveal(SecretAccess{})));
  Bytes blob = sealed.enc;
  blob.insert(blob.end(), sealed.ciphertext.begin(), sealed.ciphertext.end());
  fs::path data = Write("sealed.bin", AsString(blob));

  std::string out;
  int rc = RunPython(kHpke, {"open", key_path.string(), data.string(), "envelope-info"}, &out);
  SKIP_IF_UNAVAILABLE(rc);
  ASSERT_EQ(rc, 0) << Read("stderr.txt");
  EXPECT_EQ(out, HexEncode(kx.Reveal(SecretAccess{})));
}

TEST_F(InteropTest, WeOpenPythonHpke) {
  auto recipient = EcPrivateKey::Generate().value();
  fs::path pub = Write("pub.pem", recipient.PublicKey().ToPem());
  fs::path data = dir_ / "sealed.bin";
  std::string out;
  int rc = RunPython(kHpke, {"00112233445566778899aabbccddeeff", pub.string(), data.string(),
                             "envelope-info"},
                     &out);
  SKIP_IF_UNAVAILABLE(rc);
  ASSERT_EQ(rc, 0) << Read("stderr.txt");
  Bytes blob = ToBytes(Read("sealed.bin"));
  ASSERT_GT(blob.size(), kP256PointSize);
  ByteView all(blob);
  auto pt = HpkeOpen(recipient, all.first(kP256PointSize), AsBytes("envelope-info"), {},
                     all.subspan(kP256PointSize));
  ASSERT_TRUE(pt.has_value());
  EXPECT_EQ(HexEncode(pt->Reveal(SecretAccess{})), "00112233445566778899aabbccddeeff");
}

}  // namespace
}  // namespace sealdrop
