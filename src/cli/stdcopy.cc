#include "cli/stdcopy.h"

namespace moat::cli {

Result<void> StdcopyDemuxer::Feed(std::string_view data) {
  while (!data.empty()) {
    if (remaining_ == 0) {
      size_t need = 8 - header_.size();
      size_t take = std::min(need, data.size());
      header_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (header_.size() < 8) return Ok();
      uint8_t s = static_cast<uint8_t>(header_[0]);
      if (s > 3)
        return Fail(ErrorKind::kInvalidArgument,
                    "unrecognized stream %u in multiplexed output (is the container a tty?)", s);
      stream_ = static_cast<StdStream>(s);
      remaining_ = (static_cast<uint32_t>(static_cast<uint8_t>(header_[4])) << 24) |
                   (static_cast<uint32_t>(static_cast<uint8_t>(header_[5])) << 16) |
                   (static_cast<uint32_t>(static_cast<uint8_t>(header_[6])) << 8) |
                   static_cast<uint32_t>(static_cast<uint8_t>(header_[7]));
      header_.clear();
      continue;
    }
    size_t take = std::min<size_t>(remaining_, data.size());
    MOAT_TRY(sink_(stream_, data.substr(0, take)));
    remaining_ -= static_cast<uint32_t>(take);
    data.remove_prefix(take);
  }
  return Ok();
}

std::string StdcopyFrame(StdStream stream, std::string_view payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  out[4] = static_cast<char>(n >> 24);
  out[5] = static_cast<char>(n >> 16);
  out[6] = static_cast<char>(n >> 8);
  out[7] = static_cast<char>(n);
  return out + std::string(payload);
}

}  // namespace moat::cli
