// PEM, time and name helpers shared by the pki .cc files.
#include <arpa/inet.h>
#include <openssl/pem.h>

#include <ctime>

#include "base/encoding.h"
#include "pki/pki_internal.h"

namespace sealdrop::pki_internal {
namespace {

struct PemParts {
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  ~PemParts() {
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
  }
};

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsDnsName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t start = 0;
  while (start <= host.size()) {
    size_t dot = host.find('.', start);
    std::string_view label =
        host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!IsAlnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

}  // namespace

std::string Printable(std::string_view text, size_t max_size) {
  std::string out;
  for (char c : text.substr(0, max_size)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > max_size) out += "...";
  return out;
}

Result<std::vector<PemBlock>> ParsePemBlocks(std::string_view text, std::string_view what,
                                             size_t max_der) {
  if (text.size() > kMaxPemFileSize)
    return Fail(ErrorCode::kTooLarge, std::string(what) + " is larger than the limit of " +
                                          std::to_string(kMaxPemFileSize) + " bytes");
  UniquePtr<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (!bio) return std::unexpected(OsslError(ErrorCode::kInternal, "BIO_new_mem_buf failed"));

  std::vector<PemBlock> blocks;
  for (;;) {
    PemParts parts;
    ERR_set_mark();
    if (PEM_read_bio(bio.get(), &parts.name, &parts.header, &parts.data, &parts.len) != 1) {
      unsigned long err = ERR_peek_last_error();
      ERR_pop_to_mark();
      // PEM_read_bio reports the end of the input as "no start line".
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) break;
      return Fail(
          ErrorCode::kMalformed,
          std::string(what) + " is not valid PEM (a block is cut off or its base64 is damaged)");
    }
    ERR_pop_to_mark();
    if (parts.header != nullptr && parts.header[0] != '\0')
      return Fail(ErrorCode::kMalformed,
                  std::string(what) + " has PEM headers (encrypted PEM is not supported)");
    if (parts.len <= 0)
      return Fail(ErrorCode::kMalformed, std::string(what) + " has an empty PEM block");
    if (static_cast<size_t>(parts.len) > max_der)
      return Fail(ErrorCode::kTooLarge, std::string(what) + " has a PEM block larger than " +
                                            std::to_string(max_der) + " bytes");
    blocks.push_back(PemBlock{parts.name, Bytes(parts.data, parts.data + parts.len)});
  }
  if (blocks.empty())
    return Fail(ErrorCode::kMalformed,
                std::string(what) + " is not in PEM format (no \"-----BEGIN\" line found)");
  return blocks;
}

TimePoint FromAsn1Time(const ASN1_TIME* time) {
  struct tm tm {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return TimePoint{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

UniquePtr<ASN1_TIME> ToAsn1Time(TimePoint time) {
  return UniquePtr<ASN1_TIME>(ASN1_TIME_set(nullptr, std::chrono::system_clock::to_time_t(time)));
}

std::string FormatUtc(TimePoint time) {
  time_t t = std::chrono::system_clock::to_time_t(time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

std::string NameEntry(const X509_NAME* name, int nid) {
  if (name == nullptr) return {};
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, data);
  if (n < 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

int CountNameEntries(const X509_NAME* name, int nid) {
  int count = 0;
  for (int pos = -1; (pos = X509_NAME_get_index_by_NID(name, nid, pos)) >= 0;) ++count;
  return count;
}

std::string SerialHexOf(const X509* cert) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  // OpenSSL keeps the magnitude without leading zero bytes (it rejects
  // non-minimal encodings), so equal serials always give equal strings.
  ByteView magnitude(ASN1_STRING_get0_data(serial),
                     static_cast<size_t>(ASN1_STRING_length(serial)));
  std::string hex = HexEncode(magnitude);
  if (hex.empty()) hex = "00";
  return ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER ? "-" + hex : hex;
}

std::optional<uint32_t> KeyUsageOf(const X509* cert) {
  // Both getters only fill OpenSSL's internal, lock-protected extension cache.
  X509* x = const_cast<X509*>(cert);
  if ((X509_get_extension_flags(x) & EXFLAG_KUSAGE) == 0) return std::nullopt;
  return X509_get_key_usage(x);
}

Status CheckCommonName(std::string_view cn) {
  if (cn.empty() || cn.size() > 64)
    return Fail(ErrorCode::kInvalidArgument, "the common name must be 1 to 64 characters long");
  for (char c : cn)
    if (c < 0x20 || c > 0x7e)
      return Fail(ErrorCode::kInvalidArgument,
                  "the common name may contain only printable ASCII characters");
  if (cn.front() == ' ' || cn.back() == ' ')
    return Fail(ErrorCode::kInvalidArgument, "the common name must not start or end with a space");
  return Ok();
}

Status CheckDeviceSerial(std::string_view serial) {
  if (serial.empty() || serial.size() > 64)
    return Fail(ErrorCode::kInvalidArgument, "the device serial must be 1 to 64 characters long");
  for (char c : serial)
    if (!IsAlnum(c) && c != '-' && c != '.' && c != ':')
      return Fail(ErrorCode::kInvalidArgument,
                  "the device serial may contain only letters, digits, '-', '.' and ':'");
  return Ok();
}

Status CheckHost(std::string_view host) {
  std::string h(host);
  unsigned char buf[16];
  if (inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1)
    return Ok();
  if (IsDnsName(host)) return Ok();
  return Fail(ErrorCode::kInvalidArgument,
              "\"" + Printable(host) + "\" is neither a DNS name nor an IP address");
}

}  // namespace sealdrop::pki_internal

namespace sealdrop {
Status CheckDeviceSerial(std::string_view serial) { return pki_internal::CheckDeviceSerial(serial); }
}  // namespace sealdrop
