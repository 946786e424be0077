#include "base/sys/bpf.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace moat::sys {

namespace {

long CallBpf(int cmd, bpf_attr* attr) { return syscall(SYS_bpf, cmd, attr, sizeof *attr); }

uint64_t Ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

}  // namespace

Result<UniqueFd> bpf_prog_load(bpf_prog_type prog_type, const std::vector<bpf_insn>& insns,
                               const std::string& license, std::string* log) {
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = prog_type;
  attr.insns = Ptr(insns.data());
  attr.insn_cnt = static_cast<uint32_t>(insns.size());
  attr.license = Ptr(license.c_str());
  if (log && !log->empty()) {
    attr.log_level = 1;
    attr.log_buf = Ptr(log->data());
    attr.log_size = static_cast<uint32_t>(log->size());
  }
  long fd;
  // The load is restartable; EAGAIN comes from the verifier being interrupted.
  do fd = CallBpf(BPF_PROG_LOAD, &attr);
  while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  int err = errno;
  if (log && !log->empty()) log->resize(strnlen(log->data(), log->size()));
  if (fd < 0)
    return Fail(Error::FromErrno(err, StrFormat("bpf prog load (%zu insns)", insns.size())));
  return UniqueFd(static_cast<int>(fd));
}

Result<void> bpf_prog_attach(int prog_fd, int target_fd, bpf_attach_type type, uint32_t flags) {
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(target_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = type;
  attr.attach_flags = flags;
  if (CallBpf(BPF_PROG_ATTACH, &attr) != 0)
    return FailErrno("bpf prog attach (type %d, flags %#x)", static_cast<int>(type), flags);
  return Ok();
}

Result<void> bpf_prog_detach(int prog_fd, int target_fd, bpf_attach_type type) {
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(target_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = type;
  if (CallBpf(BPF_PROG_DETACH, &attr) != 0)
    return FailErrno("bpf prog detach (type %d)", static_cast<int>(type));
  return Ok();
}

Result<std::vector<uint32_t>> bpf_prog_query(int target_fd, bpf_attach_type type,
                                             uint32_t max_ids) {
  std::vector<uint32_t> ids(max_ids);
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = static_cast<uint32_t>(target_fd);
  attr.query.attach_type = type;
  attr.query.prog_ids = Ptr(ids.data());
  attr.query.prog_cnt = max_ids;
  if (CallBpf(BPF_PROG_QUERY, &attr) != 0)
    return FailErrno("bpf prog query (type %d)", static_cast<int>(type));
  ids.resize(attr.query.prog_cnt < max_ids ? attr.query.prog_cnt : max_ids);
  return ids;
}

Result<UniqueFd> bpf_prog_get_fd_by_id(uint32_t id) {
  bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_id = id;
  long fd = CallBpf(BPF_PROG_GET_FD_BY_ID, &attr);
  if (fd < 0) return FailErrno("bpf prog get fd by id %u", id);
  return UniqueFd(static_cast<int>(fd));
}

}  // namespace moat::sys
