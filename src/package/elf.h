// Reading the ELF programs sealdrop protects.
//
// Just enough of ELF64 little-endian (the System V gABI and the GNU
// extensions for symbol versions) to do three things:
//   - decide which bytes of a program are encrypted and which stay plaintext
//     (ProtectedRanges; the rules are in docs/package-format.md);
//   - refuse programs that would need a page writable and executable
//     (CheckNoWritableCode);
//   - show a program's imports without any key (sealdrop inspect);
//   - refuse programs whose dynamic loader could be sent to a library the
//     host chooses (CheckLibrarySearchPaths).
//
// ParseElf treats its input as hostile: a stored package is in the host's
// hands. Every offset, size, count, entry size and string index is checked
// against the file before it is used, and any inconsistency is kMalformed
// with one sentence naming what is wrong; the parser never reads outside
// `file`. Sizes are capped (kMaxElf*) so a crafted header cannot make it
// allocate without bound. Section data is read through section headers, which
// sealdrop requires (a program without them cannot be classified).
//
// Thread safety: stateless functions over caller-owned bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/error.h"

namespace sealdrop {

inline constexpr size_t kMaxElfSections = 4096;
inline constexpr size_t kMaxElfSegments = 256;
inline constexpr size_t kMaxElfSymbols = 1 << 20;

struct ElfSegment {
  uint32_t type = 0;   // PT_*
  uint32_t flags = 0;  // PF_R | PF_W | PF_X
  uint64_t offset = 0;
  uint64_t file_size = 0;
  uint64_t vaddr = 0;
  uint64_t mem_size = 0;
};

struct ElfSection {
  std::string name;
  uint32_t type = 0;   // SHT_*
  uint64_t flags = 0;  // SHF_*
  uint64_t addr = 0;
  uint64_t offset = 0;
  uint64_t size = 0;   // bytes in the file (0 for SHT_NOBITS)
  uint32_t link = 0;
  uint64_t entry_size = 0;
};

struct ElfSymbol {
  std::string name;
  std::string version;  // "GLIBC_2.34"; empty if unversioned
  uint8_t binding = 0;  // STB_*
  uint8_t type = 0;     // STT_*
};

// One DT_RPATH or DT_RUNPATH entry: a colon-separated list of directories
// the dynamic loader searches for the libraries in DT_NEEDED.
struct ElfSearchPath {
  bool runpath = false;  // DT_RUNPATH; DT_RPATH otherwise
  std::string value;
  std::string tag() const { return runpath ? "DT_RUNPATH" : "DT_RPATH"; }
};

struct ElfImage {
  uint16_t type = 0;     // ET_EXEC or ET_DYN
  uint16_t machine = 0;  // EM_*
  uint64_t entry = 0;
  uint64_t header_size = 0;   // e_ehsize
  uint64_t phdr_offset = 0, phdr_size = 0;  // the program header table's bytes
  uint64_t shdr_offset = 0, shdr_size = 0;  // the section header table's bytes
  uint32_t shstrndx = 0;
  std::vector<ElfSegment> segments;
  std::vector<ElfSection> sections;  // index = section number

  std::string interpreter;  // PT_INTERP; empty for a static program
  bool is_dynamic = false;  // has a .dynamic section
  bool is_pie = false;      // ET_DYN with DF_1_PIE or an interpreter
  std::vector<std::string> needed;  // DT_NEEDED, in order
  std::string soname, rpath, runpath;  // the last DT_RPATH and DT_RUNPATH (for inspect)
  // Every DT_RPATH and DT_RUNPATH entry in table order: the loader reads the
  // last of each, but a check must see all of them.
  std::vector<ElfSearchPath> search_paths;
  bool text_relocations = false;  // DT_TEXTREL or DF_TEXTREL
  std::vector<ElfSymbol> imports;  // undefined .dynsym entries
  size_t exports = 0;              // defined global or weak .dynsym entries
};

Result<ElfImage> ParseElf(ByteView file);

// True if `head` starts with the ELF magic.
bool LooksLikeElf(ByteView head);

// Whether a section's bytes are encrypted in a protected ELF, and why not
// when they are not (for docs and inspect).
struct SectionRule {
  bool encrypted = false;
  std::string reason;  // for plaintext sections: what reads them before the program runs
};
SectionRule ClassifySection(const ElfImage& image, size_t index);

struct FileRange {
  uint64_t offset = 0;
  uint64_t size = 0;
  friend bool operator==(const FileRange&, const FileRange&) = default;
};

// The encrypted ranges of the file: every encrypted section's bytes, with
// sections that touch merged into one range, in file order. Fails if an
// encrypted section overlaps a plaintext section, the ELF header or a header
// table (the file could not be both protected and loadable), or if nothing
// would be encrypted.
Result<std::vector<FileRange>> ProtectedRanges(const ElfImage& image, uint64_t file_size);

// Refuses a program that would need a writable and executable mapping: a
// loadable segment both writable and executable, an executable or missing
// PT_GNU_STACK (the kernel then makes the stack executable), or text
// relocations (the loader would make code writable to patch it).
Status CheckNoWritableCode(const ElfImage& image);

// Refuses a program that could make the dynamic loader, inside the
// processor, map a library from a directory the host controls: the library's
// constructors would run in the decrypted process and read its memory.
// Refused: a DT_RPATH or DT_RUNPATH directory that is relative or empty (the
// loader resolves it against the working directory the host picks for
// 'run'), that uses $ORIGIN, $LIB or $PLATFORM (expanded by the loader), that
// has '.' or '..' components, or that lies under a directory anyone may
// write (/tmp, /var/tmp, /dev/shm, /run/user, /home ...); a DT_NEEDED entry
// with a '/' that is relative or lies under such a place; an interpreter path
// of the same kinds. This looks only at the file: whether the directories are
// root-owned on the processor's machine is checked when the program runs
// (trp/runner.cc).
Status CheckLibrarySearchPaths(const ElfImage& image);

// The directories (and, for DT_NEEDED entries and the interpreter, files)
// the loader of this program may read beyond the system's defaults: each
// DT_RPATH/DT_RUNPATH directory, each absolute DT_NEEDED path, the
// interpreter. Meaningful only after CheckLibrarySearchPaths succeeded.
struct LoaderPath {
  std::string path;
  std::string what;  // "DT_RUNPATH entry \"/opt/x/lib\"", for messages
};
std::vector<LoaderPath> LoaderPaths(const ElfImage& image);

}  // namespace sealdrop
