// How program versions are ordered when a caller asks for "the newest".
//
// A version is split at the separators . - + _ ~ and wherever digits meet
// other characters. Digit runs compare as numbers of any length ("1.10" >
// "1.9", "010" == "10"), other runs compare bytewise, a number outranks a word
// in the same place ("1.0.1" > "1.0.beta"), and when one version runs out
// first the longer one is newer ("1.0.1" > "1.0"). Separators only split, so
// "1.0" and "1-0" rank the same; ties are broken by the caller, by which was
// added later.
//
// Thread safety: pure function.
#pragma once

#include <string_view>

namespace sealdrop {

// Negative if a is older than b, zero if they rank the same, positive if newer.
int CompareVersions(std::string_view a, std::string_view b);

}  // namespace sealdrop
