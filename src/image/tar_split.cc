#include "image/tar_split.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "base/strings.h"
#include "base/sys/fdio.h"
#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "base/sys/seccomp.h"
#include "base/unique_fd.h"
#include "image/digest.h"

namespace moat::image {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'A', 'T', 'T', 'S', '0', '1'};
constexpr size_t kTrailerSize = 32;
constexpr size_t kBlock = 512;
// Raw bytes are written as records of at most this many bytes.
constexpr size_t kRawFlush = 64 << 10;
// A PAX header's data is parsed (for "size" and sparse keys) only up to this size.
constexpr size_t kMaxPax = 1 << 20;
// Assemble: bounds on what a (hostile) file may make the daemon hold.
constexpr size_t kMaxPath = 4096;
constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint64_t GetU64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Decodes a varint at s[*pos]. nullopt if `s` ends first (more bytes may come) or it is longer
// than 10 bytes (then *bad is set).
std::optional<uint64_t> GetVarint(std::string_view s, size_t* pos, bool* bad) {
  uint64_t v = 0;
  for (size_t i = 0; i < 10; ++i) {
    if (*pos + i >= s.size()) return std::nullopt;
    auto b = static_cast<unsigned char>(s[*pos + i]);
    if (i == 9 && b > 1) break;
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *pos += i + 1;
      return v;
    }
  }
  *bad = true;
  return std::nullopt;
}

// A tar number field: octal (leading spaces or NULs, ended by a space or NUL) or GNU base-256
// (first byte 0x80). nullopt if malformed or negative.
std::optional<uint64_t> TarNumber(const unsigned char* f, size_t len) {
  if (f[0] == 0x80) {
    uint64_t v = 0;
    for (size_t i = 1; i < len; ++i) {
      if (v >> 56) return std::nullopt;
      v = (v << 8) | f[i];
    }
    return v;
  }
  if (f[0] & 0x80) return std::nullopt;
  size_t i = 0;
  while (i < len && (f[i] == ' ' || f[i] == 0)) ++i;
  uint64_t v = 0;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; ++i) {
    if (v >> 60) return std::nullopt;
    v = v * 8 + (f[i] - '0');
  }
  for (; i < len; ++i)
    if (f[i] != ' ' && f[i] != 0) return std::nullopt;
  return v;
}

bool ChecksumOk(const unsigned char* h) {
  auto want = TarNumber(h + 148, 8);
  if (!want) return false;
  uint64_t u = 0;
  int64_t s = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];
    u += c;
    s += static_cast<signed char>(c);
  }
  return *want == u || static_cast<int64_t>(*want) == s;
}

// zstd frames written to an fd.
class ZstdOut {
 public:
  explicit ZstdOut(int fd) : fd_(fd), cctx_(ZSTD_createCCtx()), buf_(ZSTD_CStreamOutSize(), 0) {
    ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, 1);
  }
  ~ZstdOut() { ZSTD_freeCCtx(cctx_); }
  ZstdOut(const ZstdOut&) = delete;
  ZstdOut& operator=(const ZstdOut&) = delete;

  Result<void> Write(std::string_view data) { return Run(data, ZSTD_e_continue); }
  // Ends the current frame; the next Write starts another.
  Result<void> EndFrame() { return Run({}, ZSTD_e_end); }
  uint64_t written() const { return written_; }
  int fd() const { return fd_; }

 private:
  Result<void> Run(std::string_view data, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    for (;;) {
      ZSTD_outBuffer out{buf_.data(), buf_.size(), 0};
      size_t rc = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(rc))
        return Fail(ErrorKind::kInternal, "zstd: %s", ZSTD_getErrorName(rc));
      if (out.pos) {
        MOAT_TRY(sys::WriteAll(fd_, {buf_.data(), out.pos}));
        written_ += out.pos;
      }
      bool done = mode == ZSTD_e_end ? rc == 0 : in.pos == in.size;
      if (done) return Ok();
    }
  }

  int fd_;
  ZSTD_CCtx* cctx_;
  std::string buf_;
  uint64_t written_ = 0;
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// Recording

struct TarSplitRecorder::State {
  explicit State(int fd) : out(fd) {}

  enum class Mode { kHeader, kFile, kMeta, kPadding, kTail };
  ZstdOut out;
  bool failed = false;
  std::string why;
  Mode mode = Mode::kHeader;
  unsigned char hdr[kBlock];
  size_t hdr_len = 0;
  uint64_t remaining = 0;  // of the current kFile / kMeta / kPadding region
  uint64_t padding = 0;    // after the current kFile / kMeta region
  bool capture_pax = false;
  std::string pax;
  std::optional<uint64_t> pax_size;  // from a PAX header, for the next entry
  std::string raw;
  std::vector<uint64_t> sizes;
  uint64_t pos = 0;  // stream offset of the next byte fed

  void GiveUp(std::string reason) {
    if (failed) return;
    failed = true;
    why = std::move(reason);
    raw.clear();
    pax.clear();
  }

  void Emit(std::string_view rec) {
    if (failed) return;
    if (auto r = out.Write(rec); !r) GiveUp("write: " + r.error().message);
  }

  void FlushRaw() {
    if (raw.empty() || failed) return;
    std::string head = "R";
    PutVarint(&head, raw.size());
    Emit(head);
    Emit(raw);
    raw.clear();
  }

  void Raw(const char* p, size_t n) {
    raw.append(p, n);
    if (raw.size() >= kRawFlush) FlushRaw();
  }

  // PAX records "<len> <key>=<value>\n": the keys that change how the stream is laid out.
  void ParsePax(bool global) {
    std::string_view s = pax;
    while (!s.empty() && !failed) {
      size_t sp = s.find(' ');
      auto len = sp == std::string_view::npos ? std::nullopt : ParseUint64(s.substr(0, sp));
      if (!len || *len <= sp + 1 || *len > s.size() || s[*len - 1] != '\n') {
        // The padding of a PAX block may hold NULs after the last record.
        if (s.find_first_not_of('\0') != std::string_view::npos)
          GiveUp(StrFormat("malformed PAX header near offset %llu",
                           static_cast<unsigned long long>(pos)));
        return;
      }
      std::string_view rec = s.substr(sp + 1, *len - sp - 2);
      s.remove_prefix(*len);
      size_t eq = rec.find('=');
      if (eq == std::string_view::npos) {
        GiveUp("malformed PAX record");
        return;
      }
      std::string_view key = rec.substr(0, eq), value = rec.substr(eq + 1);
      if (StartsWith(key, "GNU.sparse.")) {
        GiveUp("sparse file");
      } else if (key == "size") {
        if (global) {
          GiveUp("global PAX size");
          return;
        }
        auto v = ParseUint64(value);
        if (!v) {
          GiveUp("bad PAX size");
          return;
        }
        pax_size = *v;
      }
    }
  }

  void Header() {
    bool zero = std::all_of(hdr, hdr + kBlock, [](unsigned char c) { return c == 0; });
    Raw(reinterpret_cast<const char*>(hdr), kBlock);
    hdr_len = 0;
    if (zero) {
      mode = Mode::kTail;
      return;
    }
    if (!ChecksumOk(hdr)) {
      GiveUp(StrFormat("tar header checksum mismatch at offset %llu",
                       static_cast<unsigned long long>(pos - kBlock)));
      return;
    }
    char type = static_cast<char>(hdr[156]);
    auto size = TarNumber(hdr + 124, 12);
    if (!size) {
      GiveUp("bad tar size field");
      return;
    }
    bool extension = type == 'x' || type == 'g' || type == 'L' || type == 'K';
    if (!extension && pax_size) {
      size = pax_size;
      pax_size.reset();
    }
    uint64_t data = *size;
    if (type == '1' || type == '2' || type == '3' || type == '4' || type == '5' || type == '6')
      data = 0;
    if (type == 'S') {
      GiveUp("sparse file");
      return;
    }
    padding = (kBlock - data % kBlock) % kBlock;
    remaining = data;
    bool file = type == '0' || type == '\0' || type == '7';
    if (file && data > 0) {
      FlushRaw();
      std::string rec = "F";
      PutVarint(&rec, data);
      Emit(rec);
      sizes.push_back(data);
      mode = Mode::kFile;
      return;
    }
    capture_pax = type == 'x' || type == 'g';
    if (capture_pax && data > kMaxPax) {
      GiveUp("PAX header too large");
      return;
    }
    pax.clear();
    mode = data > 0 ? Mode::kMeta : (padding ? Mode::kPadding : Mode::kHeader);
    if (data == 0 && capture_pax) ParsePax(type == 'g');
  }

  void Feed(const char* p, size_t n) {
    while (n > 0 && !failed) {
      switch (mode) {
        case Mode::kTail:
          Raw(p, n);
          pos += n;
          return;
        case Mode::kHeader: {
          size_t take = std::min(n, kBlock - hdr_len);
          memcpy(hdr + hdr_len, p, take);
          hdr_len += take;
          p += take;
          n -= take;
          pos += take;
          if (hdr_len == kBlock) Header();
          break;
        }
        case Mode::kFile:
        case Mode::kMeta: {
          size_t take = static_cast<size_t>(std::min<uint64_t>(n, remaining));
          if (mode == Mode::kMeta) {
            Raw(p, take);
            if (capture_pax) pax.append(p, take);
          }
          p += take;
          n -= take;
          pos += take;
          remaining -= take;
          if (remaining == 0) {
            if (mode == Mode::kMeta && capture_pax) {
              ParsePax(static_cast<char>(hdr[156]) == 'g');
              capture_pax = false;
            }
            remaining = padding;
            mode = padding ? Mode::kPadding : Mode::kHeader;
          }
          break;
        }
        case Mode::kPadding: {
          size_t take = static_cast<size_t>(std::min<uint64_t>(n, remaining));
          Raw(p, take);
          p += take;
          n -= take;
          pos += take;
          remaining -= take;
          if (remaining == 0) mode = Mode::kHeader;
          break;
        }
      }
    }
  }
};

TarSplitRecorder::TarSplitRecorder(int out_fd) : s_(std::make_unique<State>(out_fd)) {}
TarSplitRecorder::~TarSplitRecorder() = default;

void TarSplitRecorder::Feed(const char* data, size_t n) { s_->Feed(data, n); }
bool TarSplitRecorder::usable() const { return !s_->failed; }
const std::string& TarSplitRecorder::why_not() const { return s_->why; }
const std::vector<uint64_t>& TarSplitRecorder::file_sizes() const { return s_->sizes; }

Result<void> TarSplitRecorder::Finish(const std::vector<std::string>& paths) {
  State& s = *s_;
  if (!s.failed && s.mode == State::Mode::kFile && s.remaining > 0)
    s.GiveUp("the stream ends inside a file");
  if (s.failed)
    return Fail(ErrorKind::kUnsupported, "tar-split not recorded: %s", s.why.c_str());
  if (paths.size() != s.sizes.size())
    return Fail(ErrorKind::kUnsupported,
                "tar-split not recorded: %zu files in the stream, %zu given", s.sizes.size(),
                paths.size());
  // A header cut short by the end of the stream is kept as it is.
  if (s.hdr_len) s.Raw(reinterpret_cast<const char*>(s.hdr), s.hdr_len);
  s.FlushRaw();
  s.Emit("E");
  if (s.failed) return Fail(ErrorKind::kInternal, "tar-split: %s", s.why.c_str());
  MOAT_TRY(s.out.EndFrame());
  uint64_t table_offset = s.out.written();
  std::string table;
  for (size_t i = 0; i < paths.size(); ++i) {
    PutVarint(&table, s.sizes[i]);
    PutVarint(&table, paths[i].size());
    table += paths[i];
    if (table.size() >= kRawFlush) {
      MOAT_TRY(s.out.Write(table));
      table.clear();
    }
  }
  MOAT_TRY(s.out.Write(table));
  MOAT_TRY(s.out.EndFrame());
  char trailer[kTrailerSize];
  memcpy(trailer, kMagic, 8);
  PutU64(trailer + 8, table_offset);
  PutU64(trailer + 16, s.pos);
  PutU64(trailer + 24, paths.size());
  return sys::WriteAll(s.out.fd(), {trailer, kTrailerSize});
}

// ---------------------------------------------------------------------------------------------
// Assembling

namespace {

struct Trailer {
  uint64_t file_size = 0;
  uint64_t table_offset = 0;
  uint64_t tar_bytes = 0;
  uint64_t files = 0;
};

Result<Trailer> ReadTrailer(int fd) {
  MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(fd));
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) < kTrailerSize)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: not a tar-split file (too short)");
  unsigned char t[kTrailerSize];
  MOAT_ASSIGN_OR_RETURN(size_t n, sys::pread(fd, t, kTrailerSize, st.st_size - kTrailerSize));
  if (n != kTrailerSize || memcmp(t, kMagic, 8) != 0)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: not a tar-split file (bad trailer)");
  Trailer tr;
  tr.file_size = static_cast<uint64_t>(st.st_size);
  tr.table_offset = GetU64(t + 8);
  tr.tar_bytes = GetU64(t + 16);
  tr.files = GetU64(t + 24);
  if (tr.table_offset > tr.file_size - kTrailerSize)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: table offset out of range");
  return tr;
}

// Decompresses the zstd bytes of `fd` in [begin, end), a piece at a time.
class ZstdIn {
 public:
  ZstdIn(int fd, uint64_t begin, uint64_t end)
      : fd_(fd), off_(begin), end_(end), dctx_(ZSTD_createDCtx()), in_(ZSTD_DStreamInSize(), 0),
        out_(ZSTD_DStreamOutSize(), 0) {}
  ~ZstdIn() { ZSTD_freeDCtx(dctx_); }
  ZstdIn(const ZstdIn&) = delete;
  ZstdIn& operator=(const ZstdIn&) = delete;

  // The next decompressed piece; empty at the end of the range.
  Result<std::string_view> Next() {
    for (;;) {
      if (in_pos_ == in_len_) {
        if (off_ >= end_) {
          if (!frame_done_)
            return Fail(ErrorKind::kInvalidArgument, "tar-split: truncated zstd frame");
          return std::string_view();
        }
        size_t want = static_cast<size_t>(std::min<uint64_t>(in_.size(), end_ - off_));
        MOAT_ASSIGN_OR_RETURN(size_t n, sys::pread(fd_, in_.data(), want, off_));
        if (n == 0) return Fail(ErrorKind::kInvalidArgument, "tar-split: file shrank");
        off_ += n;
        in_pos_ = 0;
        in_len_ = n;
      }
      ZSTD_inBuffer in{in_.data(), in_len_, in_pos_};
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      in_pos_ = in.pos;
      if (ZSTD_isError(rc))
        return Fail(ErrorKind::kInvalidArgument, "tar-split: corrupt zstd data: %s",
                    ZSTD_getErrorName(rc));
      frame_done_ = rc == 0;
      if (out.pos) return std::string_view(out_.data(), out.pos);
    }
  }

 private:
  int fd_;
  uint64_t off_, end_;
  ZSTD_DCtx* dctx_;
  std::string in_, out_;
  size_t in_pos_ = 0, in_len_ = 0;
  bool frame_done_ = true;
};

struct TableEntry {
  uint64_t size;
  std::string path;
};

bool SafeRelativePath(std::string_view p) {
  if (p.empty() || p.size() > kMaxPath || p[0] == '/' || p.find('\0') != std::string_view::npos)
    return false;
  for (auto& c : StrSplit(std::string(p), '/'))
    if (c.empty() || c == "." || c == "..") return false;
  return true;
}

// The file table, read one entry at a time beside the records (memory stays bounded whatever
// the file claims).
class TableReader {
 public:
  TableReader(int fd, const Trailer& tr)
      : in_(fd, tr.table_offset, tr.file_size - kTrailerSize), tr_(tr) {}

  // The next entry; nullopt at the end of the table.
  Result<std::optional<TableEntry>> Next() {
    for (;;) {
      size_t pos = pos_;
      bool bad = false;
      auto size = GetVarint(buf_, &pos, &bad);
      auto len = size ? GetVarint(buf_, &pos, &bad) : std::nullopt;
      if (bad || (len && *len > kMaxPath))
        return Fail(ErrorKind::kInvalidArgument, "tar-split: malformed file table entry %llu",
                    static_cast<unsigned long long>(count_));
      if (len && buf_.size() - pos >= *len) {
        TableEntry e{*size, buf_.substr(pos, *len)};
        pos_ = pos + *len;
        if (!SafeRelativePath(e.path))
          return Fail(ErrorKind::kInvalidArgument, "tar-split: file table entry %llu: bad path",
                      static_cast<unsigned long long>(count_));
        if (e.size > tr_.tar_bytes)
          return Fail(ErrorKind::kInvalidArgument, "tar-split: file %s larger than the tar",
                      e.path.c_str());
        if (++count_ > tr_.files)
          return Fail(ErrorKind::kInvalidArgument, "tar-split: more files in the table than %llu",
                      static_cast<unsigned long long>(tr_.files));
        return std::optional<TableEntry>(std::move(e));
      }
      buf_.erase(0, pos_);
      pos_ = 0;
      MOAT_ASSIGN_OR_RETURN(std::string_view piece, in_.Next());
      if (piece.empty()) {
        if (!buf_.empty())
          return Fail(ErrorKind::kInvalidArgument, "tar-split: the file table ends inside entry %llu",
                      static_cast<unsigned long long>(count_));
        return std::optional<TableEntry>();
      }
      buf_.append(piece);
    }
  }

  uint64_t count() const { return count_; }

 private:
  ZstdIn in_;
  const Trailer& tr_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t count_ = 0;
};

// Opens a regular file of the tree for reading without opening anything else: the path is
// resolved inside the tree to an O_PATH fd first (a device node or FIFO is never opened), and
// only a regular file of the recorded size is reopened for reading.
Result<UniqueFd> OpenTreeFile(int root_fd, const TableEntry& f) {
  auto path_fd = sys::openat2(root_fd, f.path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, kResolve);
  if (!path_fd)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: layer file %s: %s", f.path.c_str(),
                path_fd.error().message.c_str());
  MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(path_fd->get()));
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != f.size)
    return Fail(ErrorKind::kInvalidArgument,
                "tar-split: layer file %s is not the regular file of %llu bytes it was",
                f.path.c_str(), static_cast<unsigned long long>(f.size));
  return sys::open(StrFormat("/proc/self/fd/%d", path_fd->get()), O_RDONLY | O_CLOEXEC);
}

}  // namespace

Result<TarSplitInfo> ReadTarSplitInfo(int fd) {
  MOAT_ASSIGN_OR_RETURN(Trailer tr, ReadTrailer(fd));
  return TarSplitInfo{tr.tar_bytes, tr.files};
}

Result<void> AssembleTar(int split_fd, int root_fd, const std::string& diff_id,
                         const std::function<Result<void>(std::string_view)>& sink) {
  MOAT_ASSIGN_OR_RETURN(std::string want_hex, DigestHex(diff_id));
  MOAT_ASSIGN_OR_RETURN(Trailer tr, ReadTrailer(split_fd));
  TableReader table(split_fd, tr);
  Sha256 sha;
  uint64_t total = 0;
  auto put = [&](std::string_view data) -> Result<void> {
    if (data.size() > tr.tar_bytes - total)
      return Fail(ErrorKind::kInvalidArgument, "tar-split: more than the recorded %llu bytes",
                  static_cast<unsigned long long>(tr.tar_bytes));
    total += data.size();
    sha.Update(data);
    return sink(data);
  };
  std::string filebuf;  // allocated with the first file
  auto put_file = [&](const TableEntry& f) -> Result<void> {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, OpenTreeFile(root_fd, f));
    if (filebuf.empty()) filebuf.resize(1 << 20);
    uint64_t left = f.size;
    while (left > 0) {
      MOAT_ASSIGN_OR_RETURN(
          size_t n, sys::read(fd.get(), filebuf.data(),
                              static_cast<size_t>(std::min<uint64_t>(left, filebuf.size()))));
      if (n == 0)
        return Fail(ErrorKind::kInvalidArgument, "tar-split: layer file %s ended early",
                    f.path.c_str());
      MOAT_TRY(put({filebuf.data(), n}));
      left -= n;
    }
    return Ok();
  };

  ZstdIn in(split_fd, 0, tr.table_offset);
  std::string pending;       // decompressed bytes not parsed yet
  uint64_t raw_left = 0;     // of the current 'R' record
  bool ended = false;
  for (;;) {
    MOAT_ASSIGN_OR_RETURN(std::string_view piece, in.Next());
    if (piece.empty()) break;
    if (ended) return Fail(ErrorKind::kInvalidArgument, "tar-split: data after the end record");
    // Raw bytes stream through without being copied into `pending`.
    if (raw_left > 0) {
      size_t take = static_cast<size_t>(std::min<uint64_t>(raw_left, piece.size()));
      MOAT_TRY(put(piece.substr(0, take)));
      raw_left -= take;
      piece.remove_prefix(take);
    }
    pending.append(piece);
    size_t pos = 0;
    while (pos < pending.size() && !ended) {
      if (raw_left > 0) {
        size_t take = static_cast<size_t>(std::min<uint64_t>(raw_left, pending.size() - pos));
        MOAT_TRY(put(std::string_view(pending).substr(pos, take)));
        raw_left -= take;
        pos += take;
        continue;
      }
      char kind = pending[pos];
      size_t p = pos + 1;
      if (kind == 'E') {
        ended = true;
        pos = p;
        break;
      }
      if (kind != 'R' && kind != 'F')
        return Fail(ErrorKind::kInvalidArgument, "tar-split: unknown record type 0x%02x",
                    static_cast<unsigned>(static_cast<unsigned char>(kind)));
      bool bad = false;
      auto v = GetVarint(pending, &p, &bad);
      if (bad) return Fail(ErrorKind::kInvalidArgument, "tar-split: malformed record length");
      if (!v) break;  // the rest comes with the next piece
      pos = p;
      if (kind == 'R') {
        if (*v == 0 || *v > tr.tar_bytes)
          return Fail(ErrorKind::kInvalidArgument, "tar-split: bad raw record length");
        raw_left = *v;
        continue;
      }
      MOAT_ASSIGN_OR_RETURN(std::optional<TableEntry> f, table.Next());
      if (!f || f->size != *v)
        return Fail(ErrorKind::kInvalidArgument,
                    "tar-split: file record %llu does not match the file table",
                    static_cast<unsigned long long>(table.count() - (f ? 1 : 0)));
      MOAT_TRY(put_file(*f));
    }
    pending.erase(0, pos);
  }
  if (!ended || !pending.empty() || raw_left > 0)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: the records end early");
  MOAT_ASSIGN_OR_RETURN(std::optional<TableEntry> extra, table.Next());
  if (extra)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: %llu of %llu files used",
                static_cast<unsigned long long>(table.count() - 1),
                static_cast<unsigned long long>(tr.files));
  if (table.count() != tr.files)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: %llu files in the table, %llu expected",
                static_cast<unsigned long long>(table.count()),
                static_cast<unsigned long long>(tr.files));
  if (total != tr.tar_bytes)
    return Fail(ErrorKind::kInvalidArgument, "tar-split: %llu bytes rebuilt, %llu recorded",
                static_cast<unsigned long long>(total),
                static_cast<unsigned long long>(tr.tar_bytes));
  std::string got = sha.HexDigest();
  if (got != want_hex)
    return Fail(ErrorKind::kInvalidArgument,
                "tar-split: the rebuilt layer is sha256:%s, not %s (the tree changed?)",
                got.c_str(), diff_id.c_str());
  return Ok();
}

}  // namespace moat::image
