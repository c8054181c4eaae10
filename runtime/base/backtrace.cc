#include "runtime/base/backtrace.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "runtime/base/fatal.h"

namespace greenline {

// Reads other fibers' stacks, which may be changing under us (a dump runs while workers run):
// plain loads, kept out of the sanitizers' view. The bounds checks make every load land inside
// the stack's mapped, unguarded range.
__attribute__((no_sanitize("address", "thread", "undefined"))) int WalkFramePointers(
    uintptr_t fp, uintptr_t pc, uintptr_t lo, uintptr_t hi, uintptr_t* pcs, int max) {
  int n = 0;
  if (max <= 0) return 0;
  if (pc != 0) pcs[n++] = pc;
  while (n < max) {
    // Written so that nothing wraps: fp near the top of the address space must not pass.
    if (fp < lo || fp > hi || hi - fp < 2 * sizeof(uintptr_t) || fp % sizeof(uintptr_t) != 0) {
      break;
    }
    const volatile uintptr_t* record = reinterpret_cast<const volatile uintptr_t*>(fp);
    uintptr_t next = record[0];
    uintptr_t ret = record[1];
    if (ret == 0) break;
    pcs[n++] = ret;
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

namespace {

struct Symbol {
  uintptr_t start;
  uintptr_t size;
  const char* name;  // into the mapped file, which stays mapped for the life of the process
};

// Written once under g_symbols_once, read-only afterwards.
std::once_flag g_symbols_once;
std::vector<Symbol>* g_symbols = nullptr;
const char* g_exe_path = nullptr;

int FindMainBias(dl_phdr_info* info, size_t, void* data) {
  // The first object is the main program.
  *static_cast<uintptr_t*>(data) = info->dlpi_addr;
  return 1;
}

void LoadSymbolsOnce() {
  static char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) return;
  exe[len] = '\0';
  g_exe_path = exe;
  int fd = open(exe, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(ElfW(Ehdr)))) {
    close(fd);
    return;
  }
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return;
  const char* base = static_cast<const char*>(map);
  size_t size = static_cast<size_t>(st.st_size);
  auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
  if (std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff == 0 ||
      eh->e_shoff + eh->e_shnum * sizeof(ElfW(Shdr)) > size) {
    munmap(map, size);
    return;
  }
  auto* sh = reinterpret_cast<const ElfW(Shdr)*>(base + eh->e_shoff);
  const ElfW(Shdr)* symtab = nullptr;
  for (int pass = 0; pass < 2 && symtab == nullptr; ++pass) {
    for (int i = 0; i < eh->e_shnum; ++i) {
      if (sh[i].sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM)) symtab = &sh[i];
    }
  }
  if (symtab == nullptr || symtab->sh_link >= eh->e_shnum) {
    munmap(map, size);
    return;
  }
  const ElfW(Shdr)* strtab = &sh[symtab->sh_link];
  if (symtab->sh_offset + symtab->sh_size > size || strtab->sh_offset + strtab->sh_size > size) {
    munmap(map, size);
    return;
  }
  uintptr_t bias = 0;
  dl_iterate_phdr(&FindMainBias, &bias);
  auto* syms = reinterpret_cast<const ElfW(Sym)*>(base + symtab->sh_offset);
  size_t count = symtab->sh_size / sizeof(ElfW(Sym));
  auto* table = new std::vector<Symbol>();
  for (size_t i = 0; i < count; ++i) {
    if (ELF64_ST_TYPE(syms[i].st_info) != STT_FUNC || syms[i].st_value == 0) continue;
    if (syms[i].st_name >= strtab->sh_size) continue;
    table->push_back(
        {bias + syms[i].st_value, syms[i].st_size, base + strtab->sh_offset + syms[i].st_name});
  }
  std::sort(table->begin(), table->end(),
            [](const Symbol& a, const Symbol& b) { return a.start < b.start; });
  g_symbols = table;
}

const Symbol* LookupSymbol(uintptr_t pc) {
  const std::vector<Symbol>* table = g_symbols;
  if (table == nullptr || table->empty()) return nullptr;
  auto it = std::upper_bound(table->begin(), table->end(), pc,
                             [](uintptr_t v, const Symbol& s) { return v < s.start; });
  if (it == table->begin()) return nullptr;
  --it;
  uintptr_t size = it->size != 0 ? it->size : 1;
  return pc < it->start + size ? &*it : nullptr;
}

// Formats frame i into `line`.
void FormatFrame(const uintptr_t* pcs, int i, bool demangle, char* line, size_t size) {
  {
    // A return address points after the call; look up pc-1 so the line names the caller.
    uintptr_t lookup = i == 0 ? pcs[i] : pcs[i] - 1;
    Dl_info info{};
    const char* name = nullptr;
    const char* raw = nullptr;
    char* demangled = nullptr;
    if (const Symbol* sym = LookupSymbol(lookup)) {
      raw = sym->name;
      info.dli_saddr = reinterpret_cast<void*>(sym->start);
      info.dli_fname = g_exe_path;
    } else if (dladdr(reinterpret_cast<void*>(lookup), &info) != 0) {
      raw = info.dli_sname;
    }
    if (raw != nullptr) {
      int status = -1;
      if (demangle) demangled = abi::__cxa_demangle(raw, nullptr, nullptr, &status);
      name = status == 0 && demangled != nullptr ? demangled : raw;
    }
    const char* module = info.dli_fname != nullptr ? info.dli_fname : "?";
    if (name != nullptr) {
      std::snprintf(
          line, size, "\t#%d 0x%lx %s+0x%lx (%s)\n", i, static_cast<unsigned long>(pcs[i]), name,
          static_cast<unsigned long>(pcs[i] - reinterpret_cast<uintptr_t>(info.dli_saddr)), module);
    } else {
      uintptr_t base = reinterpret_cast<uintptr_t>(info.dli_fbase);
      std::snprintf(line, size, "\t#%d 0x%lx ?? (%s+0x%lx)\n", i,
                    static_cast<unsigned long>(pcs[i]), module,
                    static_cast<unsigned long>(base != 0 ? pcs[i] - base : 0));
    }
    std::free(demangled);
  }
}

}  // namespace

void WriteBacktrace(int fd, const uintptr_t* pcs, int n, bool demangle) {
  char line[1024];
  for (int i = 0; i < n; ++i) {
    FormatFrame(pcs, i, demangle, line, sizeof line);
    WriteAll(fd, line);
  }
}

void LoadSymbols() { std::call_once(g_symbols_once, &LoadSymbolsOnce); }

std::string FormatBacktrace(const uintptr_t* pcs, int n) {
  std::string out;
  char line[1024];
  for (int i = 0; i < n; ++i) {
    FormatFrame(pcs, i, true, line, sizeof line);
    out += line;
  }
  return out;
}

}  // namespace greenline
