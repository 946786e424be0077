#include "daemon/front/core_client.h"

#include <sys/socket.h>

#include "base/log.h"
#include "base/sys/socket.h"

namespace moat::daemon::front {

CoreClient::CoreClient(UniqueFd channel)
    : channel_(std::move(channel)), sender_(channel_.get()), reader_([this] { ReadLoop(); }) {}

CoreClient::~CoreClient() {
  ::shutdown(channel_.get(), SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
}

void CoreClient::ReadLoop() {
  for (;;) {
    auto m = sys::RecvWithFds(channel_.get(), privsep::kMaxMessage, privsep::kMaxFds);
    if (!m || (m->data.empty() && m->fds.empty())) break;
    auto reply = privsep::DecodeReply(m->data, std::move(m->fds));
    if (!reply) {
      MOAT_LOG(kError, "core sent a bad reply: %s", reply.error().message.c_str());
      continue;
    }
    std::lock_guard lock(mu_);
    done_[reply->id] = std::make_shared<privsep::Reply>(std::move(*reply));
    cv_.notify_all();
  }
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

Result<privsep::Reply> CoreClient::Call(privsep::Op op, Json args, const std::vector<int>& fds) {
  privsep::Request r;
  {
    std::lock_guard lock(mu_);
    if (closed_) return Fail(ErrorKind::kUnavailable, "the daemon's core is gone");
    r.id = next_id_++;
  }
  r.op = op;
  r.args = std::move(args);
  MOAT_TRY(sender_.Send(privsep::EncodeRequest(r), fds));
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_.count(r.id) || closed_; });
  auto it = done_.find(r.id);
  if (it == done_.end()) return Fail(ErrorKind::kUnavailable, "the daemon's core is gone");
  privsep::Reply reply = std::move(*it->second);
  done_.erase(it);
  return reply;
}

}  // namespace moat::daemon::front
