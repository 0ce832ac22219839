#include "package/sealer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "crypto/aead.h"
#include "crypto/hpke.h"
#include "crypto/jws.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "base/encoding.h"
#include "base/unique_fd.h"
#include "package/chunked.h"
#include "package/package_file.h"
#include "package/protected_elf.h"

namespace sealdrop {

struct PackageSealer::Impl {
  UniqueFd fd;
  Manifest manifest;
  std::string manifest_jws;
  std::optional<ChunkSealer> chunks;
  bool prefix_sent = false;
  uint64_t next_chunk = 0;
  // kind "elf": the program mapped read-only, and the second sealing pass.
  void* map = MAP_FAILED;
  size_t map_size = 0;
  std::optional<ElfSealStream> elf;
  // The stored file checked against the catalogue (SealRequest::expected_*).
  std::string expected_sha256;
  std::optional<Sha256> file_hash;
  std::string what;  // names the file and the program in errors for the operator's log
  ~Impl() {
    if (map != MAP_FAILED) ::munmap(map, map_size);
  }
};

namespace {

Status FileHashMismatch(const PackageSealer::Impl& im) {
  return Fail(ErrorCode::kIo, im.what + " no longer matches the SHA-256 recorded when it was added; "
                                        "restore the file or publish the program again");
}

// Plans a protected ELF and runs the first sealing pass, which only learns
// the tags the manifest must carry.
Status PlanElf(PackageSealer::Impl& im, const SecretBytes& kx) {
  Manifest& m = im.manifest;
  if (m.plaintext_size == 0) return Fail(ErrorCode::kMalformed, "the program file is empty");
  im.map_size = static_cast<size_t>(m.plaintext_size);
  im.map = ::mmap(nullptr, im.map_size, PROT_READ, MAP_PRIVATE, im.fd.get(), 0);
  if (im.map == MAP_FAILED) return Fail(ErrorCode::kIo, std::string("cannot map the program file: ") + std::strerror(errno));
  ByteView file(static_cast<const uint8_t*>(im.map), im.map_size);
  SEALDROP_ASSIGN(ElfPlan plan, PlanProtectedElf(file));
  m.payload_suite = kElfSuiteName;
  m.payload_size = m.plaintext_size;
  m.plain_sha256 = plan.plain_sha256;
  SEALDROP_ASSIGN(ElfSealStream first, ElfSealStream::Create(file, plan.ranges, plan.plain_sha256, kx, m.nonce_prefix));
  Bytes scratch;
  scratch.reserve(kChunkSize);
  // The file is hashed alongside the first pass, a chunk per step, while its
  // pages are being read anyway.
  size_t hashed = 0;
  for (;;) {
    scratch.clear();
    SEALDROP_ASSIGN(bool more, first.Next(scratch, kChunkSize));
    if (im.file_hash && hashed < file.size()) {
      size_t n = std::min(file.size() - hashed, kChunkSize);
      im.file_hash->Update(file.subspan(hashed, n));
      hashed += n;
    }
    if (!more) break;
  }
  if (im.file_hash) {
    if (hashed < file.size()) im.file_hash->Update(file.subspan(hashed));
    if (HexEncode(im.file_hash->Final()) != im.expected_sha256) return FileHashMismatch(im);
    im.file_hash.reset();
  }
  for (size_t i = 0; i < plan.ranges.size(); ++i)
    m.ranges.push_back({plan.ranges[i].offset, plan.ranges[i].size, first.tags()[i]});
  SEALDROP_ASSIGN(ElfSealStream second, ElfSealStream::Create(file, plan.ranges, plan.plain_sha256, kx,
                                                              m.nonce_prefix, first.tags()));
  im.elf.emplace(std::move(second));
  return Ok();
}

}  // namespace

PackageSealer::PackageSealer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackageSealer::PackageSealer(PackageSealer&&) noexcept = default;
PackageSealer& PackageSealer::operator=(PackageSealer&&) noexcept = default;
PackageSealer::~PackageSealer() = default;

Result<PackageSealer> PackageSealer::Create(const SealRequest& req) {
  if (req.server_key == nullptr || !req.recipient_key)
    return Fail(ErrorCode::kInvalidArgument, "sealing needs a server key and a recipient key");
  auto impl = std::make_unique<Impl>();
  impl->fd.reset(::open(req.plaintext_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!impl->fd)
    return Fail(ErrorCode::kIo, "cannot open the program file " + req.plaintext_path.string() +
                                    ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(impl->fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return Fail(ErrorCode::kIo, "the program file " + req.plaintext_path.string() + " is not a regular file");
  impl->what = "the program file " + req.plaintext_path.string() + " of " + req.name + " " + req.version +
               " (id " + std::to_string(req.program_id) + ")";
  if (req.expected_size && static_cast<uint64_t>(st.st_size) != *req.expected_size)
    return Fail(ErrorCode::kIo, impl->what + " is " + std::to_string(st.st_size) + " bytes but was recorded as " +
                                    std::to_string(*req.expected_size) +
                                    "; restore the file or publish the program again");
  if (!req.expected_sha256.empty()) {
    impl->expected_sha256 = req.expected_sha256;
    impl->file_hash.emplace();
  }

  SecretBytes kx = RandomSecret(kAes256KeySize);
  Manifest& m = impl->manifest;
  m.package_id = RandomHexId(16);
  m.program_id = req.program_id;
  m.name = req.name;
  m.version = req.version;
  m.kind = req.kind;
  m.plaintext_size = static_cast<uint64_t>(st.st_size);
  m.nonce_prefix = RandomBytes(kChunkNoncePrefixSize);
  m.rights = req.rights;
  if (m.kind == "elf") {
    m.rights.export_plaintext = false;
    SEALDROP_TRY(PlanElf(*impl, kx));
  } else {
    m.payload_suite = kChunkSuiteName;
    m.chunk_size = kChunkSize;
    m.chunks = ChunkCount(m.plaintext_size);
    m.payload_size = SealedPayloadSize(m.plaintext_size);
  }
  m.device_serial = req.device_serial;
  m.recipient_key_id = req.recipient_key->KeyId();
  m.envelope_suite = kHpkeSuiteName;
  m.order_id = req.order_id;
  m.issued_at = req.issued_at;
  m.server_key_id = req.server_key->PublicKey().KeyId();

  SEALDROP_ASSIGN(HpkeSealed env, HpkeSeal(*req.recipient_key, EnvelopeInfo(), EnvelopeAad(m), kx));
  m.envelope_enc = std::move(env.enc);
  m.envelope_wrapped_key = std::move(env.ciphertext);

  SEALDROP_ASSIGN(impl->manifest_jws, JwsSign(*req.server_key, m.server_key_id, kManifestJwsType,
                                              AsBytes(SerializeManifest(m))));
  if (impl->manifest_jws.size() > kMaxManifestJwsSize)
    return Fail(ErrorCode::kTooLarge, "the manifest is too large");
  if (!impl->elf) {
    SEALDROP_ASSIGN(auto sealer, ChunkSealer::Create(kx, m.nonce_prefix, m.plaintext_size));
    impl->chunks.emplace(std::move(sealer));
  }
  return PackageSealer(std::move(impl));
}

uint64_t PackageSealer::total_size() const {
  return kPackagePrefixFixedSize + impl_->manifest_jws.size() + impl_->manifest.payload_size;
}
const Manifest& PackageSealer::manifest() const { return impl_->manifest; }
const std::string& PackageSealer::manifest_jws() const { return impl_->manifest_jws; }

Result<bool> PackageSealer::Next(Bytes& out) {
  Impl& im = *impl_;
  if (!im.prefix_sent) {
    Bytes prefix = EncodePackagePrefix(im.manifest_jws);
    out.insert(out.end(), prefix.begin(), prefix.end());
    im.prefix_sent = true;
    return true;
  }
  if (im.elf) return im.elf->Next(out, kChunkSize);
  if (im.chunks->done()) return false;
  // Read and seal in place at the end of `out`: no per-chunk buffer.
  size_t n = ChunkPlaintextSize(im.manifest.plaintext_size, im.next_chunk);
  size_t at = out.size();
  out.resize(at + n + kGcmTagSize);
  uint8_t* dst = out.data() + at;
  uint64_t offset = im.next_chunk * kChunkSize;
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(im.fd.get(), dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      out.resize(at);
      return Fail(ErrorCode::kIo, "the program file changed or could not be read while sealing");
    }
    done += static_cast<size_t>(r);
  }
  if (im.file_hash) {
    im.file_hash->Update(ByteView(dst, n));
    // Checked before the last chunk is sealed: a file that is not the one
    // recorded never makes a complete package.
    if (im.next_chunk + 1 == im.manifest.chunks) {
      bool same = HexEncode(im.file_hash->Final()) == im.expected_sha256;
      im.file_hash.reset();
      if (!same) {
        out.resize(at);
        return std::unexpected(FileHashMismatch(im).error());
      }
    }
  }
  SEALDROP_TRY(im.chunks->SealNextInPlace(std::span(dst, n + kGcmTagSize)));
  ++im.next_chunk;
  return true;
}

}  // namespace sealdrop
