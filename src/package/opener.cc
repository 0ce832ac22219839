#include "package/opener.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "crypto/hpke.h"
#include "crypto/jws.h"
#include "package/chunked.h"

namespace sealdrop {

Result<Manifest> VerifyManifest(std::string_view jws, const EcPublicKey& server_key,
                                const Recipient& me) {
  SEALDROP_ASSIGN(Bytes payload, JwsVerifyCompact(jws, server_key, kManifestJwsType));
  SEALDROP_ASSIGN(Manifest m, ParseManifest(payload));
  if (m.server_key_id != server_key.KeyId())
    return Fail(ErrorCode::kCryptoFailure, "the manifest names another server key");
  if (m.device_serial != me.device_serial || m.recipient_key_id != me.key_id)
    return Fail(ErrorCode::kRefused, "this package was sealed for another processor");
  return m;
}

Result<SecretBytes> UnwrapContentKey(const Manifest& m, const EcPrivateKey& wrap_key) {
  auto kx = HpkeOpen(wrap_key, m.envelope_enc, EnvelopeInfo(), EnvelopeAad(m), m.envelope_wrapped_key);
  if (!kx || kx->size() != kAes256KeySize)
    return Fail(ErrorCode::kCryptoFailure, "the package key cannot be unwrapped by this processor");
  return std::move(*kx);
}

Status DecryptPayload(int fd, uint64_t payload_offset, const Manifest& m, const SecretBytes& kx,
                      const std::function<Status(ByteView)>& sink) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Fail(ErrorCode::kIo, "cannot stat the package");
  if (static_cast<uint64_t>(st.st_size) != payload_offset + m.payload_size)
    return Fail(ErrorCode::kMalformed, "the package is truncated or has trailing bytes");
  SEALDROP_ASSIGN(auto opener, ChunkOpener::Create(kx, m.nonce_prefix, m.plaintext_size));
  uint64_t offset = payload_offset;
  Bytes chunk;
  while (!opener.done()) {
    chunk.resize(opener.next_sealed_size());
    size_t done = 0;
    while (done < chunk.size()) {
      ssize_t r = ::pread(fd, chunk.data() + done, chunk.size() - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return Fail(ErrorCode::kMalformed, "the package is truncated");
      done += static_cast<size_t>(r);
    }
    offset += chunk.size();
    SEALDROP_TRY(opener.OpenNext(chunk));
    SEALDROP_TRY(sink(chunk));
  }
  SecureWipe(chunk.data(), chunk.size());
  return Ok();
}

}  // namespace sealdrop
