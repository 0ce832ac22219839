// Opening a package inside the processor.
//
// VerifyManifest checks the manifest JWS against the server key the
// processor trusts for it (from the inner handshake at download time, kept in
// the licence), then the recipient: this device serial and this key-wrap key.
// UnwrapContentKey opens the HPKE envelope. DecryptPayload streams the
// payload chunk by chunk into a sink; on any failure the sink has received
// only authenticated chunks before the bad one, so a caller that must not
// expose partial plaintext (the ELF runner) writes into a private buffer and
// discards it on error.
//
// Thread safety: stateless functions.
#pragma once

#include <functional>

#include "base/bytes.h"
#include "base/error.h"
#include "crypto/ec.h"
#include "package/manifest.h"

namespace sealdrop {

struct Recipient {
  std::string device_serial;
  std::string key_id;  // KeyId() of the key-wrap key
};

Result<Manifest> VerifyManifest(std::string_view manifest_jws, const EcPublicKey& server_key,
                                const Recipient& me);

Result<SecretBytes> UnwrapContentKey(const Manifest& manifest, const EcPrivateKey& wrap_key);

// Reads manifest.payload_size bytes from fd at payload_offset (pread), checks
// that the file ends there, and hands each opened chunk to sink.
Status DecryptPayload(int fd, uint64_t payload_offset, const Manifest& manifest,
                      const SecretBytes& kx, const std::function<Status(ByteView)>& sink);

}  // namespace sealdrop
