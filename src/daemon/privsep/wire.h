#pragma once

// The versioned IPC between moatd's API front (unprivileged) and its core (root): one
// SOCK_SEQPACKET message per request or reply, JSON-encoded, with file descriptors attached
// (SCM_RIGHTS): the client connection (so the core reads SO_PEERCRED itself), body pipes for
// uploads and downloads, stream sockets for attach and exec.
//
//   request: {"v":1,"id":N,"op":"container.start","args":{...}}   fds: [client conn, ...]
//   reply:   {"v":1,"id":N,"ok":true,"result":...}                 fds: [...]
//            {"v":1,"id":N,"ok":false,"kind":"not_found","message":"No such container: x"}
//
// The op is a closed enum; each op's args are decoded by the core into typed values and
// validated again with the function the front used (privsep/commands.h).

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/common/json.h"

namespace moat::daemon::privsep {

inline constexpr int kProtocolVersion = 1;
// The largest message either side sends or accepts; both ends raise SO_SNDBUF/SO_RCVBUF to fit.
inline constexpr size_t kMaxMessage = 4 << 20;
inline constexpr size_t kMaxFds = 4;

enum class Op {
  kSystemInfo,
  kSystemDf,
  kEvents,
  kImageList,
  kImageInspect,
  kImageHistory,
  kImageLoad,
  kImageSave,
  kImageTag,
  kImageRemove,
  kImageImport,
  kImagePrune,
  kContainerCreate,
  kContainerStart,
  kContainerStop,
  kContainerRestart,
  kContainerKill,
  kContainerRemove,
  kContainerInspect,
  kContainerList,
  kContainerWait,
  kContainerLogs,
  kContainerAttach,
  kContainerResize,
  kContainerPause,
  kContainerUnpause,
  kContainerRename,
  kContainerTop,
  kContainerStats,
  kContainerUpdate,
  kContainerPrune,
  kContainerArchiveStat,
  kContainerArchiveGet,
  kContainerArchivePut,
  kContainerExport,
  kContainerChanges,
  kContainerCommit,
  kExecCreate,
  kExecStart,
  kExecInspect,
  kExecResize,
  kVolumeList,
  kVolumeCreate,
  kVolumeInspect,
  kVolumeRemove,
  kVolumePrune,
  kNetworkList,
  kNetworkCreate,
  kNetworkInspect,
  kNetworkRemove,
  kNetworkConnect,
  kNetworkDisconnect,
  kNetworkPrune,
  kImagePull,
  kImagePush,
  kAuth,
};

const char* OpName(Op op);
std::optional<Op> OpFromName(std::string_view name);

struct Request {
  uint64_t id = 0;
  Op op = Op::kSystemInfo;
  Json args = Json::object();
  std::vector<UniqueFd> fds;
};

struct Reply {
  uint64_t id = 0;
  bool ok = true;
  Error error;           // when !ok
  Json result;           // when ok: op-specific (often a Docker-shaped document)
  std::vector<UniqueFd> fds;
};

// ErrorKind <-> wire names ("not_found", ...).
const char* KindWireName(ErrorKind kind);
ErrorKind KindFromWireName(std::string_view name);

// Encoding and decoding. Decode errors are kInvalidArgument and say what was wrong.
std::string EncodeRequest(const Request& r);
std::string EncodeReply(const Reply& r);
Result<Request> DecodeRequest(std::string_view data, std::vector<UniqueFd> fds);
Result<Reply> DecodeReply(std::string_view data, std::vector<UniqueFd> fds);

// Raises the socket's buffers so a kMaxMessage message fits (SO_*BUFFORCE when privileged).
void RaiseBuffers(int sock);

// Sends one message with fds (fds remain owned by the caller). Thread-safe per Channel: the
// kernel keeps each SEQPACKET message whole, and sends are serialised by a mutex.
class Sender {
 public:
  explicit Sender(int sock) : sock_(sock) {}
  Result<void> Send(const std::string& data, const std::vector<int>& fds);

 private:
  int sock_;  // remains owned by the caller
  std::mutex mu_;
};

}  // namespace moat::daemon::privsep
