#include "runtime/monitor/stdio_session.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/log.h"

namespace moat::runtime::monitor {

namespace {

constexpr uint32_t kReadEvents = EPOLLIN;

}  // namespace

Result<std::unique_ptr<StdioSession>> StdioSession::Create(EventLoop* loop, StdioFds fds,
                                                           JsonFileLog* log, StdinOnce once) {
  std::unique_ptr<StdioSession> s(new StdioSession(loop, log, once));
  StdioSession* self = s.get();
  if (fds.pty_master) {
    s->pty_ = std::move(fds.pty_master);
    MOAT_ASSIGN_OR_RETURN(s->pty_token_, loop->Add(s->pty_.get(), kReadEvents, [self](uint32_t ev) {
      if (ev & EPOLLOUT) self->OnStdinWritable();
      if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) self->OnOutput(Stream::kStdout, ev);
    }));
    return s;
  }
  s->stdin_w_ = std::move(fds.stdin_w);
  s->stdout_r_ = std::move(fds.stdout_r);
  s->stderr_r_ = std::move(fds.stderr_r);
  if (s->stdout_r_) {
    MOAT_ASSIGN_OR_RETURN(s->stdout_token_,
                          loop->Add(s->stdout_r_.get(), kReadEvents,
                                    [self](uint32_t ev) { self->OnOutput(Stream::kStdout, ev); }));
  }
  if (s->stderr_r_) {
    MOAT_ASSIGN_OR_RETURN(s->stderr_token_,
                          loop->Add(s->stderr_r_.get(), kReadEvents,
                                    [self](uint32_t ev) { self->OnOutput(Stream::kStderr, ev); }));
  }
  return s;
}

StdioSession::~StdioSession() {
  for (auto t : {pty_token_, stdin_token_, stdout_token_, stderr_token_}) loop_->Remove(t);
  for (auto& [id, c] : clients_) loop_->Remove(c->token);
}

// ---- output ----

UniqueFd& StdioSession::OutputFd(Stream stream) {
  if (pty_) return pty_;
  return stream == Stream::kStderr ? stderr_r_ : stdout_r_;
}

EventLoop::Token& StdioSession::OutputToken(Stream stream) {
  if (pty_) return pty_token_;
  return stream == Stream::kStderr ? stderr_token_ : stdout_token_;
}

void StdioSession::OnOutput(Stream stream, uint32_t /*events*/) { ReadOutput(stream, 4); }

void StdioSession::ReadOutput(Stream stream, int max_rounds) {
  for (int i = 0; i < max_rounds; ++i) {
    UniqueFd& fd = OutputFd(stream);
    if (!fd) return;
    ssize_t n = read(fd.get(), buf_.get(), kReadSize);
    if (n > 0) {
      Deliver(stream, std::string_view(buf_.get(), static_cast<size_t>(n)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    // EOF, or EIO from a pty master once no slave is open any more: the process side is gone.
    CloseOutput(stream);
    return;
  }
}

void StdioSession::Deliver(Stream stream, std::string_view data) {
  if (log_ && !log_failed_) {
    if (auto r = log_->Write(stream, data); !r) {
      // Once: a full disk must not flood the monitor's own log.
      MOAT_LOG(kWarning, "container log: %s", r.error().message.c_str());
      log_failed_ = true;
    }
  }
  std::vector<uint64_t> overflowed;
  std::vector<uint64_t> ready;
  for (auto& [id, c] : clients_) {
    if (!c->header_done) continue;
    bool wanted = stream == Stream::kStderr ? c->want.stderr_wanted : c->want.stdout_wanted;
    if (!wanted) continue;
    if (pty_)
      c->out.append(data);
    else
      c->out.append(StdcopyFrame(stream, data));
    if (c->out.size() > kMaxClientBuffer)
      overflowed.push_back(id);
    else
      ready.push_back(id);
  }
  // A client that does not read must not hold the container's output back, nor grow the
  // monitor without bound.
  for (uint64_t id : overflowed) {
    MOAT_LOG(kWarning, "attach client dropped: more than %zu bytes unsent", kMaxClientBuffer);
    DropClient(id);
  }
  for (uint64_t id : ready) FlushClient(id);
}

void StdioSession::CloseOutput(Stream stream) {
  EventLoop::Token& token = OutputToken(stream);
  loop_->Remove(token);
  token = 0;
  if (pty_) {
    pty_.reset();
    stdin_buf_.clear();
    return;
  }
  OutputFd(stream).reset();
}

bool StdioSession::OutputDone() const { return !pty_ && !stdout_r_ && !stderr_r_; }

void StdioSession::StopOutput() {
  for (Stream s : {Stream::kStdout, Stream::kStderr}) {
    if (!OutputFd(s)) continue;
    ReadOutput(s, 64);
    if (OutputFd(s)) CloseOutput(s);
  }
}

// ---- stdin ----

void StdioSession::UpdatePtyInterest() {
  if (!pty_) return;
  uint32_t ev = kReadEvents | (stdin_buf_.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  (void)loop_->Modify(pty_token_, ev);
}

void StdioSession::OnStdinWritable() { FlushStdin(); }

void StdioSession::FlushStdin() {
  bool was_full = stdin_buf_.size() >= kMaxStdinBuffer;
  int fd = StdinFd();
  if (fd < 0) stdin_buf_.clear();
  while (!stdin_buf_.empty()) {
    ssize_t n = write(fd, stdin_buf_.data(), stdin_buf_.size());
    if (n > 0) {
      stdin_buf_.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    // EPIPE: the process closed its stdin; its input is of no use any more.
    stdin_buf_.clear();
    if (!pty_) CloseStdin();
    break;
  }
  if (stdin_buf_.empty() && close_stdin_when_drained_ && !pty_) CloseStdin();
  if (pty_) {
    UpdatePtyInterest();
  } else if (stdin_w_) {
    if (!stdin_buf_.empty() && !stdin_token_) {
      auto t = loop_->Add(stdin_w_.get(), EPOLLOUT, [this](uint32_t) { OnStdinWritable(); });
      if (t) stdin_token_ = *t;
    } else if (stdin_buf_.empty() && stdin_token_) {
      loop_->Remove(stdin_token_);
      stdin_token_ = 0;
    }
  }
  if (was_full && stdin_buf_.size() < kMaxStdinBuffer) {
    std::vector<uint64_t> ids;
    for (auto& [id, c] : clients_) ids.push_back(id);
    for (uint64_t id : ids) UpdateClientInterest(id);
  }
}

void StdioSession::CloseStdin() {
  loop_->Remove(stdin_token_);
  stdin_token_ = 0;
  stdin_w_.reset();
  stdin_buf_.clear();
}

// ---- clients ----

uint64_t StdioSession::AddClientInternal(UniqueFd sock) {
  uint64_t id = next_client_++;
  auto c = std::make_unique<Client>();
  c->sock = std::move(sock);
  auto t = loop_->Add(c->sock.get(), EPOLLIN, [this, id](uint32_t ev) { OnClient(id, ev); });
  if (!t) {
    MOAT_LOG(kWarning, "attach client: %s", t.error().message.c_str());
    return 0;
  }
  c->token = *t;
  clients_.emplace(id, std::move(c));
  return id;
}

void StdioSession::AddAttachConnection(UniqueFd sock) {
  if (closing_) return;  // The container has stopped: nothing more will come.
  AddClientInternal(std::move(sock));
}

void StdioSession::AddClient(UniqueFd sock, const AttachHeader& header) {
  uint64_t id = AddClientInternal(std::move(sock));
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  it->second->header_done = true;
  it->second->want = header;
}

void StdioSession::ReadPendingHeaders() {
  std::vector<uint64_t> pending;
  for (const auto& [id, c] : clients_) {
    if (!c->header_done) pending.push_back(id);
  }
  for (uint64_t id : pending) ReadClient(id);
}

void StdioSession::OnClient(uint64_t id, uint32_t events) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  if (events & EPOLLOUT) {
    FlushClient(id);
    it = clients_.find(id);
    if (it == clients_.end()) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    if (!it->second->read_eof) {
      ReadClient(id);
      it = clients_.find(id);
      if (it == clients_.end()) return;
    }
    // Both directions shut down (the peer closed its socket): nobody is left to write to.
    if ((events & (EPOLLHUP | EPOLLERR)) && it->second->read_eof) DropClient(id);
  }
}

void StdioSession::ReadClient(uint64_t id) {
  for (int round = 0; round < 4; ++round) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = *it->second;
    if (c.header_done && c.want.stdin_wanted && stdin_buf_.size() >= kMaxStdinBuffer) break;
    ssize_t n = recv(c.sock.get(), buf_.get(), kReadSize, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      DropClient(id);
      return;
    }
    if (n == 0) {
      c.read_eof = true;
      if (!c.header_done) {
        DropClient(id);
        return;
      }
      if (c.want.stdin_wanted && once_ == StdinOnce::kYes && stdin_w_) {
        close_stdin_when_drained_ = true;
        FlushStdin();
      }
      break;
    }
    HandleClientInput(c, std::string_view(buf_.get(), static_cast<size_t>(n)));
    if (clients_.find(id) == clients_.end()) return;
  }
  UpdateClientInterest(id);
}

void StdioSession::HandleClientInput(Client& c, std::string_view data) {
  if (!c.header_done) {
    size_t nl = data.find('\n');
    c.header.append(data.substr(0, nl == std::string_view::npos ? data.size() : nl));
    if (nl == std::string_view::npos) {
      if (c.header.size() > kMaxAttachHeader) {
        MOAT_LOG(kWarning, "attach client dropped: header longer than %zu bytes", kMaxAttachHeader);
        for (auto& [id, cl] : clients_)
          if (cl.get() == &c) {
            DropClient(id);
            break;
          }
      }
      return;
    }
    auto h = ParseAttachHeader(c.header);
    if (!h) {
      MOAT_LOG(kWarning, "attach client dropped: %s", h.error().message.c_str());
      for (auto& [id, cl] : clients_)
        if (cl.get() == &c) {
          DropClient(id);
          break;
        }
      return;
    }
    c.want = *h;
    c.header_done = true;
    c.header.clear();
    c.header.shrink_to_fit();
    data.remove_prefix(nl + 1);
  }
  if (data.empty() || !c.want.stdin_wanted || StdinFd() < 0 || close_stdin_when_drained_) return;
  stdin_buf_.append(data);
  FlushStdin();
}

void StdioSession::FlushClient(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  size_t sent = 0;
  while (sent < c.out.size()) {
    ssize_t n =
        send(c.sock.get(), c.out.data() + sent, c.out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    DropClient(id);  // EPIPE, ECONNRESET: the client is gone.
    return;
  }
  c.out.erase(0, sent);
  if (closing_ && c.out.empty()) {
    DropClient(id);
    return;
  }
  UpdateClientInterest(id);
}

void StdioSession::UpdateClientInterest(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  Client& c = *it->second;
  uint32_t ev = 0;
  bool stdin_full = c.header_done && c.want.stdin_wanted && stdin_buf_.size() >= kMaxStdinBuffer;
  if (!c.read_eof && !stdin_full) ev |= EPOLLIN;
  if (!c.out.empty()) ev |= EPOLLOUT;
  (void)loop_->Modify(c.token, ev);
}

void StdioSession::DropClient(uint64_t id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  loop_->Remove(it->second->token);
  clients_.erase(it);
}

void StdioSession::CloseClients() {
  closing_ = true;
  std::vector<uint64_t> ids;
  for (auto& [id, c] : clients_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = clients_.find(id);
    if (it == clients_.end()) continue;
    if (!it->second->header_done || it->second->out.empty()) DropClient(id);
  }
}

Result<void> StdioSession::Resize(int height, int width) {
  if (!pty_) return Fail(ErrorKind::kInvalidArgument, "resize: the process has no terminal");
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(height);
  ws.ws_col = static_cast<unsigned short>(width);
  if (ioctl(pty_.get(), TIOCSWINSZ, &ws) != 0) return FailErrno("ioctl TIOCSWINSZ");
  return Ok();
}

}  // namespace moat::runtime::monitor
