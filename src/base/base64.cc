#include "base/base64.h"

#include <array>
#include <cstdint>

#include "base/strings.h"

namespace moat {
namespace {

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// Value of each byte in the alphabet: 0..63; 64 for '+' '/' (standard only), 65 for '-' '_'
// (URL only) mapped below; 255 for bytes of neither.
struct Table {
  std::array<uint8_t, 256> value{};
  std::array<uint8_t, 256> kind{};  // 0 shared, 1 standard only, 2 URL only, 3 invalid
  constexpr Table() {
    for (auto& k : kind) k = 3;
    for (int i = 0; i < 64; ++i) {
      auto s = static_cast<uint8_t>(kStd[i]), u = static_cast<uint8_t>(kUrl[i]);
      value[s] = static_cast<uint8_t>(i);
      value[u] = static_cast<uint8_t>(i);
      kind[s] = s == u ? 0 : 1;
      if (s != u) kind[u] = 2;
    }
  }
};
constexpr Table kTable;

}  // namespace

std::string Base64Encode(std::string_view data, Base64Alphabet alphabet) {
  const char* a = alphabet == Base64Alphabet::kUrl ? kUrl : kStd;
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(data[k])); };
  for (; i + 3 <= data.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += a[v >> 18 & 63];
    out += a[v >> 12 & 63];
    out += a[v >> 6 & 63];
    out += a[v & 63];
  }
  size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t v = byte(i) << 16 | (rest == 2 ? byte(i + 1) << 8 : 0);
    out += a[v >> 18 & 63];
    out += a[v >> 12 & 63];
    out += rest == 2 ? a[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  text = TrimWhitespace(text);
  size_t pad = 0;
  while (!text.empty() && text.back() == '=' && pad < 2) {
    text.remove_suffix(1);
    ++pad;
  }
  if (pad > 0 && (text.size() + pad) % 4 != 0) return std::nullopt;
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  uint8_t seen = 0;  // alphabet-specific kinds met (1 standard, 2 URL)
  for (char c : text) {
    auto b = static_cast<uint8_t>(c);
    uint8_t kind = kTable.kind[b];
    if (kind == 3) return std::nullopt;
    seen |= kind;
    if (seen == 3) return std::nullopt;  // both alphabets mixed
    acc = acc << 6 | kTable.value[b];
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>(acc >> bits & 0xff);
    }
  }
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace moat
