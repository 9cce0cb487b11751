#include "tests/launch/cubin_reader.h"

#include <cxxabi.h>
#include <elf.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace ompq::launch_check {
namespace {

constexpr uint32_t kFatbinMagic = 0xBA55ED50;
constexpr uint16_t kFatbinElfEntry = 2;             // entry kinds: 1 PTX, 2 cubin
constexpr unsigned char kCudaEntryFunction = 0x10;  // st_other of a __global__ function's symbol
// .nv.info records: a format byte, an attribute byte, then a 2-byte value or, for kSizedValue, a
// 2-byte size and that many bytes.
constexpr uint8_t kSizedValue = 0x04;
constexpr uint8_t kAttrMaxThreads = 0x05;  // __launch_bounds__: x, y, z (u32 each)
constexpr uint8_t kAttrRegCount = 0x2f;    // in .nv.info: symbol index, registers (u32 each)
// sm_90 places the 1 KiB of shared memory that the driver reserves per block at the start of each
// kernel's .nv.shared section; the kernel's own static shared memory follows.
constexpr int64_t kReservedSharedBytes = 1024;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

// Bounds-checked reads of little-endian values from a byte range.
class Bytes {
 public:
  Bytes(std::string_view data, std::string path) : data_(data), path_(std::move(path)) {}
  template <typename T>
  T at(uint64_t offset) const {
    if (offset > data_.size() || data_.size() - offset < sizeof(T)) {
      fail(path_, "truncated: reading " + std::to_string(sizeof(T)) + " bytes at " +
                      std::to_string(offset) + " of " + std::to_string(data_.size()));
    }
    T value;
    std::memcpy(&value, data_.data() + offset, sizeof(T));
    return value;
  }
  std::string_view slice(uint64_t offset, uint64_t size) const {
    if (offset > data_.size() || data_.size() - offset < size) {
      fail(path_, "truncated: a range of " + std::to_string(size) + " bytes at " +
                      std::to_string(offset) + " runs past its " + std::to_string(data_.size()));
    }
    return data_.substr(offset, size);
  }
  std::string c_string(uint64_t offset) const {
    const std::string_view rest =
        slice(offset, data_.size() - std::min<uint64_t>(offset, data_.size()));
    const size_t end = rest.find('\0');
    if (end == std::string_view::npos)
      fail(path_, "unterminated name at " + std::to_string(offset));
    return std::string(rest.substr(0, end));
  }

 private:
  std::string_view data_;
  std::string path_;
};

// The sections of a 64-bit little-endian ELF file, by name.
struct Elf {
  Bytes bytes;
  std::vector<Elf64_Shdr> sections;
  std::map<std::string, size_t> by_name;

  Elf(std::string_view data, const std::string& path) : bytes(data, path) {
    if (data.size() < sizeof(Elf64_Ehdr) || std::memcmp(data.data(), ELFMAG, SELFMAG) != 0 ||
        data[EI_CLASS] != ELFCLASS64 || data[EI_DATA] != ELFDATA2LSB) {
      fail(path, "not a 64-bit little-endian ELF file");
    }
    const auto header = bytes.at<Elf64_Ehdr>(0);
    for (unsigned i = 0; i < header.e_shnum; ++i) {
      sections.push_back(bytes.at<Elf64_Shdr>(header.e_shoff + uint64_t{i} * sizeof(Elf64_Shdr)));
    }
    if (header.e_shstrndx >= sections.size()) fail(path, "no section name table");
    for (size_t i = 0; i < sections.size(); ++i) {
      by_name[bytes.c_string(sections[header.e_shstrndx].sh_offset + sections[i].sh_name)] = i;
    }
  }
  const Elf64_Shdr* find(const std::string& name) const {
    const auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : &sections[it->second];
  }
  std::string_view contents(const Elf64_Shdr& section) const {
    if (section.sh_type == SHT_NOBITS) return {};
    return bytes.slice(section.sh_offset, section.sh_size);
  }
};

// Calls visit(attribute, value bytes) for each record of an .nv.info section.
template <typename Visit>
void for_each_attribute(std::string_view info, const std::string& where, const Visit& visit) {
  const Bytes bytes(info, where);
  uint64_t offset = 0;
  while (offset < info.size()) {
    const auto format = bytes.at<uint8_t>(offset);
    const auto attribute = bytes.at<uint8_t>(offset + 1);
    if (format == kSizedValue) {
      const auto size = bytes.at<uint16_t>(offset + 2);
      visit(attribute, bytes.slice(offset + 4, size));
      offset += 4 + size;
    } else {
      visit(attribute, bytes.slice(offset + 2, 2));
      offset += 4;
    }
  }
}

std::string demangle(const std::string& symbol) {
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> text(
      abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status), &std::free);
  return status == 0 ? std::string(text.get()) : symbol;
}

// The kernels of one cubin.
std::vector<CompiledKernel> cubin_kernels(std::string_view image, const std::string& object,
                                          int arch) {
  const std::string where = object + " (sm_" + std::to_string(arch) + " cubin)";
  const Elf elf(image, where);
  const Elf64_Shdr* symtab = nullptr;
  for (const auto& section : elf.sections) {
    if (section.sh_type == SHT_SYMTAB) symtab = &section;
  }
  if (symtab == nullptr) fail(where, "no symbol table");
  if (symtab->sh_link >= elf.sections.size()) fail(where, "the symbol table names no strings");
  const uint64_t names = elf.sections[symtab->sh_link].sh_offset;

  std::map<uint32_t, int> registers;  // by symbol index
  if (const Elf64_Shdr* info = elf.find(".nv.info")) {
    for_each_attribute(elf.contents(*info), where + " .nv.info",
                       [&](uint8_t attribute, std::string_view value) {
                         if (attribute != kAttrRegCount) return;
                         const Bytes v(value, where + " register count");
                         registers[v.at<uint32_t>(0)] = static_cast<int>(v.at<uint32_t>(4));
                       });
  }

  std::vector<CompiledKernel> kernels;
  const uint64_t count = symtab->sh_size / sizeof(Elf64_Sym);
  for (uint32_t index = 0; index < count; ++index) {
    const auto sym = elf.bytes.at<Elf64_Sym>(symtab->sh_offset + index * sizeof(Elf64_Sym));
    if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || !(sym.st_other & kCudaEntryFunction)) continue;
    CompiledKernel k;
    k.object = object;
    k.symbol = elf.bytes.c_string(names + sym.st_name);
    k.name = function_name(demangle(k.symbol));
    k.arch = arch;
    const auto regs = registers.find(index);
    if (regs == registers.end()) fail(where, "no register count for kernel " + k.symbol);
    k.registers = regs->second;
    if (const Elf64_Shdr* shared = elf.find(".nv.shared." + k.symbol)) {
      if (static_cast<int64_t>(shared->sh_size) < kReservedSharedBytes) {
        fail(where, ".nv.shared." + k.symbol + " holds " + std::to_string(shared->sh_size) +
                        " bytes, fewer than the " + std::to_string(kReservedSharedBytes) +
                        " reserved ones it starts with on sm_90");
      }
      k.static_shared_bytes = static_cast<int64_t>(shared->sh_size) - kReservedSharedBytes;
    }
    if (const Elf64_Shdr* info = elf.find(".nv.info." + k.symbol)) {
      for_each_attribute(elf.contents(*info), where + " .nv.info." + k.symbol,
                         [&](uint8_t attribute, std::string_view value) {
                           if (attribute != kAttrMaxThreads) return;
                           const Bytes v(value, where + " launch bounds of " + k.symbol);
                           k.max_threads =
                               int64_t{v.at<uint32_t>(0)} * v.at<uint32_t>(4) * v.at<uint32_t>(8);
                         });
    }
    kernels.push_back(std::move(k));
  }
  return kernels;
}

}  // namespace

std::string function_name(const std::string& demangled) {
  std::string name = demangled;
  const std::string anonymous = "(anonymous namespace)::";
  for (size_t at; (at = name.find(anonymous)) != std::string::npos;)
    name.erase(at, anonymous.size());
  if (name.rfind("void ", 0) == 0) name.erase(0, 5);  // a template function's return type
  return name.substr(0, name.find_first_of("<("));
}

std::vector<CompiledKernel> read_kernels(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(path, "cannot be opened");
  const std::string data((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const Elf object(data, path);
  const Elf64_Shdr* fatbin_section = object.find(".nv_fatbin");
  if (fatbin_section == nullptr) return {};  // host code only
  const Bytes fatbin(object.contents(*fatbin_section), path + " .nv_fatbin");
  std::vector<CompiledKernel> kernels;
  uint64_t offset = 0;
  while (offset < fatbin_section->sh_size) {
    if (fatbin.at<uint32_t>(offset) != kFatbinMagic) {
      fail(path, "the fat binary at " + std::to_string(offset) + " of .nv_fatbin has no magic");
    }
    const uint16_t fatbin_header_size = fatbin.at<uint16_t>(offset + 6);
    if (fatbin_header_size < 16) {
      fail(path, "the fat binary at " + std::to_string(offset) + " has a header of " +
                     std::to_string(fatbin_header_size) + " bytes, expected at least 16");
    }
    const uint64_t entries = offset + fatbin_header_size;
    const uint64_t end = entries + fatbin.at<uint64_t>(offset + 8);
    for (uint64_t entry = entries; entry < end;) {
      const auto kind = fatbin.at<uint16_t>(entry);
      const auto header_size = fatbin.at<uint32_t>(entry + 4);
      const auto payload_size = fatbin.at<uint64_t>(entry + 8);
      if (header_size < 32) {
        fail(path, "a fat binary entry at " + std::to_string(entry) + " has a header of " +
                       std::to_string(header_size) + " bytes, expected at least 32");
      }
      const auto arch = static_cast<int>(fatbin.at<uint32_t>(entry + 28));
      if (kind == kFatbinElfEntry) {
        const std::string_view image = fatbin.slice(entry + header_size, payload_size);
        if (image.substr(0, SELFMAG) != std::string_view(ELFMAG, SELFMAG)) {
          fail(path, "its sm_" + std::to_string(arch) +
                         " cubin is compressed; expected the plain ELF that nvcc writes by "
                         "default (no -Xfatbin=-compress-all)");
        }
        auto found = cubin_kernels(image, path, arch);
        kernels.insert(kernels.end(), found.begin(), found.end());
      }
      entry += header_size + payload_size;
    }
    offset = end;
  }
  return kernels;
}

}  // namespace ompq::launch_check
