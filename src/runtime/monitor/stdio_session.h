#pragma once

// The stdio of one process the monitor runs (the container's init, or one exec): reads its
// output (a pty master, or stdout and stderr pipes), hands it to the log and to the attached
// clients, and feeds the clients' input to its stdin. Single-threaded, driven by an EventLoop.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "runtime/monitor/event_loop.h"
#include "runtime/monitor/log_writer.h"
#include "runtime/monitor/monitor_json.h"
#include "runtime/monitor/protocol.h"

namespace moat::runtime::monitor {

// The monitor's ends of a process's stdio, all non-blocking. Either `pty_master` (input and
// output), or the pipes (`stdin_w` may be empty: the process's stdin is /dev/null).
struct StdioFds {
  UniqueFd pty_master;
  UniqueFd stdin_w;
  UniqueFd stdout_r;
  UniqueFd stderr_r;
};

// Whether the process's stdin is closed when a client that sent input half-closes.
enum class StdinOnce { kNo, kYes };

class StdioSession {
 public:
  // Registers the fds with `loop` (which must outlive the session). `log` (may be null; must
  // outlive the session) receives all output. Errors of epoll_ctl.
  static Result<std::unique_ptr<StdioSession>> Create(EventLoop* loop, StdioFds fds,
                                                      JsonFileLog* log, StdinOnce once);
  ~StdioSession();
  StdioSession(const StdioSession&) = delete;
  StdioSession& operator=(const StdioSession&) = delete;

  // Takes a freshly accepted attach connection (non-blocking); its header line is read first.
  // After CloseClients() the connection is closed at once.
  void AddAttachConnection(UniqueFd sock);
  // Takes a connected socket (non-blocking) whose streams are already known (an exec's).
  void AddClient(UniqueFd sock, const AttachHeader& header);
  // Reads the header of every client that has not sent it yet, without waiting: the header a
  // client sent before the container starts must be taken before its first output (moatd
  // writes the header, then asks for start on the ctl socket).
  void ReadPendingHeaders();

  // TIOCSWINSZ on the pty; kInvalidArgument without a tty.
  Result<void> Resize(int height, int width);

  bool tty() const { return pty_.valid(); }
  // True once every output fd has reached EOF (or was closed by StopOutput).
  bool OutputDone() const;
  // Reads what is buffered in the outputs without blocking, then closes them.
  void StopOutput();
  // Closes every client once its pending output is sent; new attach connections are refused.
  void CloseClients();
  // True while some client is still connected.
  bool HasClients() const { return !clients_.empty(); }

 private:
  struct Client {
    UniqueFd sock;
    EventLoop::Token token = 0;
    bool header_done = false;
    std::string header;  // until header_done
    AttachHeader want;
    std::string out;  // output not yet sent
    bool read_eof = false;
  };

  StdioSession(EventLoop* loop, JsonFileLog* log, StdinOnce once)
      : loop_(loop), log_(log), once_(once), buf_(new char[kReadSize]) {}
  static constexpr size_t kReadSize = 16 * 1024;

  void OnOutput(Stream stream, uint32_t events);
  // Reads `stream` until EAGAIN (or at most a few rounds); closes it at EOF.
  void ReadOutput(Stream stream, int max_rounds);
  void Deliver(Stream stream, std::string_view data);
  void CloseOutput(Stream stream);
  UniqueFd& OutputFd(Stream stream);
  EventLoop::Token& OutputToken(Stream stream);

  void OnStdinWritable();
  void FlushStdin();
  void CloseStdin();
  int StdinFd() const { return pty_.valid() ? pty_.get() : stdin_w_.get(); }
  void UpdatePtyInterest();

  uint64_t AddClientInternal(UniqueFd sock);
  void OnClient(uint64_t id, uint32_t events);
  void ReadClient(uint64_t id);
  void HandleClientInput(Client& c, std::string_view data);
  void FlushClient(uint64_t id);
  void UpdateClientInterest(uint64_t id);
  void DropClient(uint64_t id);

  EventLoop* loop_;
  JsonFileLog* log_;
  StdinOnce once_;
  std::unique_ptr<char[]> buf_;
  UniqueFd pty_;
  UniqueFd stdin_w_;
  UniqueFd stdout_r_;
  UniqueFd stderr_r_;
  EventLoop::Token pty_token_ = 0;
  EventLoop::Token stdin_token_ = 0;
  EventLoop::Token stdout_token_ = 0;
  EventLoop::Token stderr_token_ = 0;
  std::string stdin_buf_;
  bool close_stdin_when_drained_ = false;
  bool log_failed_ = false;
  bool closing_ = false;
  uint64_t next_client_ = 1;
  std::map<uint64_t, std::unique_ptr<Client>> clients_;
};

}  // namespace moat::runtime::monitor
