#pragma once

// Docker's JSON message stream (load, import, pull, push) rendered for people: "stream" text as
// is; "status" lines, and on a terminal one line per layer id redrawn in place with a progress
// bar (elsewhere only changes of status, not byte counts); an "error" message becomes Finish()'s
// error. Not thread-safe.

#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace moat::cli {

class ProgressDisplay {
 public:
  ProgressDisplay(FILE* out, bool quiet);
  // Takes the next bytes of the stream (any split).
  Result<void> Feed(std::string_view d);
  // Ends the stream: the error it carried, if any.
  Result<void> Finish();
  // The digest an "aux" or "Digest: " message named ("" if none).
  const std::string& digest() const { return digest_; }

 private:
  Result<void> Line(const std::string& line);
  static std::string Bar(int64_t current, int64_t total);

  FILE* out_;
  bool quiet_;
  bool tty_;
  std::string pending_, error_, digest_;
  std::map<std::string, int> rows_;  // id -> row number since the last id-less line
  int next_row_ = 0;
  std::map<std::string, std::string> last_status_;
};

}  // namespace moat::cli
