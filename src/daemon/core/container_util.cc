#include <sys/random.h>

#include <ctime>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "base/sys/spawn.h"
#include "daemon/core/container_internal.h"

namespace moat::daemon::core {

std::string FormatTime(int64_t nano) {
  if (nano <= 0) return "0001-01-01T00:00:00Z";
  time_t secs = static_cast<time_t>(nano / 1'000'000'000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return StrFormat("%s.%09lldZ", buf, static_cast<long long>(nano % 1'000'000'000));
}

int64_t ParseTime(const std::string& s) {
  struct tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) return 0;
  int64_t secs = timegm(&tm);
  int64_t frac = 0;
  if (*rest == '.') {
    ++rest;
    int digits = 0;
    while (*rest >= '0' && *rest <= '9') {
      if (digits < 9) frac = frac * 10 + (*rest - '0'), ++digits;
      ++rest;
    }
    while (digits++ < 9) frac *= 10;
  }
  if (secs <= 0) return 0;
  return secs * 1'000'000'000 + frac;
}

std::string HumanDuration(int64_t s) {
  if (s < 1) return "Less than a second";
  if (s == 1) return "1 second";
  if (s < 60) return StrFormat("%lld seconds", static_cast<long long>(s));
  int64_t m = s / 60;
  if (m == 1) return "About a minute";
  if (m < 60) return StrFormat("%lld minutes", static_cast<long long>(m));
  int64_t h = (s + 1800) / 3600;
  if (h == 1) return "About an hour";
  if (h < 48) return StrFormat("%lld hours", static_cast<long long>(h));
  if (h < 24 * 7 * 2) return StrFormat("%lld days", static_cast<long long>(h / 24));
  if (h < 24 * 30 * 2) return StrFormat("%lld weeks", static_cast<long long>(h / 24 / 7));
  if (h < 24 * 365 * 2) return StrFormat("%lld months", static_cast<long long>(h / 24 / 30));
  return StrFormat("%lld years", static_cast<long long>(h / 24 / 365));
}

Result<void> RunTool(const std::vector<std::string>& argv, const std::string& input,
                     const std::string& exec_path) {
  // The input (an update request: a few hundred bytes) is written before the spawn: far below
  // a pipe's capacity, it cannot block.
  if (input.size() > 4096) return Fail(ErrorKind::kInternal, "%s: input too large", argv[0].c_str());
  MOAT_ASSIGN_OR_RETURN(auto in, sys::pipe2(0));
  MOAT_TRY(sys::WriteAll(in.second.get(), input));
  in.second.reset();
  MOAT_ASSIGN_OR_RETURN(sys::CollectedRun run,
                        sys::RunCollectingOutput(exec_path.empty() ? argv[0] : exec_path, argv,
                                                 in.first.get(), false));
  if (run.Succeeded()) return {};
  std::string msg(TrimWhitespace(run.output));
  if (msg.rfind("moat: ", 0) == 0) msg.erase(0, 6);
  if (msg.empty()) msg = StrFormat("%s exited with status %d", argv[0].c_str(), run.status);
  return Fail(ErrorKind::kInternal, "%s", msg.c_str());
}

std::string RandomId() {
  unsigned char buf[32];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = getrandom(buf + got, sizeof buf - got, 0);
    MOAT_CHECK(n > 0 || errno == EINTR);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (unsigned char b : buf) out += kHex[b >> 4], out += kHex[b & 15];
  return out;
}

std::string RandomName() {
  static const char* kLeft[] = {"brave", "calm", "eager", "fervent", "gentle", "happy", "jolly",
                                "keen", "lucid", "modest", "nifty", "quirky", "sharp", "vigilant",
                                "wizardly", "zealous"};
  static const char* kRight[] = {"babbage", "curie", "dijkstra", "euler", "fermi", "hopper",
                                 "knuth", "lamport", "lovelace", "noether", "pascal", "ritchie",
                                 "shannon", "thompson", "turing", "wozniak"};
  unsigned char r[2];
  while (getrandom(r, 2, 0) != 2) {
  }
  return std::string(kLeft[r[0] % 16]) + "_" + kRight[r[1] % 16];
}

}  // namespace moat::daemon::core
