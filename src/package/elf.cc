#include "package/elf.h"

#include <elf.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>

#include "base/reader.h"

namespace sealdrop {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the ELF reader reads little-endian files on a little-endian host");

constexpr uint32_t kShtRelr = 19;  // SHT_RELR (gABI 2022), not in every <elf.h>

// Size arithmetic only (ranges of a file whose bytes are not at hand); every
// read of the file's bytes goes through SliceAt and a Reader (base/reader.h).
bool InFile(uint64_t offset, uint64_t size, uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}

bool Within(ByteView data, uint64_t offset, uint64_t size) {
  ByteView unused;
  return SliceAt(data, offset, size, &unused);
}

// A section's bytes. ReadHeaders refused any section with bytes outside the
// file; an empty one (SHT_NOBITS, or a size of 0) has none, wherever its
// offset points.
bool SectionBytes(ByteView file, const ElfSection& s, ByteView* out) {
  if (s.size == 0) {
    *out = {};
    return true;
  }
  return SliceAt(file, s.offset, s.size, out);
}

// One entry at `offset` in `data`, as stored (ELF64LE on this LE host).
template <typename T>
bool LoadAt(ByteView data, uint64_t offset, T* out) {
  ByteView raw;
  return SliceAt(data, offset, sizeof(T), &raw) && Reader(raw).ReadRaw(out);
}

Error Bad(std::string what) { return Error{ErrorCode::kMalformed, "the ELF file is malformed: " + what}; }

// A NUL-terminated string at `index` in a string table section.
Result<std::string> StringAt(ByteView file, const ElfSection& table, uint64_t index) {
  ByteView bytes;
  if (index >= table.size || !SectionBytes(file, table, &bytes))
    return std::unexpected(Bad("a string index points outside " + table.name));
  Reader r(bytes);
  std::string_view s;
  if (!r.Skip(static_cast<size_t>(index)) || !r.ReadCString(&s))
    return std::unexpected(Bad("a string in " + table.name + " is not terminated"));
  return std::string(s);
}

Result<const ElfSection*> LinkedTable(const ElfImage& image, const ElfSection& s, uint32_t want_type) {
  if (s.link == 0 || s.link >= image.sections.size())
    return std::unexpected(Bad(s.name + " links to a section that does not exist"));
  const ElfSection& t = image.sections[s.link];
  if (t.type != want_type) return std::unexpected(Bad(s.name + " links to a section of the wrong type"));
  return &t;
}

Status ReadHeaders(ByteView file, ElfImage& img) {
  Elf64_Ehdr eh;
  if (!Reader(file).ReadRaw(&eh)) return std::unexpected(Bad("it is shorter than an ELF header"));
  if (!LooksLikeElf(file)) return Fail(ErrorCode::kMalformed, "this is not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return Fail(ErrorCode::kInvalidArgument, "only 64-bit little-endian ELF programs are supported");
  if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
    return std::unexpected(Bad("unknown ELF version"));
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
    return Fail(ErrorCode::kInvalidArgument, "the ELF file is not an executable (object files and core dumps are not programs)");
  if (eh.e_ehsize != sizeof(Elf64_Ehdr)) return std::unexpected(Bad("unexpected ELF header size"));
  img.type = eh.e_type;
  img.machine = eh.e_machine;
  img.entry = eh.e_entry;
  img.header_size = eh.e_ehsize;

  if (eh.e_phnum == 0) return std::unexpected(Bad("it has no program headers, so it cannot be loaded"));
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) return std::unexpected(Bad("unexpected program header size"));
  if (eh.e_phnum > kMaxElfSegments) return Fail(ErrorCode::kTooLarge, "the ELF file has too many program headers");
  img.phdr_offset = eh.e_phoff;
  img.phdr_size = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  ByteView phdr_table;
  if (!SliceAt(file, img.phdr_offset, img.phdr_size, &phdr_table))
    return std::unexpected(Bad("the program header table lies outside the file"));
  Reader phdrs(phdr_table);
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (!phdrs.ReadRaw(&ph)) return std::unexpected(Bad("the program header table lies outside the file"));
    if (!Within(file, ph.p_offset, ph.p_filesz))
      return std::unexpected(Bad("program header " + std::to_string(i) + " lies outside the file"));
    if (ph.p_filesz > ph.p_memsz && ph.p_type == PT_LOAD)
      return std::unexpected(Bad("a loadable segment is larger in the file than in memory"));
    img.segments.push_back({ph.p_type, ph.p_flags, ph.p_offset, ph.p_filesz, ph.p_vaddr, ph.p_memsz});
  }

  if (eh.e_shoff == 0 || eh.e_shnum == 0)
    return Fail(ErrorCode::kInvalidArgument, "the ELF file has no section headers; sealdrop needs them to know what to encrypt");
  if (eh.e_shentsize != sizeof(Elf64_Shdr)) return std::unexpected(Bad("unexpected section header size"));
  if (eh.e_shnum > kMaxElfSections) return Fail(ErrorCode::kTooLarge, "the ELF file has too many sections");
  if (eh.e_shstrndx == SHN_UNDEF || eh.e_shstrndx >= eh.e_shnum)
    return std::unexpected(Bad("the section name table index is out of range"));
  img.shdr_offset = eh.e_shoff;
  img.shdr_size = uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr);
  img.shstrndx = eh.e_shstrndx;
  ByteView shdr_table;
  if (!SliceAt(file, img.shdr_offset, img.shdr_size, &shdr_table))
    return std::unexpected(Bad("the section header table lies outside the file"));
  Reader shdrs(shdr_table);
  std::vector<uint32_t> name_index;
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh;
    if (!shdrs.ReadRaw(&sh)) return std::unexpected(Bad("the section header table lies outside the file"));
    ElfSection s;
    s.type = sh.sh_type;
    s.flags = sh.sh_flags;
    s.addr = sh.sh_addr;
    s.offset = sh.sh_offset;
    s.size = sh.sh_type == SHT_NOBITS || sh.sh_type == SHT_NULL ? 0 : sh.sh_size;
    s.link = sh.sh_link;
    s.entry_size = sh.sh_entsize;
    if (s.size != 0 && !Within(file, s.offset, s.size))
      return std::unexpected(Bad("section " + std::to_string(i) + " lies outside the file"));
    name_index.push_back(sh.sh_name);
    img.sections.push_back(std::move(s));
  }
  const ElfSection& names = img.sections[img.shstrndx];
  if (names.type != SHT_STRTAB) return std::unexpected(Bad("the section name table is not a string table"));
  for (size_t i = 1; i < img.sections.size(); ++i) {
    auto name = StringAt(file, names, name_index[i]);
    if (!name) return std::unexpected(name.error());
    img.sections[i].name = std::move(*name);
  }
  return Ok();
}

Status ReadInterpreter(ByteView file, ElfImage& img) {
  for (const ElfSegment& seg : img.segments) {
    if (seg.type != PT_INTERP) continue;
    ByteView path;
    if (seg.file_size == 0 || seg.file_size > 4096 || !SliceAt(file, seg.offset, seg.file_size, &path) ||
        path.back() != 0)
      return std::unexpected(Bad("the interpreter path is not a terminated string"));
    std::string_view text;
    (void)Reader(path).ReadCString(&text);  // the last byte is a NUL: cannot fail
    img.interpreter.assign(text);
    if (img.interpreter.empty()) return std::unexpected(Bad("the interpreter path is empty"));
  }
  return Ok();
}

Status ReadDynamic(ByteView file, ElfImage& img) {
  const ElfSection* dynamic = nullptr;
  for (const ElfSection& s : img.sections)
    if (s.type == SHT_DYNAMIC) {
      if (dynamic != nullptr) return std::unexpected(Bad("it has two dynamic sections"));
      dynamic = &s;
    }
  // The loader reads the table PT_DYNAMIC points at, not the section: the
  // two must be the same bytes, or what is checked here is not what runs.
  for (const ElfSegment& seg : img.segments) {
    if (seg.type != PT_DYNAMIC) continue;
    if (dynamic == nullptr || seg.offset != dynamic->offset || seg.file_size != dynamic->size)
      return std::unexpected(Bad("its PT_DYNAMIC segment is not its .dynamic section"));
  }
  if (dynamic == nullptr) return Ok();
  img.is_dynamic = true;
  if (dynamic->size % sizeof(Elf64_Dyn) != 0) return std::unexpected(Bad(".dynamic has a partial entry"));
  SEALDROP_ASSIGN(const ElfSection* strings, LinkedTable(img, *dynamic, SHT_STRTAB));
  uint64_t flags = 0, flags_1 = 0;
  ByteView table;
  if (!SectionBytes(file, *dynamic, &table))
    return std::unexpected(Bad(".dynamic lies outside the file"));
  Reader entries(table);
  while (!entries.empty()) {
    Elf64_Dyn d;
    if (!entries.ReadRaw(&d)) return std::unexpected(Bad(".dynamic has a partial entry"));
    if (d.d_tag == DT_NULL) break;
    switch (d.d_tag) {
      case DT_NEEDED: {
        SEALDROP_ASSIGN(std::string lib, StringAt(file, *strings, d.d_un.d_val));
        img.needed.push_back(std::move(lib));
        if (img.needed.size() > 1024) return std::unexpected(Bad("it needs too many libraries"));
        break;
      }
      case DT_SONAME: { SEALDROP_ASSIGN(img.soname, StringAt(file, *strings, d.d_un.d_val)); break; }
      case DT_RPATH:
      case DT_RUNPATH: {
        SEALDROP_ASSIGN(std::string value, StringAt(file, *strings, d.d_un.d_val));
        bool runpath = d.d_tag == DT_RUNPATH;
        (runpath ? img.runpath : img.rpath) = value;
        img.search_paths.push_back({runpath, std::move(value)});
        if (img.search_paths.size() > 64) return std::unexpected(Bad("it has too many library search paths"));
        break;
      }
      case DT_TEXTREL: img.text_relocations = true; break;
      case DT_FLAGS: flags = d.d_un.d_val; break;
      case DT_FLAGS_1: flags_1 = d.d_un.d_val; break;
      default: break;
    }
  }
  if (flags & DF_TEXTREL) img.text_relocations = true;
  img.is_pie = img.type == ET_DYN && (flags_1 & DF_1_PIE) != 0;
  return Ok();
}

// Version index -> name, from .gnu.version_r (what the program needs).
Result<std::map<uint16_t, std::string>> ReadVersionNeeds(ByteView file, const ElfImage& img) {
  std::map<uint16_t, std::string> names;
  for (const ElfSection& s : img.sections) {
    if (s.type != SHT_GNU_verneed) continue;
    SEALDROP_ASSIGN(const ElfSection* strings, LinkedTable(img, s, SHT_STRTAB));
    ByteView table;
    if (!SectionBytes(file, s, &table)) return std::unexpected(Bad(s.name + " is truncated"));
    // Entries are 16 bytes and a well-formed table visits each once; chains
    // that point back into each other would otherwise cost quadratic time.
    uint64_t budget = s.size / sizeof(Elf64_Vernaux) + 1;
    auto spend = [&]() -> Status {
      if (budget-- == 0) return std::unexpected(Bad(s.name + " visits more entries than it holds"));
      return Ok();
    };
    uint64_t at = 0;
    for (int files = 0; files < 4096; ++files) {
      SEALDROP_TRY(spend());
      Elf64_Verneed vn;
      if (!LoadAt(table, at, &vn)) return std::unexpected(Bad(s.name + " is truncated"));
      uint64_t aux = at + vn.vn_aux;
      for (uint16_t i = 0; i < vn.vn_cnt; ++i) {
        if (aux < at || !Within(table, aux, sizeof(Elf64_Vernaux)))
          return std::unexpected(Bad(s.name + " is truncated"));
        SEALDROP_TRY(spend());
        Elf64_Vernaux va;
        (void)LoadAt(table, aux, &va);  // checked just above
        SEALDROP_ASSIGN(std::string name, StringAt(file, *strings, va.vna_name));
        names[static_cast<uint16_t>(va.vna_other & 0x7fff)] = std::move(name);
        if (va.vna_next == 0) break;
        aux += va.vna_next;
      }
      if (vn.vn_next == 0) return names;
      at += vn.vn_next;
    }
    return std::unexpected(Bad(s.name + " has too many entries"));
  }
  return names;
}

Status ReadSymbols(ByteView file, ElfImage& img) {
  const ElfSection* dynsym = nullptr;
  const ElfSection* versym = nullptr;
  for (const ElfSection& s : img.sections) {
    if (s.type == SHT_DYNSYM) dynsym = &s;
    if (s.type == SHT_GNU_versym) versym = &s;
  }
  if (dynsym == nullptr) return Ok();
  if (dynsym->size % sizeof(Elf64_Sym) != 0) return std::unexpected(Bad(".dynsym has a partial entry"));
  uint64_t count = dynsym->size / sizeof(Elf64_Sym);
  if (count > kMaxElfSymbols) return Fail(ErrorCode::kTooLarge, "the ELF file has too many dynamic symbols");
  if (versym != nullptr && versym->size != count * sizeof(uint16_t))
    return std::unexpected(Bad(".gnu.version does not match .dynsym"));
  SEALDROP_ASSIGN(const ElfSection* strings, LinkedTable(img, *dynsym, SHT_STRTAB));
  SEALDROP_ASSIGN(auto versions, ReadVersionNeeds(file, img));
  ByteView symbol_table, version_table;
  if (!SectionBytes(file, *dynsym, &symbol_table) ||
      (versym != nullptr && !SectionBytes(file, *versym, &version_table)))
    return std::unexpected(Bad(".dynsym lies outside the file"));
  Reader symbols(symbol_table), symbol_versions(version_table);
  // Entry 0 is the undefined symbol, and its version is "local".
  (void)symbols.Skip(sizeof(Elf64_Sym));
  (void)symbol_versions.Skip(sizeof(uint16_t));
  for (uint64_t i = 1; i < count; ++i) {
    Elf64_Sym sym;
    uint16_t raw_version = 0;
    if (!symbols.ReadRaw(&sym) || (versym != nullptr && !symbol_versions.ReadRaw(&raw_version)))
      return std::unexpected(Bad(".dynsym has a partial entry"));
    uint8_t bind = ELF64_ST_BIND(sym.st_info);
    if (sym.st_shndx != SHN_UNDEF) {
      if (bind == STB_GLOBAL || bind == STB_WEAK) ++img.exports;
      continue;
    }
    ElfSymbol s;
    SEALDROP_ASSIGN(s.name, StringAt(file, *strings, sym.st_name));
    s.binding = bind;
    s.type = ELF64_ST_TYPE(sym.st_info);
    if (versym != nullptr) {
      uint16_t v = raw_version & 0x7fff;
      if (auto it = versions.find(v); it != versions.end()) s.version = it->second;
    }
    img.imports.push_back(std::move(s));
  }
  return Ok();
}

// Directories in which anyone may create files or directories on a usual
// Linux system, or which belong to users: a program must not ask the loader
// to look there. The processor checks the real ownership when the program
// runs; this list gives the vendor the reason at 'program add'.
constexpr std::string_view kHostWritablePlaces[] = {"/tmp", "/var/tmp", "/dev/shm", "/run/shm", "/run/user",
                                                     "/run/lock", "/var/lock", "/var/crash", "/home", "/root",
                                                     "/media", "/mnt", "/proc", "/dev/fd"};

constexpr std::string_view kFix = "rebuild without -rpath or with an absolute root-owned directory";

// Why `path` (a directory or file the loader would open) is not acceptable,
// or empty if it is.
std::string UnsafeLoaderPath(std::string_view path) {
  if (path.empty()) return "is empty, which the loader reads as the working directory the host chooses for 'run'";
  if (path.find('$') != std::string_view::npos)
    return "uses a loader variable ($ORIGIN, $LIB or $PLATFORM), which the loader expands to a place that depends "
           "on how the program is started";
  if (path.front() != '/')
    return "is a relative directory, which the loader resolves against the working directory the host chooses "
           "for 'run'";
  for (size_t at = 0; at < path.size();) {
    size_t end = path.find('/', at);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(at, end - at);
    if (part == "." || part == "..") return "has a '.' or '..' component; give the directory's plain absolute path";
    at = end + 1;
  }
  for (std::string_view place : kHostWritablePlaces)
    if (path == place || (path.starts_with(place) && path[place.size()] == '/'))
      return "lies under " + std::string(place) + ", where the host, not root, decides what is there";
  return {};
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The directories of a DT_RPATH or DT_RUNPATH list: the loader splits it at
// ':' (glibc's decompose_rpath), and keeps empty elements, which mean the
// working directory.
std::vector<std::string_view> SearchDirectories(const std::string& list) {
  std::vector<std::string_view> dirs;
  size_t at = 0;
  for (;;) {
    size_t end = list.find(':', at);
    dirs.push_back(std::string_view(list).substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) return dirs;
    at = end + 1;
  }
}

bool Overlaps(uint64_t a_off, uint64_t a_size, uint64_t b_off, uint64_t b_size) {
  return a_size != 0 && b_size != 0 && a_off < b_off + b_size && b_off < a_off + a_size;
}

}  // namespace

bool LooksLikeElf(ByteView head) {
  return head.size() >= 4 && head[0] == 0x7f && head[1] == 'E' && head[2] == 'L' && head[3] == 'F';
}

Result<ElfImage> ParseElf(ByteView file) {
  ElfImage img;
  SEALDROP_TRY(ReadHeaders(file, img));
  SEALDROP_TRY(ReadInterpreter(file, img));
  SEALDROP_TRY(ReadDynamic(file, img));
  SEALDROP_TRY(ReadSymbols(file, img));
  // A program the kernel starts through an interpreter is position-
  // independent whatever its dynamic flags say (static-pie has none).
  if (img.type == ET_DYN && !img.interpreter.empty()) img.is_pie = true;
  return img;
}

SectionRule ClassifySection(const ElfImage& img, size_t index) {
  const ElfSection& s = img.sections[index];
  if (s.size == 0) return {false, "no bytes in the file"};
  if (index == img.shstrndx) return {false, "section names, which tools need to read the section headers"};
  switch (s.type) {
    case SHT_DYNAMIC: return {false, "the dynamic table: needed libraries and where the loader finds everything"};
    case SHT_DYNSYM: return {false, "the symbols the loader imports and exports"};
    case SHT_HASH:
    case SHT_GNU_HASH: return {false, "the loader's symbol lookup table"};
    case SHT_GNU_versym:
    case SHT_GNU_verneed:
    case SHT_GNU_verdef: return {false, "symbol versions the loader checks"};
    case SHT_NOTE: return {false, "notes the kernel and loader read (ABI tag, CPU features, build ID)"};
    case SHT_REL:
    case SHT_RELA:
    case kShtRelr:
      if (s.flags & SHF_ALLOC) return {false, "relocations the loader applies"};
      break;
    default: break;
  }
  for (size_t i = 0; i < img.sections.size(); ++i) {
    const ElfSection& o = img.sections[i];
    if ((o.type == SHT_DYNSYM || o.type == SHT_DYNAMIC || o.type == SHT_GNU_verneed ||
         o.type == SHT_GNU_verdef) && o.link == index)
      return {false, "names of imported symbols and needed libraries"};
  }
  for (const ElfSegment& seg : img.segments)
    if (seg.type == PT_INTERP && seg.offset >= s.offset && seg.offset + seg.file_size <= s.offset + s.size)
      return {false, "the path of the dynamic loader the kernel starts"};
  return {true, ""};
}

Result<std::vector<FileRange>> ProtectedRanges(const ElfImage& img, uint64_t file_size) {
  std::vector<FileRange> encrypted;
  std::vector<std::pair<FileRange, std::string>> plain = {
      {{0, img.header_size}, "the ELF header"},
      {{img.phdr_offset, img.phdr_size}, "the program header table"},
      {{img.shdr_offset, img.shdr_size}, "the section header table"}};
  for (size_t i = 0; i < img.sections.size(); ++i) {
    const ElfSection& s = img.sections[i];
    if (s.size == 0) continue;
    if (!InFile(s.offset, s.size, file_size)) return std::unexpected(Bad(s.name + " lies outside the file"));
    if (ClassifySection(img, i).encrypted)
      encrypted.push_back({s.offset, s.size});
    else
      plain.push_back({{s.offset, s.size}, s.name});
  }
  for (const ElfSegment& seg : img.segments)
    if (seg.type == PT_INTERP || seg.type == PT_DYNAMIC || seg.type == PT_NOTE)
      plain.push_back({{seg.offset, seg.file_size}, "a segment the loader reads"});
  if (encrypted.empty()) return Fail(ErrorCode::kInvalidArgument, "the ELF file has no code or data sections to encrypt");
  std::sort(encrypted.begin(), encrypted.end(),
            [](const FileRange& a, const FileRange& b) { return a.offset < b.offset; });
  std::vector<FileRange> merged;
  for (const FileRange& r : encrypted) {
    if (!merged.empty() && r.offset <= merged.back().offset + merged.back().size) {
      uint64_t end = std::max(merged.back().offset + merged.back().size, r.offset + r.size);
      merged.back().size = end - merged.back().offset;
    } else {
      merged.push_back(r);
    }
  }
  for (const FileRange& r : merged)
    for (const auto& [p, what] : plain)
      if (Overlaps(r.offset, r.size, p.offset, p.size))
        return Fail(ErrorCode::kInvalidArgument, "the ELF file cannot be protected: an encrypted section overlaps " + what);
  return merged;
}

Status CheckLibrarySearchPaths(const ElfImage& img) {
  for (const ElfSearchPath& sp : img.search_paths)
    for (std::string_view dir : SearchDirectories(sp.value))
      if (std::string why = UnsafeLoaderPath(dir); !why.empty())
        return Fail(ErrorCode::kRefused, "its " + sp.tag() + " entry " + Quoted(dir) + " " + why + "; " + std::string(kFix));
  for (const std::string& lib : img.needed) {
    // A name without '/' is searched for; one with a '/' is opened as a path
    // (relative to the working directory if it is relative).
    if (lib.find('/') == std::string::npos && lib.find('$') == std::string::npos) continue;
    std::string why = UnsafeLoaderPath(lib);
    if (!why.empty())
      return Fail(ErrorCode::kRefused, "its DT_NEEDED entry " + Quoted(lib) + " " + why +
                                           "; link against the library by name (-lNAME), not by path");
  }
  if (!img.interpreter.empty())
    if (std::string why = UnsafeLoaderPath(img.interpreter); !why.empty())
      return Fail(ErrorCode::kRefused, "its interpreter " + Quoted(img.interpreter) + " " + why +
                                           "; link it with the system's dynamic loader");
  return Ok();
}

std::vector<LoaderPath> LoaderPaths(const ElfImage& img) {
  std::vector<LoaderPath> out;
  for (const ElfSearchPath& sp : img.search_paths)
    for (std::string_view dir : SearchDirectories(sp.value)) out.push_back({std::string(dir), sp.tag() + " entry " + Quoted(dir)});
  for (const std::string& lib : img.needed)
    if (lib.find('/') != std::string::npos) out.push_back({lib, "DT_NEEDED entry " + Quoted(lib)});
  if (!img.interpreter.empty()) out.push_back({img.interpreter, "interpreter " + Quoted(img.interpreter)});
  return out;
}

Status CheckNoWritableCode(const ElfImage& img) {
  bool stack_seen = false;
  for (const ElfSegment& seg : img.segments) {
    if (seg.type == PT_LOAD && (seg.flags & PF_W) && (seg.flags & PF_X))
      return Fail(ErrorCode::kRefused, "the program has a segment that is both writable and executable");
    if (seg.type == PT_GNU_STACK) {
      stack_seen = true;
      if (seg.flags & PF_X) return Fail(ErrorCode::kRefused, "the program asks for an executable stack");
    }
  }
  if (!stack_seen)
    return Fail(ErrorCode::kRefused, "the program has no PT_GNU_STACK header, so the kernel would give it an executable stack");
  if (img.text_relocations)
    return Fail(ErrorCode::kRefused, "the program has text relocations, which make code writable while it is loaded");
  return Ok();
}

}  // namespace sealdrop
