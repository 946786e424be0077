#include "image/decompress.h"

#include <isa-l/igzip_lib.h>
#include <poll.h>
#include <zstd.h>

#include <cstring>

#include "base/check.h"
#include "base/sys/fdio.h"
#include "base/sys/fileops.h"
#include "base/sys/io.h"
#include "base/sys/socket_io.h"
#include "base/sys/spawn.h"

namespace moat::image {
namespace {
constexpr size_t kInBuf = 1 << 17;
}  // namespace

const char* CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone: return "none";
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
  }
  return "?";
}

struct DecompressReader::State {
  inflate_state gz;
  bool gz_member_done = false;
  ZSTD_DStream* zs = nullptr;
  bool zs_frame_done = true;
  ~State() {
    if (zs) ZSTD_freeDStream(zs);
  }
};

DecompressReader::DecompressReader(int fd, int cancel_fd)
    : fd_(fd),
      cancel_fd_(cancel_fd),
      in_buf_(new uint8_t[kInBuf]),
      st_(std::make_unique<State>()) {}
DecompressReader::~DecompressReader() = default;

Result<size_t> DecompressReader::Fill() {
  if (in_pos_ > 0 && in_pos_ < in_len_) {
    memmove(in_buf_.get(), in_buf_.get() + in_pos_, in_len_ - in_pos_);
  }
  in_len_ -= in_pos_;
  in_pos_ = 0;
  if (in_eof_ || in_len_ == kInBuf) return 0;
  if (cancel_fd_ >= 0) {
    // Only this reader reads `fd_`: once poll reports it readable (or hung up), read does not
    // block.
    struct pollfd fds[2] = {{fd_, POLLIN, 0}, {cancel_fd_, POLLIN, 0}};
    MOAT_TRY(sys::poll(fds, 2, -1));
    if (fds[1].revents != 0) return Fail(ErrorKind::kUnavailable, "layer read cancelled");
  }
  MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(fd_, in_buf_.get() + in_len_, kInBuf - in_len_));
  if (n == 0) in_eof_ = true;
  in_len_ += n;
  in_total_ += n;
  return n;
}

Result<void> DecompressReader::Detect() {
  while (in_len_ < 4 && !in_eof_) MOAT_TRY(Fill());
  const uint8_t* b = in_buf_.get();
  if (in_len_ >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
    compression_ = Compression::kGzip;
    isal_inflate_init(&st_->gz);
    st_->gz.crc_flag = ISAL_GZIP;
  } else if (in_len_ >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) {
    compression_ = Compression::kZstd;
    st_->zs = ZSTD_createDStream();
    MOAT_CHECK(st_->zs != nullptr);
    ZSTD_initDStream(st_->zs);
  }
  detected_ = true;
  return Ok();
}

Result<size_t> DecompressReader::Read(char* buf, size_t len) {
  if (!detected_) MOAT_TRY(Detect());
  if (len == 0) return 0;
  switch (compression_) {
    case Compression::kNone: {
      if (in_pos_ == in_len_) {
        in_pos_ = in_len_ = 0;
        MOAT_TRY(Fill());
      }
      size_t n = std::min(len, in_len_ - in_pos_);
      memcpy(buf, in_buf_.get() + in_pos_, n);
      in_pos_ += n;
      return n;
    }
    case Compression::kGzip: {
      inflate_state& s = st_->gz;
      for (;;) {
        if (st_->gz_member_done) {
          // Concatenated gzip members (gzip(1) allows them): continue with the next one, if any.
          if (in_pos_ == in_len_) MOAT_TRY(Fill());
          if (in_pos_ == in_len_) return 0;
          isal_inflate_reset(&s);
          s.crc_flag = ISAL_GZIP;
          st_->gz_member_done = false;
        }
        if (in_pos_ == in_len_) {
          MOAT_TRY(Fill());
          if (in_pos_ == in_len_)
            return Fail(ErrorKind::kInvalidArgument, "gzip stream truncated");
        }
        s.next_in = in_buf_.get() + in_pos_;
        s.avail_in = static_cast<uint32_t>(in_len_ - in_pos_);
        s.next_out = reinterpret_cast<uint8_t*>(buf);
        s.avail_out = static_cast<uint32_t>(std::min<size_t>(len, 1u << 30));
        uint32_t before = s.avail_out;
        int rc = isal_inflate(&s);
        in_pos_ = in_len_ - s.avail_in;
        if (rc != ISAL_DECOMP_OK)
          return Fail(ErrorKind::kInvalidArgument, "corrupt gzip data (isal_inflate %d)", rc);
        if (s.block_state == ISAL_BLOCK_FINISH) st_->gz_member_done = true;
        size_t produced = before - s.avail_out;
        if (produced > 0) return produced;
      }
    }
    case Compression::kZstd: {
      for (;;) {
        if (in_pos_ == in_len_) {
          MOAT_TRY(Fill());
          if (in_pos_ == in_len_) {
            if (!st_->zs_frame_done)
              return Fail(ErrorKind::kInvalidArgument, "zstd stream truncated");
            return 0;
          }
        }
        ZSTD_inBuffer in{in_buf_.get() + in_pos_, in_len_ - in_pos_, 0};
        ZSTD_outBuffer out{buf, len, 0};
        size_t rc = ZSTD_decompressStream(st_->zs, &out, &in);
        in_pos_ += in.pos;
        if (ZSTD_isError(rc))
          return Fail(ErrorKind::kInvalidArgument, "corrupt zstd data: %s",
                      ZSTD_getErrorName(rc));
        st_->zs_frame_done = rc == 0;
        if (out.pos > 0) return out.pos;
      }
    }
  }
  return 0;
}

struct GzipWriter::State {
  isal_zstream s;
  std::string level_buf = std::string(ISAL_DEF_LVL1_DEFAULT, '\0');
  std::string out = std::string(1 << 18, '\0');
};

GzipWriter::GzipWriter(Sink sink) : sink_(std::move(sink)), st_(std::make_unique<State>()) {
  isal_zstream& s = st_->s;
  isal_deflate_init(&s);
  s.level = 1;
  s.level_buf = reinterpret_cast<uint8_t*>(st_->level_buf.data());
  s.level_buf_size = static_cast<uint32_t>(st_->level_buf.size());
  s.gzip_flag = IGZIP_GZIP;
  s.flush = NO_FLUSH;
}

GzipWriter::~GzipWriter() = default;

Result<void> GzipWriter::Write(std::string_view data) {
  // avail_in is 32 bits: big writes go in pieces.
  while (data.size() > (1u << 30)) {
    MOAT_TRY(Run(data.substr(0, 1u << 30), false));
    data.remove_prefix(1u << 30);
  }
  return Run(data, false);
}

Result<void> GzipWriter::Finish() { return Run({}, true); }

Result<void> GzipWriter::Run(std::string_view data, bool end) {
  isal_zstream& s = st_->s;
  s.end_of_stream = end ? 1 : 0;
  s.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uint32_t>(data.size());
  for (;;) {
    s.next_out = reinterpret_cast<uint8_t*>(st_->out.data());
    s.avail_out = static_cast<uint32_t>(st_->out.size());
    if (int rc = isal_deflate(&s); rc != COMP_OK)
      return Fail(ErrorKind::kInternal, "gzip: isal_deflate %d", rc);
    size_t n = st_->out.size() - s.avail_out;
    if (n) MOAT_TRY(sink_({st_->out.data(), n}));
    if (end ? s.internal_state.state == ZSTATE_END : s.avail_in == 0 && s.avail_out != 0)
      return Ok();
  }
}

std::string GzipCompress(const std::string& data) {
  isal_zstream s;
  isal_deflate_init(&s);
  std::string level_buf(ISAL_DEF_LVL1_DEFAULT, '\0');
  s.level = 1;
  s.level_buf = reinterpret_cast<uint8_t*>(level_buf.data());
  s.level_buf_size = static_cast<uint32_t>(level_buf.size());
  s.gzip_flag = IGZIP_GZIP;
  s.end_of_stream = 1;
  s.flush = NO_FLUSH;
  s.next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uint32_t>(data.size());
  std::string out;
  char chunk[1 << 16];
  do {
    s.next_out = reinterpret_cast<uint8_t*>(chunk);
    s.avail_out = sizeof chunk;
    MOAT_CHECK(isal_deflate(&s) == COMP_OK);
    out.append(chunk, sizeof chunk - s.avail_out);
  } while (s.internal_state.state != ZSTATE_END);
  return out;
}

std::string ZstdCompress(const std::string& data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  MOAT_CHECK(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

}  // namespace moat::image
