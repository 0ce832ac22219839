#include "ledger/version_order.h"

namespace sealdrop {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSeparator(char c) { return c == '.' || c == '-' || c == '+' || c == '_' || c == '~'; }

// Skips separators, then returns the next run of digits or of other
// characters; empty at the end.
std::string_view NextRun(std::string_view s, size_t* pos) {
  size_t start = *pos;
  while (start < s.size() && IsSeparator(s[start])) ++start;
  size_t end = start;
  if (end < s.size()) {
    bool digits = IsDigit(s[end]);
    while (end < s.size() && !IsSeparator(s[end]) && IsDigit(s[end]) == digits) ++end;
  }
  *pos = end;
  return s.substr(start, end - start);
}

// Numbers of any length, without converting: strip leading zeros, then the
// longer is larger, then compare digit by digit.
int CompareDigitRuns(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a.front() == '0') a.remove_prefix(1);
  while (b.size() > 1 && b.front() == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  int c = a.compare(b);
  return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

}  // namespace

int CompareVersions(std::string_view a, std::string_view b) {
  size_t i = 0;
  size_t j = 0;
  while (true) {
    std::string_view ra = NextRun(a, &i);
    std::string_view rb = NextRun(b, &j);
    if (ra.empty() || rb.empty()) {
      if (!ra.empty()) return 1;
      if (!rb.empty()) return -1;
      return 0;
    }
    bool a_digits = IsDigit(ra.front());
    bool b_digits = IsDigit(rb.front());
    int c;
    if (a_digits && b_digits) {
      c = CompareDigitRuns(ra, rb);
    } else if (a_digits != b_digits) {
      // "1.0.1" against "1.0.beta": a number outranks a word at the same place.
      c = a_digits ? 1 : -1;
    } else {
      int raw = ra.compare(rb);
      c = raw < 0 ? -1 : (raw > 0 ? 1 : 0);
    }
    if (c != 0) return c;
  }
}

}  // namespace sealdrop
