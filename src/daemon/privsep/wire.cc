#include "daemon/privsep/wire.h"

#include <sys/socket.h>

#include <array>
#include <utility>

#include "base/sys/socket.h"

namespace moat::daemon::privsep {
namespace {

constexpr std::array<std::pair<Op, const char*>, 56> kOps = {{
    {Op::kSystemInfo, "system.info"},         {Op::kSystemDf, "system.df"},
    {Op::kEvents, "system.events"},           {Op::kImageList, "image.list"},
    {Op::kImageInspect, "image.inspect"},     {Op::kImageHistory, "image.history"},
    {Op::kImageLoad, "image.load"},           {Op::kImageSave, "image.save"},
    {Op::kImageTag, "image.tag"},             {Op::kImageRemove, "image.remove"},
    {Op::kImageImport, "image.import"},       {Op::kImagePrune, "image.prune"},
    {Op::kContainerCreate, "container.create"}, {Op::kContainerStart, "container.start"},
    {Op::kContainerStop, "container.stop"},   {Op::kContainerRestart, "container.restart"},
    {Op::kContainerKill, "container.kill"},   {Op::kContainerRemove, "container.remove"},
    {Op::kContainerInspect, "container.inspect"}, {Op::kContainerList, "container.list"},
    {Op::kContainerWait, "container.wait"},   {Op::kContainerLogs, "container.logs"},
    {Op::kContainerAttach, "container.attach"}, {Op::kContainerResize, "container.resize"},
    {Op::kContainerPause, "container.pause"}, {Op::kContainerUnpause, "container.unpause"},
    {Op::kContainerRename, "container.rename"}, {Op::kContainerTop, "container.top"},
    {Op::kContainerStats, "container.stats"}, {Op::kContainerUpdate, "container.update"},
    {Op::kContainerPrune, "container.prune"}, {Op::kExecCreate, "exec.create"},
    {Op::kContainerArchiveStat, "container.archive_stat"},
    {Op::kContainerArchiveGet, "container.archive_get"},
    {Op::kContainerArchivePut, "container.archive_put"},
    {Op::kContainerExport, "container.export"},
    {Op::kContainerChanges, "container.changes"},
    {Op::kContainerCommit, "container.commit"},
    {Op::kExecStart, "exec.start"},           {Op::kExecInspect, "exec.inspect"},
    {Op::kExecResize, "exec.resize"},         {Op::kVolumeList, "volume.list"},
    {Op::kVolumeCreate, "volume.create"},     {Op::kVolumeInspect, "volume.inspect"},
    {Op::kVolumeRemove, "volume.remove"},     {Op::kVolumePrune, "volume.prune"},
    {Op::kNetworkList, "network.list"},       {Op::kNetworkCreate, "network.create"},
    {Op::kNetworkInspect, "network.inspect"}, {Op::kNetworkRemove, "network.remove"},
    {Op::kNetworkConnect, "network.connect"}, {Op::kNetworkDisconnect, "network.disconnect"},
    {Op::kNetworkPrune, "network.prune"},     {Op::kImagePull, "image.pull"},
    {Op::kImagePush, "image.push"},           {Op::kAuth, "system.auth"},
}};

constexpr std::array<std::pair<ErrorKind, const char*>, 8> kKinds = {{
    {ErrorKind::kNotFound, "not_found"},
    {ErrorKind::kAlreadyExists, "already_exists"},
    {ErrorKind::kInvalidArgument, "invalid_argument"},
    {ErrorKind::kPermissionDenied, "permission_denied"},
    {ErrorKind::kConflict, "conflict"},
    {ErrorKind::kUnsupported, "unsupported"},
    {ErrorKind::kUnavailable, "unavailable"},
    {ErrorKind::kInternal, "internal"},
}};

Result<std::pair<Json, uint64_t>> DecodeEnvelope(std::string_view data) {
  MOAT_ASSIGN_OR_RETURN(Json j, ParseJson(data));
  if (!j.is_object()) return Fail(ErrorKind::kInvalidArgument, "privsep message: not an object");
  int64_t v = 0;
  MOAT_TRY(GetInt(j, "v", &v, "v"));
  if (v != kProtocolVersion) {
    return Fail(ErrorKind::kInvalidArgument, "privsep message: protocol version %lld, want %d",
                static_cast<long long>(v), kProtocolVersion);
  }
  int64_t id = -1;
  MOAT_TRY(GetInt(j, "id", &id, "id"));
  if (id < 0) return Fail(ErrorKind::kInvalidArgument, "privsep message: missing id");
  return std::make_pair(std::move(j), static_cast<uint64_t>(id));
}

}  // namespace

const char* OpName(Op op) {
  for (const auto& [o, name] : kOps) {
    if (o == op) return name;
  }
  return "unknown";
}

std::optional<Op> OpFromName(std::string_view name) {
  for (const auto& [o, n] : kOps) {
    if (name == n) return o;
  }
  return std::nullopt;
}

const char* KindWireName(ErrorKind kind) {
  for (const auto& [k, name] : kKinds) {
    if (k == kind) return name;
  }
  return "internal";
}

ErrorKind KindFromWireName(std::string_view name) {
  for (const auto& [k, n] : kKinds) {
    if (name == n) return k;
  }
  return ErrorKind::kInternal;
}

std::string EncodeRequest(const Request& r) {
  Json j = {{"v", kProtocolVersion}, {"id", r.id}, {"op", OpName(r.op)}, {"args", r.args}};
  return Dump(j);
}

std::string EncodeReply(const Reply& r) {
  Json j = {{"v", kProtocolVersion}, {"id", r.id}, {"ok", r.ok}};
  if (r.ok) {
    j["result"] = r.result;
  } else {
    j["kind"] = KindWireName(r.error.kind);
    j["message"] = r.error.message;
  }
  return Dump(j);
}

Result<Request> DecodeRequest(std::string_view data, std::vector<UniqueFd> fds) {
  MOAT_ASSIGN_OR_RETURN(auto env, DecodeEnvelope(data));
  Request r;
  r.id = env.second;
  std::string op;
  MOAT_TRY(GetString(env.first, "op", &op, "op"));
  auto parsed = OpFromName(op);
  if (!parsed) return Fail(ErrorKind::kInvalidArgument, "privsep request: unknown op \"%s\"", op.c_str());
  r.op = *parsed;
  MOAT_ASSIGN_OR_RETURN(const Json* args, GetObject(env.first, "args", "args"));
  if (args) r.args = *args;
  r.fds = std::move(fds);
  return r;
}

Result<Reply> DecodeReply(std::string_view data, std::vector<UniqueFd> fds) {
  MOAT_ASSIGN_OR_RETURN(auto env, DecodeEnvelope(data));
  Reply r;
  r.id = env.second;
  MOAT_TRY(GetBool(env.first, "ok", &r.ok, "ok"));
  if (r.ok) {
    if (env.first.contains("result")) r.result = env.first["result"];
  } else {
    std::string kind;
    MOAT_TRY(GetString(env.first, "kind", &kind, "kind"));
    r.error.kind = KindFromWireName(kind);
    MOAT_TRY(GetString(env.first, "message", &r.error.message, "message"));
  }
  r.fds = std::move(fds);
  return r;
}

void RaiseBuffers(int sock) {
  int size = static_cast<int>(kMaxMessage) * 2;
  if (setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0) {
    (void)setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  if (setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    (void)setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
}

Result<void> Sender::Send(const std::string& data, const std::vector<int>& fds) {
  if (data.size() > kMaxMessage) {
    return Fail(ErrorKind::kInvalidArgument, "privsep message of %zu bytes exceeds %zu", data.size(),
                kMaxMessage);
  }
  std::lock_guard lock(mu_);
  return sys::SendWithFds(sock_, data, fds);
}

}  // namespace moat::daemon::privsep
