#include "crypto/ossl_internal.h"

#include <openssl/pem.h>

#include <cstdio>
#include <cstdlib>

namespace sealdrop {

std::string OsslErrorString() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long err = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    if ((flags & ERR_TXT_STRING) && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ")";
    }
  }
  if (out.empty()) out = "no OpenSSL error recorded";
  return out;
}

Error OsslError(ErrorCode code, std::string_view what) {
  return Error{code, std::string(what) + ": " + OsslErrorString()};
}

void OsslFatal(std::string_view what) {
  std::string errors = OsslErrorString();
  std::fprintf(stderr, "sealdrop: fatal OpenSSL failure: %.*s: %s\n",
               static_cast<int>(what.size()), what.data(), errors.c_str());
  std::abort();
}

std::string EncodePem(std::string_view label, ByteView der) {
  UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  std::string name(label);
  if (!bio ||
      PEM_write_bio(bio.get(), name.c_str(), "", der.data(), static_cast<long>(der.size())) <= 0) {
    ERR_clear_error();
    return {};
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace sealdrop
