// Writes the seed corpora (fuzz/corpus/<target>/) and the fixed inputs some
// fuzzers load (fuzz/data/): small, valid examples of every format, made
// with the project's own code, so each fuzzer starts from inputs that get
// past the first checks. The output is committed; run this only to
// regenerate it after a format change:
//
//   ninja -C build-fuzz fuzz_make_corpus && build-fuzz/fuzz/fuzz_make_corpus fuzz
//
// It needs `cc` for fuzz/data/tiny.elf (a trivial C program, -Os -s).
// Signatures use fuzz_util.h's FixedKey(1), the key the jws fuzzer verifies
// with; the PKI in fuzz/data/pki is fresh each time (pem_der loads it).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/encoding.h"
#include "base/files.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "fuzz_util.h"
#include "session_ops.h"
#include "package/package_file.h"
#include "package/protected_elf.h"
#include "package/sealer.h"
#include "pki/ca.h"
#include "protocol/frames.h"
#include "protocol/messages.h"

using namespace sealdrop;
namespace fs = std::filesystem;
using fuzz::OpWriter;

namespace {

fs::path root;

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "make_corpus: %s: %s\n", what, r.error().message.c_str());
    std::exit(1);
  }
  return std::move(*r);
}
void Must(Status s, const char* what) {
  if (!s) {
    std::fprintf(stderr, "make_corpus: %s: %s\n", what, s.error().message.c_str());
    std::exit(1);
  }
}

void Seed(const std::string& target, const std::string& name, ByteView bytes) {
  fs::create_directories(root / "corpus" / target);
  Must(WriteFileAtomic(root / "corpus" / target / name, bytes), "writing a seed");
}
void Seed(const std::string& target, const std::string& name, std::string_view text) { Seed(target, name, AsBytes(text)); }
Bytes Cat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (ByteView p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes One(uint8_t b) { return Bytes{b}; }

Bytes TinyElf(const fs::path& tmp) {
  Must(WriteFileAtomic(tmp / "tiny.c", std::string_view("int main(void) { return 0; }\n")), "tiny.c");
  // noseparate-code keeps the program at about 6 KB instead of 14 KB.
  std::string cmd = "cc -Os -s -Wl,-z,noseparate-code -o " + (tmp / "tiny").string() + " " + (tmp / "tiny.c").string();
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "make_corpus: '%s' failed\n", cmd.c_str());
    std::exit(1);
  }
  Bytes elf = Must(ReadFile(tmp / "tiny", 1 << 20), "reading tiny");
  Must(PlanProtectedElf(elf), "the tiny program is not protectable");
  return elf;
}

struct Sealed {
  Bytes stream;  // prefix then payload
  std::string jws;
  Manifest manifest;
};

Sealed SealFile(const fs::path& plaintext, const std::string& kind, const EcPrivateKey& server, const EcPublicKey& wrap) {
  SealRequest req;
  req.plaintext_path = plaintext;
  req.program_id = 1;
  req.name = kind == "elf" ? "tiny" : "notes";
  req.version = "1.0";
  req.kind = kind;
  req.recipient_key = wrap;
  req.device_serial = "dev-seed-1";
  req.order_id = "0123456789abcdef0123456789abcdef";
  req.server_key = &server;
  req.issued_at = 1700000000;
  req.rights.export_plaintext = kind == "data";
  PackageSealer s = Must(PackageSealer::Create(req), "sealing");
  Sealed out{{}, s.manifest_jws(), s.manifest()};
  while (Must(s.Next(out.stream), "sealing")) {
  }
  return out;
}

std::string IssuePem(const fs::path& ca, const EcPrivateKey& key, const CsrRequest& req, CertProfile profile) {
  return Must(CaIssue(ca, Must(MakeCsrPem(key, req), "csr"), {profile, 3000}), "issuing");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FUZZ_DIR\n", argv[0]);
    return 2;
  }
  root = argv[1];
  const fs::path tmp = fs::temp_directory_path() / ("sealdrop-make-corpus-" + RandomHexId(6));
  fs::create_directories(tmp);
  fs::create_directories(root / "data" / "pki");

  // ---- fixed inputs --------------------------------------------------------
  const Bytes elf = TinyElf(tmp);
  Must(WriteFileAtomic(root / "data" / "tiny.elf", elf), "tiny.elf");

  Must(CaInit(tmp / "mfr", {"Seed Manufacturer CA"}), "mfr CA");
  Must(CaInit(tmp / "vendor", {"Seed Vendor CA"}), "vendor CA");
  const std::string mfr_pem = Must(ReadTextFile(tmp / "mfr" / "ca.pem", 1 << 20), "mfr pem");
  const std::string vendor_pem = Must(ReadTextFile(tmp / "vendor" / "ca.pem", 1 << 20), "vendor pem");
  Must(WriteFileAtomic(root / "data" / "pki" / "mfr-ca.pem", mfr_pem), "pki");
  Must(WriteFileAtomic(root / "data" / "pki" / "vendor-ca.pem", vendor_pem), "pki");
  const EcPrivateKey id_key = Must(EcPrivateKey::Generate(), "key");
  const EcPrivateKey wrap_key = Must(EcPrivateKey::Generate(), "key");
  const EcPrivateKey srv_key = Must(EcPrivateKey::Generate(), "key");
  const std::string id_pem = IssuePem(tmp / "mfr", id_key, {"seed device", "dev-seed-1", {}, DeviceKeyRole::kIdentity},
                                      CertProfile::kDevice);
  const std::string wrap_pem = IssuePem(tmp / "mfr", wrap_key,
                                        {"seed device key-wrap", "dev-seed-1", {}, DeviceKeyRole::kKeyWrap},
                                        CertProfile::kDevice);
  const std::string srv_pem = IssuePem(tmp / "vendor", srv_key, {"seed server", "", {"localhost"}, {}}, CertProfile::kServer);

  // ---- packages, manifests, JWS --------------------------------------------
  const EcPrivateKey signer = fuzz::FixedKey(1);
  Bytes notes(300);
  for (size_t i = 0; i < notes.size(); ++i) notes[i] = static_cast<uint8_t>('a' + i % 26);
  Must(WriteFileAtomic(tmp / "notes.txt", notes), "notes");
  Must(WriteFileAtomic(tmp / "tiny.elf", elf), "tiny");
  const Sealed data = SealFile(tmp / "notes.txt", "data", signer, wrap_key.PublicKey());
  const Sealed prog = SealFile(tmp / "tiny.elf", "elf", signer, wrap_key.PublicKey());

  Seed("manifest", "data.json", SerializeManifest(data.manifest));
  Seed("manifest", "elf.json", SerializeManifest(prog.manifest));

  Seed("jws", "manifest-data.jws", data.jws);
  Seed("jws", "manifest-elf.jws", prog.jws);
  ReceiptClaims rc{"00112233445566778899aabbccddeeff", "alice", 1, "notes", "1.0", 100, "dev-seed-1", 1700000000,
                   "seed-vendor"};
  const std::string receipt = Must(JwsSign(signer, signer.PublicKey().KeyId(), kReceiptJwsType,
                                           AsBytes(EncodeReceiptClaims(rc))), "receipt");
  ReleaseClaims rel{data.manifest.package_id, std::string(64, 'a'), "dev-seed-1", data.manifest.order_id,
                    rc.receipt_id, Base64UrlEncode(Bytes(32, 1))};
  const std::string release = Must(JwsSign(signer, signer.PublicKey().KeyId(), kReleaseJwsType,
                                           AsBytes(EncodeReleaseClaims(rel))), "release");
  Seed("jws", "receipt.jws", receipt);
  Seed("jws", "release.jws", release);

  const uint64_t data_offset = data.stream.size() - data.manifest.payload_size;
  const uint64_t prog_offset = prog.stream.size() - prog.manifest.payload_size;
  Seed("package_layout", "data-package", data.stream);
  Seed("package_layout", "data-prefix", ByteView(data.stream).first(data_offset));
  Bytes elf_first(prog.stream.begin() + prog_offset, prog.stream.end());
  Bytes trailer = EncodeElfTrailer(prog.jws);
  elf_first.insert(elf_first.end(), trailer.begin(), trailer.end());
  Seed("package_layout", "elf-first-package", elf_first);
  Seed("package_layout", "prog-prefix", ByteView(prog.stream).first(prog_offset));

  Seed("elf", "tiny.elf", elf);
  Seed("elf", "protected-tiny.elf", ByteView(elf_first).first(prog.manifest.payload_size));

  // protected_elf: FuzzedDataProvider takes the mode (last byte) and the
  // integers from the end, byte blobs from the front.
  Seed("protected_elf", "plan-tiny", Cat({Bytes(16, 0x41), elf, One(2)}));
  Seed("protected_elf", "roundtrip-small", Cat({AsBytes("sealdrop protected elf round trip"), One(8), One(1)}));
  Seed("protected_elf", "decrypt-stored", Cat({Bytes(64, 0x11), ByteView(elf_first).first(prog.manifest.payload_size),
                                               One(64), One(0)}));

  Seed("chunked", "raw-opener", Cat({ByteView(data.stream).subspan(data_offset), Bytes(8, 0x10), One(0)}));
  Seed("chunked", "roundtrip", Cat({AsBytes("chunked round trip plaintext"), Bytes(8, 0x37), One(1)}));
  Seed("chunked", "on-file", Cat({AsBytes("payload on a file"), Bytes(8, 0x25), One(2)}));

  // frames: the stream first, then piece sizes (read from the end), then the mode.
  Bytes inner;
  AppendFrame(inner, static_cast<uint8_t>(InnerType::kPackageBegin), Bytes(8, 0));
  AppendFrame(inner, static_cast<uint8_t>(InnerType::kPackageData), AsBytes("package bytes"));
  AppendFrame(inner, static_cast<uint8_t>(InnerType::kPackageEnd), Bytes(32, 0xee));
  AppendFrame(inner, static_cast<uint8_t>(InnerType::kError), ErrorJson({ErrorCode::kRefused, "no"}));
  Seed("frames", "inner", Cat({inner, Bytes(12, 0x07), One(0)}));
  Seed("frames", "inner-zero-copy", Cat({inner, Bytes(12, 0x05), One(6)}));
  Bytes trp;
  AppendFrame(trp, static_cast<uint8_t>(TrpType::kOpenSession), {});
  AppendFrame(trp, static_cast<uint8_t>(TrpType::kInnerIn), AsBytes("records"));
  AppendFrame(trp, static_cast<uint8_t>(TrpType::kRelease), AsBytes("{\"release\":\"a\",\"receipt\":\"b\"}"));
  AppendFrame(trp, static_cast<uint8_t>(TrpType::kList), {});
  Seed("frames", "trp", Cat({trp, Bytes(12, 0x0b), One(1)}));
  Seed("frames", "trp-zero-copy", Cat({trp, Bytes(12, 0x03), One(7)}));

  // messages: selector byte, then the message.
  auto control = [&](const std::string& name, ControlMessage m, uint8_t selector = 0) {
    Seed("messages", "control-" + name, Cat({One(selector), AsBytes(EncodeControl(m))}));
  };
  ControlMessage m{.type = "login"};
  m.user = "alice";
  m.password = "correct horse";
  m.remember = true;
  control("login", m);
  m = {.type = "purchase"};
  m.program = "hello";
  m.idempotency_key = "0123456789abcdef";
  control("purchase", m);
  m = {.type = "charge"};
  m.order_id = data.manifest.order_id;
  control("charge", m);
  m = {.type = "redownload"};
  m.receipt = receipt;
  control("redownload", m);
  m = {.type = "order"};
  m.order_id = data.manifest.order_id;
  m.program = "hello";
  m.version = "1.0";
  m.price = 100;
  m.size = 300;
  m.charge_required = true;
  control("order", m, 1);
  m = {.type = "charged"};
  m.order_id = data.manifest.order_id;
  m.receipt = receipt;
  m.release = release;
  m.amount = 100;
  m.balance = 900;
  m.package_digest = std::string(64, 'a');
  control("charged", m, 1);
  m = {.type = "receipts"};
  m.receipts = {receipt, receipt};
  control("receipts", m, 1);
  control("error", ErrorControl({ErrorCode::kInsufficientFunds, "the balance is too low"}), 1);
  InnerCapabilities caps;
  caps.package_suites = {"HPKE-P256-SHA256-A256GCM"};
  caps.key_wrap_chain_pem = wrap_pem + mfr_pem;
  Seed("messages", "capabilities", Cat({One(2), EncodeCapabilities(caps)}));
  Seed("messages", "receipt-claims", Cat({One(3), AsBytes(EncodeReceiptClaims(rc))}));
  Seed("messages", "release-claims", Cat({One(4), AsBytes(EncodeReleaseClaims(rel))}));
  Seed("messages", "error-json", Cat({One(5), ErrorJson({ErrorCode::kCryptoFailure, "the package digest does not match"})}));
  Seed("messages", "long-error", Cat({One(6), Bytes{0x03, 0xe0}, AsBytes("the processor could not stage the package; ")}));

  // pem_der: selector byte, then the text or bytes.
  const Certificate id_cert = Must(Certificate::FromPem(id_pem), "id cert");
  Seed("pem_der", "device-pem", Cat({One(0), AsBytes(id_pem)}));
  Seed("pem_der", "device-chain", Cat({One(1), AsBytes(id_pem + mfr_pem)}));
  Seed("pem_der", "keywrap-chain", Cat({One(1), AsBytes(wrap_pem + mfr_pem)}));
  Seed("pem_der", "server-chain", Cat({One(1), AsBytes(srv_pem + vendor_pem)}));
  Seed("pem_der", "device-der", Cat({One(2), id_cert.ToDer()}));
  Seed("pem_der", "base64url", Cat({One(3), AsBytes(Base64UrlEncode(AsBytes("sealdrop seed")))}));
  Seed("pem_der", "hex", Cat({One(4), AsBytes(HexEncode(AsBytes("sealdrop seed")) + "ABCDEF")}));
  Seed("pem_der", "bytes", Cat({One(5), AsBytes("any bytes at all")}));
  Seed("pem_der", "utf8", Cat({One(6), AsBytes("na\xc3\xafve \xe2\x82\xac \xf0\x9f\x94\x92 \xed\x9f\xbf")}));
  Seed("pem_der", "utf8-truncate", Cat({One(7), Bytes{0, 9}, AsBytes("caf\xc3\xa9 \xe2\x82\xac\xe2\x82\xac")}));

  // trp_socket: descriptor plan, operands, then the host's frames.
  auto frame = [](TrpType t, std::string_view body) { return EncodeFrame(static_cast<uint8_t>(t), AsBytes(body)); };
  Seed("trp_socket", "session", Cat({One(0), frame(TrpType::kOpenSession, ""), frame(TrpType::kInnerIn, "\x16\x03\x03"),
                                     frame(TrpType::kAbort, ""), frame(TrpType::kList, ""), frame(TrpType::kInfo, "")}));
  Seed("trp_socket", "release", Cat({One(0), frame(TrpType::kOpenSession, ""),
                                     frame(TrpType::kRelease, "{\"release\":\"" + release + "\",\"receipt\":\"" + receipt + "\"}")}));
  Seed("trp_socket", "export", Cat({One(2 | (1 << 3)), frame(TrpType::kOpen, "{\"with\":false}")}));
  Seed("trp_socket", "export-no-right", Cat({One(2 | (2 << 3)), frame(TrpType::kOpen, "{\"with\":false}")}));
  Seed("trp_socket", "export-program", Cat({One(2 | (3 << 3)), frame(TrpType::kOpen, "{\"with\":false}")}));
  Seed("trp_socket", "export-tampered", Cat({One(2 | (1 << 3) | 0x20), Bytes{0, 0, 1, 0, 0x01},
                                             frame(TrpType::kOpen, "{\"with\":false}")}));
  OpWriter blob_pkg;
  blob_pkg.U8(2).Blob(data.stream);
  Seed("trp_socket", "export-blob", Cat({blob_pkg.bytes(), frame(TrpType::kOpen, "{\"with\":false}")}));
  Seed("trp_socket", "run", Cat({One(5 | (1 << 3)), frame(TrpType::kRun, "{\"args\":[\"-v\"],\"cwd\":\"/\",\"env\":[\"LANG=C\"]}"),
                                 frame(TrpType::kOpen, "{\"with\":true,\"args\":[]}")}));

  // trp_session (fuzz/session_ops.h).
  {
    using namespace fuzz::trp_ops;
    OpWriter foreign;
    foreign.U8(0).U8(kBeginValid).U8(kDataRest).U8(kEndValid).U8(kReleaseValid);
    Seed("trp_session", "foreign-peer", foreign.bytes());
    OpWriter full;
    full.U8(1).U8(kBeginValid).U8(kDataRest).U8(kEndValid).U8(kReleaseValid);
    Seed("trp_session", "deep-data", full.bytes());
    OpWriter prog_ops;
    prog_ops.U8(1).U8(kSelectPackage).U8(1).U8(kBeginValid | kHold).U8(kDataValid | kHold).U32(100).U8(kDataRest)
        .U8(kEndValid).U8(kReleaseValid);
    Seed("trp_session", "deep-elf", prog_ops.bytes());
    OpWriter cut;
    cut.U8(1).U8(kBeginValid | kHold).U8(kDataRest | kHold).U8(kEndValid | kHold).U8(kCutDelivery).U16(700)
        .U8(kReleaseClaims).Text(EncodeReleaseClaims(rel));
    Seed("trp_session", "deep-cut-claims", cut.bytes());
    OpWriter bad;
    bad.U8(1).U8(kBeginU64).U64(12).U8(kDataBlob).Text("SEALDPK1").U8(kErrorBlob)
        .Blob(ErrorJson({ErrorCode::kRefused, "refused"})).U8(kServerClose);
    Seed("trp_session", "deep-error", bad.bytes());
  }

  // server_session (fuzz/session_ops.h).
  {
    using namespace fuzz::server_ops;
    OpWriter buy;
    buy.U8(kLoginToken).U8(0).U8(kSimple).U8(0).U8(kPurchase).U8(0).Text("").U8(kProcessorStart).U8(0)
        .U8(kCapabilitiesValid).U8(0).U8(kReceivedValid).U8(kCharge).U8(0).U8(kSimple).U8(1);
    Seed("server_session", "buy", buy.bytes());
    OpWriter again = buy;
    again.U8(kRedownload).U8(0).U8(kProcessorStart).U8(0).U8(kCapabilitiesValid).U8(0).U8(kReceivedValid)
        .U8(kCharge).U8(0).U8(kSimple).U8(2);
    Seed("server_session", "buy-redownload", again.bytes());
    OpWriter elf_buy;
    elf_buy.U8(kLoginToken).U8(1).U8(kPurchase).U8(1).Text("bob-key-0123456789").U8(kProcessorStart).U8(0)
        .U8(kCapabilitiesValid).U8(0).U8(kReceivedValid).U8(kCharge).U8(0);
    Seed("server_session", "buy-elf", elf_buy.bytes());
    OpWriter old;
    old.U8(kLoginToken).U8(0).U8(kRedownload).U8(1).U8(kProcessorStart).U8(1).U8(kCapabilitiesValid).U8(1);
    Seed("server_session", "redownload-revoked", old.bytes());
    OpWriter raw;
    raw.U8(kControlRaw).Text("{\"type\":\"login\",\"user\":\"alice\",\"token\":\"00\"}").U8(kLoginToken).U8(0)
        .U8(kPurchase).U8(0).Text("").U8(kProcessorStart).U8(0).U8(kCapabilitiesBlob).Blob(EncodeCapabilities(caps))
        .U8(kInnerErrorBlob).Blob(ErrorJson({ErrorCode::kRefused, "the processor gives up"}));
    Seed("server_session", "raw", raw.bytes());
  }

  std::error_code ec;
  fs::remove_all(tmp, ec);
  std::printf("make_corpus: wrote %s/corpus and %s/data\n", root.c_str(), root.c_str());
  return 0;
}
