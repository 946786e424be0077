#include "runtime/state_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "oci/spec_json.h"

namespace moat::runtime {

const char* StatusName(Status s) {
  switch (s) {
    case Status::kCreating: return "creating";
    case Status::kCreated: return "created";
    case Status::kRunning: return "running";
    case Status::kPaused: return "paused";
    case Status::kStopped: return "stopped";
  }
  return "unknown";
}

Result<void> ValidateId(const std::string& id) {
  if (id.empty()) return Fail(ErrorKind::kInvalidArgument, "container id must not be empty");
  if (id.size() > 1024) return Fail(ErrorKind::kInvalidArgument, "container id is too long");
  if (id[0] == '.')
    return Fail(ErrorKind::kInvalidArgument, "invalid container id %s: must not start with '.'",
                id.c_str());
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '.';
    if (!ok)
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid container id %s: only [A-Za-z0-9_+.-] are allowed", id.c_str());
  }
  return Ok();
}

Result<void> CheckStateRootOwner(const std::string& path, const struct stat& st, uid_t euid) {
  if (euid == 0) return Ok();
  if (!S_ISDIR(st.st_mode))
    return Fail(ErrorKind::kPermissionDenied, "state root %s is not a directory", path.c_str());
  if (st.st_uid != euid)
    return Fail(ErrorKind::kPermissionDenied,
                "state root %s belongs to uid %u, not to this user (%u): refusing it", path.c_str(),
                static_cast<unsigned>(st.st_uid), static_cast<unsigned>(euid));
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return Fail(ErrorKind::kPermissionDenied,
                "state root %s is writable by others (mode %03o): refusing it", path.c_str(),
                static_cast<unsigned>(st.st_mode & 0777));
  return Ok();
}

Result<void> StateStore::CreateDir(const std::string& id) {
  MOAT_TRY(ValidateId(id));
  MOAT_TRY(sys::MkdirAll(root_, 0700));
  if (uid_t euid = geteuid(); euid != 0) {
    MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstatat(AT_FDCWD, root_, AT_SYMLINK_NOFOLLOW));
    MOAT_TRY(CheckStateRootOwner(root_, st, euid));
  }
  if (::mkdir(Dir(id).c_str(), 0711) != 0) {
    if (errno == EEXIST)
      return Fail(ErrorKind::kAlreadyExists, "container with id %s already exists", id.c_str());
    return FailErrno("mkdir %s", Dir(id).c_str());
  }
  return Ok();
}

Result<void> StateStore::Save(const ContainerState& state) {
  return sys::WriteFileAtomic(Dir(state.id) + "/state.json", StateToJson(state), 0600,
                              sys::Durability::kUntilReboot);
}

Result<void> StateStore::SaveConfig(const std::string& id, std::string_view config_json) {
  return sys::WriteFileAtomic(Dir(id) + "/config.json", config_json, 0600,
                              sys::Durability::kUntilReboot);
}

Result<std::string> StateStore::ReadContainerFile(const std::string& id, const char* name) const {
  MOAT_TRY(ValidateId(id));
  auto text = sys::ReadFile(Dir(id) + "/" + name);
  // A missing file is a container that does not exist (runc's words), not a path to report.
  if (!text && text.error().kind == ErrorKind::kNotFound)
    return Fail(ErrorKind::kNotFound, "container %s does not exist", id.c_str());
  return text;
}

Result<ContainerState> StateStore::Load(const std::string& id) const {
  MOAT_ASSIGN_OR_RETURN(std::string text, ReadContainerFile(id, "state.json"));
  return std::move(StateFromJson(text)).Context("state of container %s", id.c_str());
}

Result<oci::Spec> StateStore::LoadConfig(const std::string& id) const {
  MOAT_ASSIGN_OR_RETURN(std::string text, ReadContainerFile(id, "config.json"));
  return oci::ParseSpec(text);
}

Result<std::vector<std::string>> StateStore::List() const {
  std::vector<std::string> ids;
  DIR* d = opendir(root_.c_str());
  if (!d) {
    if (errno == ENOENT) return ids;
    return FailErrno("opendir %s", root_.c_str());
  }
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
    ids.emplace_back(e->d_name);
  }
  closedir(d);
  return ids;
}

Result<void> StateStore::Remove(const std::string& id) {
  MOAT_TRY(ValidateId(id));
  return sys::RemoveAll(Dir(id));
}

Result<uint64_t> ProcessStartTime(pid_t pid) {
  auto fields = sys::ProcStatFields(pid);
  if (!fields) {
    if (fields.error().kind == ErrorKind::kInternal) return Fail(std::move(fields).error());
    return Fail(ErrorKind::kNotFound, "process %d is gone", pid);
  }
  // Field 3 is the state, field 22 the start time.
  if (fields->size() < 22) return Fail(ErrorKind::kInternal, "/proc/%d/stat: too short", pid);
  if ((*fields)[2] == "Z" || (*fields)[2] == "X")
    return Fail(ErrorKind::kNotFound, "process %d exited", pid);
  auto start = ParseUint64((*fields)[21]);
  if (!start) return Fail(ErrorKind::kInternal, "/proc/%d/stat: bad start time", pid);
  return *start;
}

}  // namespace moat::runtime
