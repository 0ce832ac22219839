#include "protocol/trp_messages.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sealdrop {
namespace {
using nlohmann::json;

template <typename M>
FrameView Frame(const Bytes& body) {
  return FrameView{static_cast<uint8_t>(M::kType), body};
}

// The bytes each end built by hand before the codecs, spelled out: the
// codecs must produce exactly these, so hosts and processors of either age
// interoperate.
TEST(TrpMessagesWire, ReleaseBytesAreUnchanged) {
  TrpRelease m{.release = "r.r.r", .receipt = "p.p.p"};
  EXPECT_EQ(AsString(Encode(m)), R"({"receipt":"p.p.p","release":"r.r.r"})");
  // As protocol/host_session.cc built it.
  json legacy = {{"release", m.release}, {"receipt", m.receipt}};
  EXPECT_EQ(AsString(Encode(m)), legacy.dump());
}

TEST(TrpMessagesWire, RunAndOpenBytesAreUnchanged) {
  TrpRun run{.args = {"-v", "x y"}, .cwd = "/home/u", .env = {"LANG=C"}};
  EXPECT_EQ(AsString(Encode(run)), R"({"args":["-v","x y"],"cwd":"/home/u","env":["LANG=C"]})");
  TrpOpen open{.with = true, .program = run};
  EXPECT_EQ(AsString(Encode(open)), R"({"args":["-v","x y"],"cwd":"/home/u","env":["LANG=C"],"with":true})");
  // As cli/sealdrop_main.cc built them.
  json legacy = {{"args", run.args}, {"cwd", run.cwd}, {"env", run.env}};
  EXPECT_EQ(AsString(Encode(run)), legacy.dump());
  legacy["with"] = false;
  EXPECT_EQ(AsString(Encode(TrpOpen{.with = false, .program = run})), legacy.dump());
}

TEST(TrpMessagesWire, ProcessorRepliesAreUnchanged) {
  TrpDownloadComplete dc{.package_digest = "ab12", .size = 70000, .package_id = "pid", .name = "notes", .version = "1.0"};
  EXPECT_EQ(AsString(Encode(dc)),
            R"({"name":"notes","package_digest":"ab12","package_id":"pid","size":70000,"version":"1.0"})");
  TrpPackageEnd end{.package_id = "pid", .name = "notes", .version = "1.0", .kind = "data", .size = 5,
                    .package_digest = "ab12"};
  EXPECT_EQ(AsString(Encode(end)),
            R"({"kind":"data","name":"notes","package_digest":"ab12","package_id":"pid","size":5,"version":"1.0"})");
  TrpLicenceList list{{{.package_id = "p", .name = "n", .version = "1", .kind = "elf", .receipt_id = "r",
                        .size = 9, .released_at = 1700000000}}};
  EXPECT_EQ(AsString(Encode(list)),
            R"({"licences":[{"kind":"elf","name":"n","package_id":"p","receipt_id":"r","released_at":1700000000,"size":9,"version":"1"}]})");
  EXPECT_EQ(AsString(Encode(TrpLicenceList{})), R"({"licences":[]})");
  TrpInfo info{.serial = "s", .backend = "software", .identity_key_id = "i", .keywrap_key_id = "k", .vendor_roots = 2};
  EXPECT_EQ(AsString(Encode(info)),
            R"({"backend":"software","identity_key_id":"i","keywrap_key_id":"k","serial":"s","vendor_roots":2})");
  EXPECT_EQ(AsString(Encode(TrpExit{.exit_code = 3})), R"({"exit_code":3})");
  EXPECT_EQ(AsString(Encode(TrpExit{.exit_code = 0, .signal = 9})), R"({"signal":9})");
  // The whole frame: u8 type, u32 length, body.
  Bytes frame = EncodeTrpFrame(TrpExit{.exit_code = 3});
  Bytes expected = {0x86, 0, 0, 0, 15};
  for (char c : std::string_view(R"({"exit_code":3})")) expected.push_back(static_cast<uint8_t>(c));
  EXPECT_EQ(frame, expected);
}

// Today's bytes, as older peers send them, decode to the expected values.
TEST(TrpMessagesWire, DecodesTodaysBytes) {
  Bytes release = ToBytes(R"({"receipt":"p.p.p","release":"r.r.r"})");
  auto r = ParseTrpRelease(Frame<TrpRelease>(release));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->release, "r.r.r");
  EXPECT_EQ(r->receipt, "p.p.p");
  // The older release seed of the fuzz corpus lists its members the other way round.
  Bytes swapped = ToBytes(R"({"release":"a","receipt":"b"})");
  ASSERT_TRUE(ParseTrpRelease(Frame<TrpRelease>(swapped)).has_value());

  Bytes open = ToBytes(R"({"with":false})");
  auto o = ParseTrpOpen(Frame<TrpOpen>(open));
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(o->with);
  EXPECT_TRUE(o->program.args.empty());

  Bytes run = ToBytes(R"({"args":["-v"],"cwd":"/","env":["LANG=C"]})");
  auto ru = ParseTrpRun(Frame<TrpRun>(run));
  ASSERT_TRUE(ru.has_value());
  EXPECT_EQ(ru->args, std::vector<std::string>{"-v"});
  EXPECT_EQ(ru->cwd, "/");
  EXPECT_EQ(ru->env, std::vector<std::string>{"LANG=C"});

  Bytes sig = ToBytes(R"({"signal":15})");
  auto e = ParseTrpExit(Frame<TrpExit>(sig));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->signal, 15);
  Bytes code = ToBytes(R"({"exit_code":0})");
  auto c = ParseTrpExit(Frame<TrpExit>(code));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(c->signal, 0);
}

// Encode then parse gives back the message, for every codec.
TEST(TrpMessages, RoundTrips) {
  TrpPackageEnd end{.package_id = "pid", .name = "notes", .version = "1.0", .kind = "data", .size = 5,
                    .package_digest = "ab12"};
  Bytes b = Encode(end);
  auto e = ParseTrpPackageEnd(Frame<TrpPackageEnd>(b));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->name, "notes");
  EXPECT_EQ(e->kind, "data");
  EXPECT_EQ(e->size, 5u);
  TrpDownloadComplete dc{.package_digest = "ab", .size = 1ull << 40, .package_id = "p", .name = "n", .version = "v"};
  Bytes d = Encode(dc);
  auto dp = ParseTrpDownloadComplete(Frame<TrpDownloadComplete>(d));
  ASSERT_TRUE(dp.has_value());
  EXPECT_EQ(dp->size, 1ull << 40);
  TrpLicenceList list{{{.package_id = "p", .name = "n", .version = "1", .kind = "elf", .receipt_id = "r",
                        .size = 9, .released_at = -5}}};
  Bytes l = Encode(list);
  auto lp = ParseTrpLicenceList(Frame<TrpLicenceList>(l));
  ASSERT_TRUE(lp.has_value());
  ASSERT_EQ(lp->licences.size(), 1u);
  EXPECT_EQ(lp->licences[0].released_at, -5);
  TrpInfo info{.serial = "s", .backend = "tpm", .identity_key_id = "i", .keywrap_key_id = "k", .vendor_roots = 3};
  Bytes i = Encode(info);
  auto ip = ParseTrpInfo(Frame<TrpInfo>(i));
  ASSERT_TRUE(ip.has_value());
  EXPECT_EQ(ip->backend, "tpm");
  EXPECT_EQ(ip->vendor_roots, 3u);
}

// The negative cases every Parse must refuse, given one valid body.
template <typename M, typename ParseFn>
void ExpectRefusesDamage(ParseFn parse, const M& valid, const char* member, bool required = true) {
  const Bytes good = Encode(valid);
  ASSERT_TRUE(parse(Frame<M>(good)).has_value());
  // Truncated: every strict prefix.
  for (size_t n = 0; n < good.size(); ++n) {
    Bytes cut(good.begin(), good.begin() + static_cast<ptrdiff_t>(n));
    auto r = parse(Frame<M>(cut));
    ASSERT_FALSE(r.has_value()) << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  }
  // Flipped: the opening and the closing brace.
  for (size_t at : {size_t{0}, good.size() - 1}) {
    Bytes flipped = good;
    flipped[at] ^= 0x01;
    auto r = parse(Frame<M>(flipped));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  }
  // Flipped inside a required member's name: the member is missing.
  if (required) {
    std::string text = ToString(good);
    size_t at = text.find(std::string("\"") + member + "\"");
    ASSERT_NE(at, std::string::npos);
    text[at + 1] ^= 0x20;
    auto r = parse(Frame<M>(ToBytes(text)));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  }
  // Trailing bytes after the object.
  {
    Bytes trailing = good;
    trailing.push_back('x');
    auto r = parse(Frame<M>(trailing));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
    Bytes two = good;
    two.insert(two.end(), good.begin(), good.end());
    EXPECT_FALSE(parse(Frame<M>(two)).has_value());
  }
  // Oversize: above the frame type's limit.
  {
    Bytes big = good;
    big.insert(big.end() - 1, *TrpMaxBody(static_cast<uint8_t>(M::kType)), ' ');
    auto r = parse(Frame<M>(big));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kTooLarge);
  }
  // Wrong frame type.
  {
    FrameView other{static_cast<uint8_t>(M::kType == TrpType::kError ? TrpType::kExit : TrpType::kError), good};
    auto r = parse(other);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  }
  // Wrong JSON type for the member.
  {
    json j = json::parse(AsString(good));
    j[member] = json::array({1});
    auto r = parse(Frame<M>(ToBytes(j.dump())));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  }
  // Not an object at all.
  {
    Bytes list = ToBytes("[]");
    EXPECT_FALSE(parse(Frame<M>(list)).has_value());
  }
}

TEST(TrpMessagesNegative, Release) {
  ExpectRefusesDamage(ParseTrpRelease, TrpRelease{.release = "r.r.r", .receipt = "p.p.p"}, "release");
  ExpectRefusesDamage(ParseTrpRelease, TrpRelease{.release = "r.r.r", .receipt = "p.p.p"}, "receipt");
  // A JWS above its bound, inside a frame that fits.
  Bytes long_jws = Encode(TrpRelease{.release = std::string(kMaxTrpJwsSize + 1, 'a'), .receipt = "p"});
  auto r = ParseTrpRelease(Frame<TrpRelease>(long_jws));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
}

TEST(TrpMessagesNegative, Run) {
  TrpRun run{.args = {"a"}, .cwd = "/", .env = {"LANG=C"}};
  // Every member of a run request is optional: only its type is checked.
  ExpectRefusesDamage(ParseTrpRun, run, "args", /*required=*/false);
  ExpectRefusesDamage(ParseTrpRun, run, "cwd", /*required=*/false);
  Bytes mixed = ToBytes(R"({"args":["a",1]})");
  EXPECT_FALSE(ParseTrpRun(Frame<TrpRun>(mixed)).has_value());
}

TEST(TrpMessagesNegative, Open) {
  TrpOpen open{.with = true, .program = {.args = {"a"}, .cwd = "/", .env = {}}};
  ExpectRefusesDamage(ParseTrpOpen, open, "with");
  ExpectRefusesDamage(ParseTrpOpen, open, "env", /*required=*/false);
  Bytes no_with = ToBytes(R"({"args":[]})");
  EXPECT_FALSE(ParseTrpOpen(Frame<TrpOpen>(no_with)).has_value());
}

TEST(TrpMessagesNegative, DownloadComplete) {
  TrpDownloadComplete dc{.package_digest = "ab", .size = 1, .package_id = "p", .name = "n", .version = "v"};
  for (const char* member : {"package_digest", "size", "package_id", "name", "version"})
    ExpectRefusesDamage(ParseTrpDownloadComplete, dc, member);
  Bytes negative = ToBytes(R"({"name":"n","package_digest":"ab","package_id":"p","size":-1,"version":"v"})");
  EXPECT_FALSE(ParseTrpDownloadComplete(Frame<TrpDownloadComplete>(negative)).has_value());
}

TEST(TrpMessagesNegative, PackageEnd) {
  TrpPackageEnd end{.package_id = "p", .name = "n", .version = "v", .kind = "data", .size = 1, .package_digest = "ab"};
  for (const char* member : {"package_id", "name", "version", "kind", "size", "package_digest"})
    ExpectRefusesDamage(ParseTrpPackageEnd, end, member);
  // A name beyond the field limit.
  end.name = std::string(kMaxFieldSize + 1, 'n');
  Bytes long_name = Encode(end);
  EXPECT_FALSE(ParseTrpPackageEnd(Frame<TrpPackageEnd>(long_name)).has_value());
}

TEST(TrpMessagesNegative, LicenceList) {
  TrpLicenceList list{{{.package_id = "p", .name = "n", .version = "1", .kind = "elf", .receipt_id = "r",
                        .size = 9, .released_at = 1}}};
  ExpectRefusesDamage(ParseTrpLicenceList, list, "licences");
  Bytes bad_entry = ToBytes(R"({"licences":[{"kind":"elf","name":"n","package_id":"p","receipt_id":"r","released_at":"x","size":9,"version":"1"}]})");
  EXPECT_FALSE(ParseTrpLicenceList(Frame<TrpLicenceList>(bad_entry)).has_value());
  Bytes not_object = ToBytes(R"({"licences":[1]})");
  EXPECT_FALSE(ParseTrpLicenceList(Frame<TrpLicenceList>(not_object)).has_value());
}

TEST(TrpMessagesNegative, Info) {
  TrpInfo info{.serial = "s", .backend = "b", .identity_key_id = "i", .keywrap_key_id = "k", .vendor_roots = 1};
  for (const char* member : {"serial", "backend", "identity_key_id", "keywrap_key_id", "vendor_roots"})
    ExpectRefusesDamage(ParseTrpInfo, info, member);
}

TEST(TrpMessagesNegative, Exit) {
  ExpectRefusesDamage(ParseTrpExit, TrpExit{.exit_code = 4}, "exit_code");
  ExpectRefusesDamage(ParseTrpExit, TrpExit{.exit_code = 0, .signal = 9}, "signal");
  for (const char* body : {R"({"signal":0})", R"({"signal":-3})", R"({"exit_code":4294967296})", "{}"}) {
    Bytes b = ToBytes(body);
    EXPECT_FALSE(ParseTrpExit(Frame<TrpExit>(b)).has_value()) << body;
  }
}

}  // namespace
}  // namespace sealdrop
