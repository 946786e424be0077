// CompileCached() from compiler.h: the on-disk cache of compiled programs.
#include <nettle/sha2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "seccomp/compiler.h"

namespace moat::seccomp {
namespace {

// Bump when Compile() can produce a different program for the same profile and libseccomp
// (new prelude, new attribute), so that old entries stop matching.
constexpr std::string_view kCompilerVersion = "moat-seccomp-compiler-1";

constexpr char kMagic[8] = {'M', 'O', 'A', 'T', 'B', 'P', 'F', '\n'};
constexpr uint32_t kFormatVersion = 1;

using Digest = std::array<uint8_t, 32>;

// The on-disk entry: this header, `count` sock_filter structs, then the SHA-256 of everything
// before it. Native byte order: the key includes the native architecture.
struct Header {
  char magic[8];
  uint32_t format_version;
  uint32_t flags;
  uint32_t needs_listener;
  uint32_t count;
  uint8_t key[32];
};
static_assert(sizeof(Header) == 56);
static_assert(sizeof(sock_filter) == 8);

Result<Digest> Sha256(std::string_view data) {
  // Nettle's SHA-256 rather than OpenSSL's: linked statically into moat-runtime, libcrypto
  // brought ~300 KiB of pointer tables that every start relocated (copy-on-write faults) and an
  // initialisation on first use, for one hash of a few KiB.
  struct sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data.size(), reinterpret_cast<const uint8_t*>(data.data()));
  Digest out;
  static_assert(std::tuple_size_v<Digest> == SHA256_DIGEST_SIZE);
  sha256_digest(&ctx, out.size(), out.data());
  return out;
}

std::string Hex(const Digest& d) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

// Length-prefixed fields, so that no two different profiles serialise alike. Covers every field
// Compile() reads; listenerPath and listenerMetadata do not affect the program.
class Canon {
 public:
  void Str(std::string_view s) {
    out_ += std::to_string(s.size());
    out_ += ':';
    out_ += s;
    out_ += ',';
  }
  void Num(uint64_t n) { Str(std::to_string(n)); }
  void Opt(const std::optional<uint32_t>& v) {
    if (v) {
      Str("some");
      Num(*v);
    } else {
      Str("none");
    }
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string CacheKeyInput(const oci::Seccomp& p) {
  Canon c;
  c.Str(kCompilerVersion);
  c.Str(BackendVersion());
  c.Str(NativeArchitecture());
  c.Str(p.default_action);
  c.Opt(p.default_errno_ret);
  c.Num(p.architectures.size());
  for (const auto& a : p.architectures) c.Str(a);
  c.Num(p.flags.size());
  for (const auto& f : p.flags) c.Str(f);
  c.Num(p.syscalls.size());
  for (const auto& s : p.syscalls) {
    c.Num(s.names.size());
    for (const auto& n : s.names) c.Str(n);
    c.Str(s.action);
    c.Opt(s.errno_ret);
    c.Num(s.args.size());
    for (const auto& a : s.args) {
      c.Num(a.index);
      c.Num(a.value);
      c.Num(a.value_two);
      c.Str(a.op);
    }
  }
  return c.Take();
}

Result<std::string> Encode(const Program& program, const Digest& key) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.format_version = kFormatVersion;
  h.flags = program.flags;
  h.needs_listener = program.needs_listener ? 1 : 0;
  h.count = static_cast<uint32_t>(program.instructions.size());
  std::memcpy(h.key, key.data(), key.size());
  std::string out(reinterpret_cast<const char*>(&h), sizeof h);
  out.append(reinterpret_cast<const char*>(program.instructions.data()),
             program.instructions.size() * sizeof(sock_filter));
  MOAT_ASSIGN_OR_RETURN(Digest sum, Sha256(out));
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

// Returns the program in `data` if every check passes, nullopt otherwise.
std::optional<Program> Decode(std::string_view data, const Digest& key) {
  Header h;
  if (data.size() < sizeof h + sizeof(Digest)) return std::nullopt;
  std::memcpy(&h, data.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0 || h.format_version != kFormatVersion ||
      std::memcmp(h.key, key.data(), key.size()) != 0 || h.count == 0 || h.count > BPF_MAXINSNS ||
      h.needs_listener > 1)
    return std::nullopt;
  const size_t body = size_t{h.count} * sizeof(sock_filter);
  if (data.size() != sizeof h + body + sizeof(Digest)) return std::nullopt;
  auto sum = Sha256(data.substr(0, sizeof h + body));
  if (!sum || std::memcmp(sum->data(), data.data() + sizeof h + body, sum->size()) != 0)
    return std::nullopt;
  Program program;
  program.flags = h.flags;
  program.needs_listener = h.needs_listener == 1;
  program.instructions.resize(h.count);
  std::memcpy(program.instructions.data(), data.data() + sizeof h, body);
  return program;
}

}  // namespace

Result<Program> CompileCached(const oci::Seccomp& profile, const std::string& cache_dir,
                              CacheOutcome* outcome) {
  MOAT_TRY(sys::MkdirAll(cache_dir, 0700).Context("seccomp cache"));
  MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstatat(AT_FDCWD, cache_dir, 0));
  // Whoever can write here chooses the filter of every container that starts next.
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) != 0)
    return Fail(ErrorKind::kPermissionDenied,
                "seccomp cache %s: must be a directory owned by uid %u and not writable by "
                "group or others",
                cache_dir.c_str(), geteuid());

  MOAT_ASSIGN_OR_RETURN(Digest key, Sha256(CacheKeyInput(profile)));
  const std::string path = cache_dir + "/" + Hex(key) + ".bpf";
  auto data = sys::ReadFile(path);
  CacheOutcome result = CacheOutcome::kMiss;
  if (data) {
    if (auto program = Decode(*data, key)) {
      if (outcome) *outcome = CacheOutcome::kHit;
      return std::move(*program);
    }
    result = CacheOutcome::kReplaced;
  } else if (data.error().sys_errno != ENOENT) {
    // Unreadable entries are treated like corrupt ones: recompiled and replaced.
    result = CacheOutcome::kReplaced;
  }

  MOAT_ASSIGN_OR_RETURN(Program program, Compile(profile));
  MOAT_ASSIGN_OR_RETURN(std::string encoded, Encode(program, key));
  // The program is correct either way; a cache that cannot be written only costs time.
  if (auto w = sys::WriteFileAtomic(path, encoded, 0600); !w)
    MOAT_LOG(kWarning, "seccomp cache: storing %s: %s", path.c_str(), w.error().message.c_str());
  if (outcome) *outcome = result;
  return program;
}

}  // namespace moat::seccomp
