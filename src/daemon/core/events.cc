#include "daemon/core/events.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/sys/fs.h"

namespace moat::daemon::core {
namespace {

constexpr size_t kKeep = 256;

bool FilterAccepts(const Json& filters, const char* key, const std::vector<std::string>& values) {
  if (!filters.is_object() || !filters.contains(key)) return true;
  const Json& f = filters[key];
  auto accepts = [&](const std::string& want) {
    for (const auto& v : values) {
      if (v == want) return true;
    }
    return false;
  };
  if (f.is_object()) {
    for (auto it = f.begin(); it != f.end(); ++it) {
      if (accepts(it.key())) return true;
    }
    return false;
  }
  if (f.is_array()) {
    for (const auto& v : f) {
      if (v.is_string() && accepts(v.get<std::string>())) return true;
    }
    return false;
  }
  return true;
}

}  // namespace

int64_t NowNano() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Json EventJson(const Event& e) {
  Json attrs = Json::object();
  for (const auto& [k, v] : e.attributes) attrs[k] = v;
  Json j = {{"Type", e.type},
            {"Action", e.action},
            {"Actor", {{"ID", e.id}, {"Attributes", attrs}}},
            {"scope", "local"},
            {"time", e.time_nano / 1'000'000'000},
            {"timeNano", e.time_nano}};
  if (e.type == "container" || e.type == "image") {
    j["status"] = e.action;
    j["id"] = e.id;
    if (e.attributes.count("image")) j["from"] = e.attributes.at("image");
  }
  return j;
}

bool EventMatches(const Event& e, const Json& filters) {
  std::vector<std::string> labels;
  for (const auto& [k, v] : e.attributes) labels.push_back(k + "=" + v), labels.push_back(k);
  std::vector<std::string> ids = {e.id};
  if (e.attributes.count("name")) ids.push_back(e.attributes.at("name"));
  std::vector<std::string> none;
  return FilterAccepts(filters, "type", {e.type}) && FilterAccepts(filters, "event", {e.action}) &&
         (e.type != "container" || FilterAccepts(filters, "container", ids)) &&
         FilterAccepts(filters, "image",
                       e.type == "image" ? ids
                                         : std::vector<std::string>{e.attributes.count("image")
                                                                        ? e.attributes.at("image")
                                                                        : ""}) &&
         FilterAccepts(filters, "label", labels);
}

void Events::Publish(Event e) {
  if (e.time_nano == 0) e.time_nano = NowNano();
  std::lock_guard lock(mu_);
  std::string line = Dump(EventJson(e)) + "\n";
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    bool drop = false;
    if (it->until_nano != 0 && e.time_nano > it->until_nano) {
      drop = true;
    } else if (EventMatches(e, it->filters)) {
      // Non-blocking: a subscriber that does not keep up (64 KiB of pipe) is dropped.
      ssize_t n = ::write(it->fd.get(), line.data(), line.size());
      if (n != static_cast<ssize_t>(line.size())) drop = true;
    }
    it = drop ? subscribers_.erase(it) : it + 1;
  }
  recent_.push_back(std::move(e));
  if (recent_.size() > kKeep) recent_.pop_front();
}

Result<UniqueFd> Events::Subscribe(int64_t since_nano, int64_t until_nano, const Json& filters) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return FailErrno("pipe2");
  UniqueFd r(fds[0]), w(fds[1]);
  std::lock_guard lock(mu_);
  std::string replay;
  if (since_nano > 0) {
    for (const auto& e : recent_) {
      if (e.time_nano < since_nano) continue;
      if (until_nano != 0 && e.time_nano > until_nano) continue;
      if (EventMatches(e, filters)) replay += Dump(EventJson(e)) + "\n";
    }
  }
  // The replay is at most 256 short lines: it fits in a pipe buffer (64 KiB) in practice; what
  // does not fit is cut rather than blocking the daemon.
  fcntl(w.get(), F_SETFL, O_NONBLOCK);
  if (!replay.empty()) (void)!::write(w.get(), replay.data(), replay.size());
  if (until_nano != 0 && until_nano <= NowNano()) return r;  // w closes: the stream ends
  subscribers_.push_back({std::move(w), until_nano, filters});
  if (until_nano != 0) {
    if (!expirer_.joinable()) expirer_ = std::thread([this] { ExpireLoop(); });
    cv_.notify_all();
  }
  return r;
}

void Events::ExpireLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    int64_t now = NowNano(), next = 0;
    for (auto it = subscribers_.begin(); it != subscribers_.end();) {
      if (it->until_nano != 0 && it->until_nano <= now) {
        it = subscribers_.erase(it);  // closing the write end ends the client's stream
        continue;
      }
      if (it->until_nano != 0 && (next == 0 || it->until_nano < next)) next = it->until_nano;
      ++it;
    }
    if (next == 0) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, std::chrono::system_clock::time_point(
                               std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                   std::chrono::nanoseconds(next))));
    }
  }
}

Events::~Events() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (expirer_.joinable()) expirer_.join();
}

}  // namespace moat::daemon::core
