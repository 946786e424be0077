#include "cli/progress.h"

#include <algorithm>

#include "base/strings.h"
#include "base/sys/tty.h"
#include "cli/format.h"
#include "cli/json.h"

namespace moat::cli {

ProgressDisplay::ProgressDisplay(FILE* out, bool quiet)
    : out_(out), quiet_(quiet), tty_(sys::IsTerminal(fileno(out))) {}

Result<void> ProgressDisplay::Feed(std::string_view d) {
  pending_.append(d);
  size_t nl;
  while ((nl = pending_.find('\n')) != std::string::npos) {
    std::string line = pending_.substr(0, nl);
    pending_.erase(0, nl + 1);
    MOAT_TRY(Line(line));
  }
  return Ok();
}

Result<void> ProgressDisplay::Finish() {
  MOAT_TRY(Line(pending_));
  pending_.clear();
  if (!error_.empty()) return Fail(ErrorKind::kInternal, "%s", error_.c_str());
  return Ok();
}

Result<void> ProgressDisplay::Line(const std::string& line) {
  if (TrimWhitespace(line).empty()) return Ok();
  MOAT_ASSIGN_OR_RETURN(Json m, ParseJson(line));
  std::string err = GetString(m, "error");
  if (const Json* ed = Member(m, "errorDetail"); err.empty() && ed) err = GetString(*ed, "message");
  if (!err.empty()) {
    error_ = err;
    return Ok();
  }
  if (const Json* aux = Member(m, "aux")) digest_ = GetString(*aux, "Digest");
  std::string status = GetString(m, "status");
  if (StartsWith(status, "Digest: ")) digest_ = status.substr(8);
  if (quiet_) return Ok();
  if (std::string s = GetString(m, "stream"); !s.empty()) {
    fputs(s.c_str(), out_);
    rows_.clear();
    fflush(out_);
  }
  if (status.empty()) return Ok();
  std::string id = GetString(m, "id");
  int64_t current = -1, total = -1;
  if (const Json* pd = Member(m, "progressDetail")) {
    current = GetInt(*pd, "current", -1);
    total = GetInt(*pd, "total", -1);
  }
  std::string text = (id.empty() ? "" : id + ": ") + status;
  if (current >= 0) text += " " + Bar(current, total);
  if (!tty_) {
    // Byte-count updates are noise in a log: only changes of status are printed.
    if (current >= 0 && !id.empty() && last_status_[id] == status) return Ok();
    if (!id.empty()) last_status_[id] = status;
    fprintf(out_, "%s\n", text.c_str());
    fflush(out_);
    return Ok();
  }
  if (id.empty()) {
    fprintf(out_, "%s\n", text.c_str());
    rows_.clear();  // lines above are not redrawn any more
    fflush(out_);
    return Ok();
  }
  auto it = rows_.find(id);
  if (it == rows_.end()) {
    rows_[id] = next_row_++;
    fprintf(out_, "%s\n", text.c_str());
  } else {
    int up = next_row_ - it->second;
    fprintf(out_, "\033[%dA\r\033[K%s\033[%dB\r", up, text.c_str(), up);
  }
  fflush(out_);
  return Ok();
}

std::string ProgressDisplay::Bar(int64_t current, int64_t total) {
  std::string size = HumanSize(static_cast<double>(current));
  if (total <= 0) return size;
  int width = 40;
  int filled = static_cast<int>(std::min<int64_t>(current, total) * width / total);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>';
  bar.resize(static_cast<size_t>(width), ' ');
  return "[" + bar + "] " + size + "/" + HumanSize(static_cast<double>(total));
}

}  // namespace moat::cli
