// 'sealdrop inspect': what a stored package is, read without any key.
//
// Reads a package of either layout (package/package_file.h), parses its
// manifest, and checks the manifest signature against a server certificate
// when one is known (the one the client verified at its last connection,
// SEALDROP_HOME/server.pem, or --cert). For a protected ELF it also reads the
// plaintext tables (package/elf.h): the loader, the needed libraries, the
// imported symbols with their versions, and every section with whether it is
// encrypted and, if not, why; and it recomputes the hash of the plaintext
// parts and compares it with the signed manifest. Nothing here can decrypt.
//
// The package is the host's own file and may be hostile; every parser used
// here is the hardened one the processor uses.
//
// Thread safety: stateless.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "pki/cert.h"

namespace sealdrop {

// `server_cert` is the certificate whose key should have signed the
// manifest, if known. Returns the report as JSON (documented in
// docs/operations.md); fails only if the file is not a package at all.
Result<nlohmann::json> InspectPackage(int fd, const std::optional<Certificate>& server_cert);

// The same report for a terminal.
std::string FormatInspection(const nlohmann::json& report);

}  // namespace sealdrop
