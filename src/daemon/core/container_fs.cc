// The container's file system from outside: archive (docker cp), export, changes, commit.
// TODO(#3): being written.

#include "daemon/core/container_internal.h"

namespace moat::daemon::core {

Result<Json> Containers::ArchiveStat(const std::string& ref, const std::string&) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  return Fail(ErrorKind::kUnsupported, "archive is not implemented yet");
}
Result<StreamResult> Containers::ArchiveGet(const std::string& ref, const std::string&, Json*) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  return Fail(ErrorKind::kUnsupported, "archive is not implemented yet");
}
Result<void> Containers::ArchivePut(const std::string& ref, const std::string&, int, bool) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  return Fail(ErrorKind::kUnsupported, "archive is not implemented yet");
}
Result<StreamResult> Containers::Export(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  return Fail(ErrorKind::kUnsupported, "export is not implemented yet");
}
Result<Json> Containers::Changes(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  return Fail(ErrorKind::kUnsupported, "changes are not implemented yet");
}
Result<Json> Containers::Commit(const std::string& ref, const Json&) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  return Fail(ErrorKind::kUnsupported, "commit is not implemented yet");
}

}  // namespace moat::daemon::core
