#include "runtime/sync_protocol.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace moat::runtime {

namespace {
struct Header {
  uint32_t type;
  int32_t pid;
  int32_t kind;
  int32_t err;
};
constexpr size_t kMaxText = 4096;
}  // namespace

Result<void> SendSync(int fd, SyncType type, int32_t pid) {
  Header h{static_cast<uint32_t>(type), pid, 0, 0};
  ssize_t n;
  do n = send(fd, &h, sizeof h, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof h)) return FailErrno("sync send");
  return Ok();
}

void SendSyncError(int fd, const Error& error) {
  char buf[sizeof(Header) + kMaxText];
  Header h{static_cast<uint32_t>(SyncType::kError), 0, static_cast<int32_t>(error.kind),
           error.sys_errno};
  memcpy(buf, &h, sizeof h);
  size_t len = std::min(error.message.size(), kMaxText);
  memcpy(buf + sizeof h, error.message.data(), len);
  ssize_t n = send(fd, buf, sizeof h + len, MSG_NOSIGNAL);
  (void)n;
}

Result<SyncMessage> RecvSync(int fd) {
  char buf[sizeof(Header) + kMaxText];
  ssize_t n;
  do n = recv(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("sync receive");
  if (n == 0)
    return Fail(ErrorKind::kInternal, "the container process exited during setup");
  if (static_cast<size_t>(n) < sizeof(Header))
    return Fail(ErrorKind::kInternal, "sync: short message");
  Header h;
  memcpy(&h, buf, sizeof h);
  SyncMessage m;
  m.type = static_cast<SyncType>(h.type);
  m.pid = h.pid;
  if (m.type == SyncType::kError) {
    m.error.kind = static_cast<ErrorKind>(h.kind);
    m.error.sys_errno = h.err;
    m.error.message.assign(buf + sizeof h, static_cast<size_t>(n) - sizeof h);
  }
  return m;
}

Result<SyncMessage> ExpectSync(int fd, SyncType want) {
  MOAT_ASSIGN_OR_RETURN(SyncMessage m, RecvSync(fd));
  if (m.type == SyncType::kError) return Fail(std::move(m.error));
  if (m.type != want)
    return Fail(ErrorKind::kInternal, "sync: expected message %u, got %u",
                static_cast<unsigned>(want), static_cast<unsigned>(m.type));
  return m;
}

}  // namespace moat::runtime
