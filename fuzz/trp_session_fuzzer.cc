// The processor's download state machine, TrpSession (protocol/trp_session.h),
// fed sequences of operations (fuzz/session_ops.h) by a fuzzer that plays
// the server.
//
// The session runs over a PlainChannel (protocol/testing/plain_channel.h),
// not TLS: a real handshake per input costs ~7 ms and held this target at
// 75 executions a second. The inner TLS itself is OpenSSL's; what is ours
// around it (the channel, the record stream between host and processor, the
// certificate checks inside the handshake) is covered by the trp_socket and
// frames targets and by the tamper tests in protocol/session_test.cc and
// tests/adversary. The first byte chooses the peer the channel reports: odd,
// the vendor server's certificate; even, another certificate (the device's
// own), whose key signed nothing, so no package may ever be held.
//
// The fuzzer chooses the frames the server writes (PackageBegin/Data/End
// with genuine or fuzzed bodies, genuine packages sealed for this device,
// errors, unknown frames), how they are cut into deliveries, raw bytes in
// the inner stream, close_notify, and the host's Release (genuine, fuzzer
// claims signed by the server key, or raw).
//
// Checks, after every step:
//  - a failure after the package began leaves the staging discarded;
//  - a held package is exactly what was delivered: its size, its digest
//    (recomputed with PackageDigest over the delivered bytes), its manifest
//    (one the server signed), and the staged bytes (rearranged ELF-first for
//    a protected ELF, with the trailer);
//  - the processor says Received only with the held package's digest, and
//    sends nothing but Capabilities and Received;
//  - a genuine release of a held package is accepted; a release the fuzzer
//    wrote and the server signed is accepted only if its claims name this
//    package, device, order and session (the channel's exporter); a raw
//    release never is;
//  - a refused release leaves the session as it was: same state, same held
//    package (the host may still bring the right release).
// Because of that last property, repeating a refused release tests nothing
// new, while each attempt on a held package costs an ECDSA verification:
// inputs that repeated kReleaseValid for another package spent two thirds of
// this target's time there. So each input makes at most kMaxHeldReleases
// attempts while a package is held; later Release steps are skipped (their
// operands still read). Attempts in any other state are cheap and not counted.
// The clock is fixed; the server's and device's keys are made once, and so
// are the genuine releases.
#include <cstdint>

#include "base/encoding.h"
#include "base/reader.h"
#include "crypto/jws.h"
#include "fuzz_util.h"
#include "session_ops.h"
#include "package/digest.h"
#include "package/package_file.h"
#include "package/sealer.h"
#include "protocol/testing/plain_channel.h"
#include "server/testing/world.h"

using namespace sealdrop;
using namespace sealdrop::fuzz::trp_ops;
using fuzz::OpReader;

namespace {

struct Package {
  Bytes bytes;  // as the server streams it (prefix, then payload)
  Manifest manifest;
  std::string jws;
  Bytes digest;
  // The genuine release of this package to the fixture's device in the
  // session whose exporter is kSecret's, signed once: signing it per
  // kReleaseValid step was a quarter of this target's time.
  sealdrop::ReleaseClaims release_claims;
  std::string release_jws;
};

// The channel's secret (PlainChannel), hence its exporter.
constexpr std::string_view kSecret = "session";

// Release attempts per input while a package is held (see the top).
constexpr int kMaxHeldReleases = 8;

struct Fixture {
  std::unique_ptr<testing::World> world;
  testing::Device device;
  std::vector<Package> packages;  // [0] data; [1] protected ELF if fuzz/data/tiny.elf exists
  std::string receipt_jws;
  std::string receipt_id = "00112233445566778899aabbccddeeff";
};

Package Seal(const Fixture& f, const std::filesystem::path& plaintext, const std::string& kind) {
  SealRequest req;
  req.plaintext_path = plaintext;
  req.program_id = 1;
  req.name = "hello";
  req.version = "1.0";
  req.kind = kind;
  req.recipient_key = f.device.wrap_key->PublicKey();
  req.device_serial = f.device.identity.device_serial;
  req.order_id = "0123456789abcdef0123456789abcdef";
  req.server_key = &*f.world->server.identity.key;
  req.issued_at = 1700000000;
  auto sealer = PackageSealer::Create(req);
  FUZZ_CHECK(sealer.has_value(), "sealing the fixture package: " + sealer.error().message);
  Package p;
  p.manifest = sealer->manifest();
  p.jws = sealer->manifest_jws();
  for (;;) {
    auto more = sealer->Next(p.bytes);
    FUZZ_CHECK(more.has_value(), "sealing: " + more.error().message);
    if (!*more) break;
  }
  PackageDigest digest = PackageDigest::For(p.bytes.size() - p.manifest.payload_size, p.manifest);
  digest.Update(p.bytes);
  auto d = digest.Final();
  FUZZ_CHECK(d.has_value(), "digest of the fixture package");
  p.digest.assign(d->begin(), d->end());
  return p;
}

Fixture* fixture = nullptr;

// Signs `payload` with the vendor server's key, as the server signs
// releases and receipts.
Result<std::string> ServerSign(const testing::World& world, const char* type, ByteView payload) {
  const EcPrivateKey& key = *world.server.identity.key;
  return JwsSign(key, key.PublicKey().KeyId(), type, payload);
}

// The world's temporary directory goes when the fuzzer exits normally.
void CleanUp() {
  if (fixture != nullptr) fixture->world.reset();
}

const Fixture& Fix() {
  static const Fixture* once = [] {
    auto* f = new Fixture;
    f->world = testing::World::Create(3000);
    f->world->server.now = fuzz::FixedNow;
    f->device = f->world->MakeDevice({"dev-fuzz-1"});
    f->packages.push_back(Seal(*f, f->world->program_path, "data"));
    const std::filesystem::path elf = std::string(SEALDROP_FUZZ_DIR) + "/data/tiny.elf";
    if (std::filesystem::exists(elf)) f->packages.push_back(Seal(*f, elf, "elf"));
    const std::string exporter =
        Base64UrlEncode(testing::PlainExporter(AsBytes(kSecret), kReleaseExporterLabel, 32));
    for (Package& p : f->packages) {
      p.release_claims = {p.manifest.package_id, HexEncode(p.digest), f->device.identity.device_serial,
                          p.manifest.order_id,   f->receipt_id,       exporter};
      auto jws = ServerSign(*f->world, kReleaseJwsType, AsBytes(EncodeReleaseClaims(p.release_claims)));
      FUZZ_CHECK(jws.has_value(), "signing a fixture release");
      p.release_jws = *jws;
    }
    ReceiptClaims rc{f->receipt_id, "alice", 1, "hello", "1.0", 100, f->device.identity.device_serial, 1700000000,
                     "test-vendor"};
    f->receipt_jws = *ServerSign(*f->world, kReceiptJwsType, AsBytes(EncodeReceiptClaims(rc)));
    fixture = f;
    std::atexit(CleanUp);
    return f;
  }();
  return *once;
}

class Deep {
 public:
  explicit Deep(bool genuine_peer)
      : f_(Fix()),
        genuine_peer_(genuine_peer),
        trp_(f_.device.identity, f_.world->vendors, fuzz::FixedNow, staging_,
             testing::PlainChannelFactory(
                 genuine_peer ? f_.world->server.identity.chain : f_.device.identity.tls.chain,
                 Bytes(kSecret.begin(), kSecret.end()), &channel_)),
        decoder_(InnerMaxBody) {}

  // The (plain) handshake and the processor's Capabilities.
  void Handshake() {
    FUZZ_CHECK(trp_.Release("a.b.c", "d.e.f").error().code == ErrorCode::kWrongState, "release before start");
    FUZZ_CHECK(trp_.Start().has_value(), "Start failed");
    FUZZ_CHECK(channel_ != nullptr, "the session did not use the channel factory");
    Bytes hello = trp_.TakeToServer();
    FUZZ_CHECK(hello == Bytes(testing::kPlainHello.begin(), testing::kPlainHello.end()), "no ClientHello");
    auto st = trp_.OnInner(hello);
    if (!genuine_peer_) {
      FUZZ_CHECK(!st.has_value() && st.error().code == ErrorCode::kUntrustedPeer,
                 "the processor accepted a device certificate as the vendor server");
      return;
    }
    FUZZ_CHECK(st.has_value(), "processor refused the server's flight: " + (st ? "" : st.error().message));
    ServerReads();
    FUZZ_CHECK(trp_.state() == TrpSession::State::kAwaitPackage && capabilities_,
               "the plain handshake did not complete");
  }

  bool failed() const { return trp_.state() == TrpSession::State::kFailed; }

  void Step(OpReader& in) {
    const uint8_t code = in.U8();
    const bool hold = code & kHold;
    const Package& pkg = f_.packages[selected_];
    switch ((code & 0x7f) % kDeepCount) {
      case kSelectPackage:
        selected_ = in.U8() % f_.packages.size();
        cursor_ = 0;
        break;
      case kBeginValid: Begin(pkg.bytes.size()); break;
      case kBeginU64: Begin(in.U64()); break;
      case kBeginBlob: Write(InnerType::kPackageBegin, in.Blob()); break;
      case kDataValid: {
        uint64_t n = in.U32() % (pkg.bytes.size() - cursor_ + 1);
        Data(ByteView(pkg.bytes).subspan(cursor_, n));
        cursor_ += n;
        break;
      }
      case kDataRest:
        while (cursor_ < pkg.bytes.size()) {
          uint64_t n = std::min<uint64_t>(kMaxPackageDataSize, pkg.bytes.size() - cursor_);
          Data(ByteView(pkg.bytes).subspan(cursor_, n));
          cursor_ += n;
        }
        break;
      case kDataBlob: Data(in.Blob()); break;
      case kEndValid: Write(InnerType::kPackageEnd, pkg.digest); break;
      case kEndBlob: Write(InnerType::kPackageEnd, in.Blob()); break;
      case kErrorBlob: Write(InnerType::kError, in.Blob()); break;
      case kFrame: {
        uint8_t type = in.U8();
        Bytes body = in.Blob();
        if (InnerMaxBody(type) && body.size() > *InnerMaxBody(type)) body.resize(*InnerMaxBody(type));
        Write(static_cast<InnerType>(type), body);
        break;
      }
      case kRawRecords: ToProcessor(in.Blob()); break;
      case kCutDelivery: {
        size_t cut = in.U16();
        Bytes records = TakePending();
        cut = std::min(cut, records.size());
        ToProcessor(ByteView(records).first(cut));
        ToProcessor(ByteView(records).subspan(cut));
        break;
      }
      case kServerClose: close_pending_ = true; break;
      case kReleaseValid:
        if (MayRelease()) ReleaseValid();
        break;
      case kReleaseClaims: {
        const Bytes claims = in.Blob();
        if (MayRelease()) ReleaseClaims(claims);
        break;
      }
      case kReleaseRaw: {
        std::string release = in.Text(), receipt = in.Text();
        if (MayRelease())
          FUZZ_CHECK(!TryRelease(release, receipt).has_value(), "a release the server never signed was accepted");
        break;
      }
      default: trp_.Abort(); break;
    }
    if (!hold) {
      // close_notify travels with what the server holds, even nothing.
      const bool closing = close_pending_ && !closed_;
      if (closing) {
        closed_ = true;
        channel_->PeerClose();
      }
      ToProcessor(TakePending(), closing);
    }
    // trp/server.cc, the session's only caller, reports a failed session
    // to the host with ErrorJson(error). The session keeps its first error,
    // so once is enough.
    if (trp_.error() && !error_reported_) {
      (void)ErrorJson(*trp_.error());
      error_reported_ = true;
    }
    FUZZ_TRACE("trp_session: op %u -> state %d%s\n", code, static_cast<int>(trp_.state()),
               trp_.error() ? (" (" + trp_.error()->message + ")").c_str() : "");
    Check();
  }

 private:
  void Begin(uint64_t total) {
    uint8_t body[8];
    StoreU64(body, total);
    Write(InnerType::kPackageBegin, ByteView(body, 8));
  }
  void Data(ByteView body) { Write(InnerType::kPackageData, body); }
  void Write(InnerType type, ByteView body) {
    // After close_notify the server writes nothing more.
    if (close_pending_) return;
    written_.push_back({static_cast<uint8_t>(type), Bytes(body.begin(), body.end())});
    Bytes frame = EncodeFrame(static_cast<uint8_t>(type), body);
    pending_.insert(pending_.end(), frame.begin(), frame.end());
  }
  Bytes TakePending() {
    Bytes out = std::move(pending_);
    pending_ = Bytes();
    return out;
  }

  // The package a processor holds was delivered by the frames from the first
  // PackageBegin to the first PackageEnd: any other Begin, or an End that
  // does not complete the package, fails the session.
  Bytes Delivered() const {
    Bytes out;
    bool begun = false;
    for (const auto& [type, body] : written_) {
      if (type == static_cast<uint8_t>(InnerType::kPackageBegin)) begun = true;
      if (!begun) continue;
      if (type == static_cast<uint8_t>(InnerType::kPackageEnd)) break;
      if (type == static_cast<uint8_t>(InnerType::kPackageData)) out.insert(out.end(), body.begin(), body.end());
    }
    return out;
  }

  void ToProcessor(ByteView records, bool even_if_empty = false) {
    if (records.empty() && !even_if_empty) return;
    const auto before = trp_.state();
    (void)trp_.OnInner(records);
    if (trp_.state() == TrpSession::State::kFailed && before != TrpSession::State::kFailed) failed_from_ = before;
    ServerReads();
  }

  // What the processor sent back, read by the server side.
  void ServerReads() {
    Bytes plain = trp_.TakeToServer();
    if (plain.empty()) return;
    FUZZ_CHECK(decoder_.Push(plain).has_value(), "the processor sent a malformed frame");
    for (;;) {
      auto frame = decoder_.Pop();
      FUZZ_CHECK(frame.has_value(), "the processor sent a malformed frame");
      if (!*frame) break;
      const Frame& fr = **frame;
      if (fr.type == static_cast<uint8_t>(InnerType::kCapabilities)) {
        FUZZ_CHECK(!capabilities_ && ParseCapabilities(fr.body).has_value(), "bad or repeated Capabilities");
        capabilities_ = true;
      } else {
        FUZZ_CHECK(fr.type == static_cast<uint8_t>(InnerType::kReceived), "the processor sent frame type " +
                                                                              std::to_string(fr.type));
        FUZZ_CHECK(trp_.held().has_value() && HexEncode(fr.body) == trp_.held()->digest_hex,
                   "Received names something other than the held package");
        FUZZ_CHECK(!received_, "Received sent twice");
        received_ = true;
      }
    }
  }

  Bytes Exporter() {
    auto e = channel_->ExportKeyingMaterial(kReleaseExporterLabel, 32);
    return e ? *e : Bytes(32);
  }

  Result<std::string> SignRelease(ByteView claims) {
    return ServerSign(*f_.world, kReleaseJwsType, claims);
  }

  // Counts an attempt on a held package; false once the input has made
  // kMaxHeldReleases of them.
  bool MayRelease() {
    if (trp_.state() != TrpSession::State::kHeld) return true;
    return held_releases_++ < kMaxHeldReleases;
  }

  // TrpSession::Release, checking that a refusal changes nothing.
  Result<Licence> TryRelease(std::string_view release, std::string_view receipt) {
    const TrpSession::State before = trp_.state();
    const std::string held = before == TrpSession::State::kHeld ? trp_.held()->digest_hex : "";
    auto licence = trp_.Release(release, receipt);
    if (!licence)
      FUZZ_CHECK(trp_.state() == before && (before != TrpSession::State::kHeld || trp_.held()->digest_hex == held),
                 "a refused release changed the session: " + licence.error().message);
    return licence;
  }

  void ReleaseValid() {
    const Package& pkg = f_.packages[selected_];
    const sealdrop::ReleaseClaims& c = pkg.release_claims;
    // (A killed channel exports nothing; the session has failed then.)
    auto exporter = channel_->ExportKeyingMaterial(kReleaseExporterLabel, 32);
    FUZZ_CHECK(!exporter || Base64UrlEncode(*exporter) == c.session, "the channel's exporter is not the fixture's");
    const std::string& jws = pkg.release_jws;
    const bool genuine = trp_.state() == TrpSession::State::kHeld && trp_.held()->digest_hex == c.package_digest &&
                         trp_.held()->manifest.package_id == c.package_id;
    auto licence = TryRelease(jws, f_.receipt_jws);
    if (genuine) FUZZ_CHECK(licence.has_value(), "a genuine release was refused: " + licence.error().message);
    if (licence) CheckLicence(*licence, c);
  }

  void ReleaseClaims(ByteView claims) {
    auto jws = SignRelease(claims);
    if (!jws) return;
    auto licence = TryRelease(*jws, f_.receipt_jws);
    if (!licence) return;
    auto c = ParseReleaseClaims(claims);
    FUZZ_CHECK(c.has_value(), "a release with unreadable claims was accepted");
    CheckLicence(*licence, *c);
  }

  void CheckLicence(const Licence& l, const sealdrop::ReleaseClaims& c) {
    FUZZ_CHECK(trp_.state() == TrpSession::State::kReleased, "a licence without the released state");
    const HeldPackage& h = *trp_.held();
    FUZZ_CHECK(c.package_digest == h.digest_hex && c.package_id == h.manifest.package_id &&
                   c.device_serial == f_.device.identity.device_serial && c.order_id == h.manifest.order_id &&
                   c.session == Base64UrlEncode(Exporter()) && c.receipt_id == f_.receipt_id,
               "a release was accepted whose claims do not match the held package, device, order or session");
    FUZZ_CHECK(l.package.digest_hex == h.digest_hex && l.receipt_id == c.receipt_id, "licence contents");
  }

  void Check() {
    const auto s = trp_.state();
    FUZZ_CHECK((s == TrpSession::State::kFailed) == trp_.error().has_value(), "state and error disagree");
    if (s == TrpSession::State::kFailed &&
        (failed_from_ == TrpSession::State::kReceiving || failed_from_ == TrpSession::State::kHeld))
      FUZZ_CHECK(staging_.discarded && staging_.data.empty(), "a failed download left staged bytes");
    if (s != TrpSession::State::kHeld && s != TrpSession::State::kReleased) {
      FUZZ_CHECK(!received_ || s == TrpSession::State::kFailed, "Received without a held package");
      return;
    }
    FUZZ_CHECK(trp_.held().has_value() && staging_.finished, "held without a finished staging");
    const HeldPackage& h = *trp_.held();
    bool known = false;
    for (const Package& p : f_.packages) known |= p.jws == h.manifest_jws;
    FUZZ_CHECK(known, "a held manifest the server never signed");
    const Bytes delivered = Delivered();
    FUZZ_CHECK(h.size == delivered.size(), "held size differs from the bytes delivered");
    auto prefix = ParsePackagePrefix(delivered);
    FUZZ_CHECK(prefix && *prefix && (*prefix)->manifest_jws == h.manifest_jws, "held package's prefix");
    const uint64_t offset = (*prefix)->payload_offset;
    PackageDigest digest = PackageDigest::For(offset, h.manifest);
    digest.Update(delivered);
    auto d = digest.Final();
    FUZZ_CHECK(d.has_value() && HexEncode(*d) == h.digest_hex, "held digest is not the digest of what was delivered");
    Bytes stored = delivered;
    if (h.manifest.kind == "elf") {
      stored.assign(delivered.begin() + offset, delivered.end());
      Bytes trailer = EncodeElfTrailer(h.manifest_jws);
      stored.insert(stored.end(), trailer.begin(), trailer.end());
    }
    FUZZ_CHECK(staging_.data == stored, "the staged file is not the delivered package in its stored layout");
  }

  const Fixture& f_;
  const bool genuine_peer_;
  testing::MemoryStaging staging_;
  testing::PlainChannel* channel_ = nullptr;  // owned by trp_
  TrpSession trp_;
  FrameDecoder decoder_;
  Bytes pending_;  // frames written but not yet delivered (kHold)
  bool close_pending_ = false, closed_ = false;
  size_t selected_ = 0;
  int held_releases_ = 0;
  uint64_t cursor_ = 0;
  std::vector<std::pair<uint8_t, Bytes>> written_;  // every frame the server wrote
  bool capabilities_ = false, received_ = false, error_reported_ = false;
  TrpSession::State failed_from_ = TrpSession::State::kIdle;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)Fix();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  OpReader in(data, size);
  Deep deep((in.U8() & 1) == 1);
  deep.Handshake();
  if (deep.failed()) return 0;
  for (int steps = 0; !in.empty() && steps < 256; ++steps) deep.Step(in);
  return 0;
}
