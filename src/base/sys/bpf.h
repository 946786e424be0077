#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

// bpf(2), one wrapper per command used by moat. Every fd returned is close-on-exec (the kernel
// sets O_CLOEXEC on bpf fds). fd parameters remain owned by the caller. None of these are
// async-signal-safe (they allocate for error messages); all are thread-safe.
namespace moat::sys {

// BPF_PROG_LOAD of an eBPF program of `prog_type` with the given license. When `log` is not
// null and not empty, its bytes are the buffer for the verifier log (log_level 1), and it is
// resized to the log's length afterwards, whether the load succeeds or not (ENOSPC when the log
// does not fit); otherwise no log is requested. Errors: kPermissionDenied (EPERM without
// CAP_BPF/CAP_SYS_ADMIN), kInvalidArgument (EINVAL: the verifier refused the program),
// kUnsupported (ENOSYS).
Result<UniqueFd> bpf_prog_load(bpf_prog_type prog_type, const std::vector<bpf_insn>& insns,
                               const std::string& license, std::string* log);

// BPF_PROG_ATTACH of `prog_fd` to `target_fd` (a cgroup directory fd for cgroup programs).
Result<void> bpf_prog_attach(int prog_fd, int target_fd, bpf_attach_type type, uint32_t flags);

// BPF_PROG_DETACH of the program `prog_fd` from `target_fd` (needed for BPF_F_ALLOW_MULTI).
Result<void> bpf_prog_detach(int prog_fd, int target_fd, bpf_attach_type type);

// BPF_PROG_QUERY: the ids of the programs attached directly to `target_fd` for `type` (not
// the effective set inherited from ancestors). kUnavailable (ENOSPC) when more than `max_ids`
// are attached.
Result<std::vector<uint32_t>> bpf_prog_query(int target_fd, bpf_attach_type type, uint32_t max_ids);

// BPF_PROG_GET_FD_BY_ID: an fd for the loaded program `id` (needs CAP_SYS_ADMIN). kNotFound
// when the program is gone.
Result<UniqueFd> bpf_prog_get_fd_by_id(uint32_t id);

}  // namespace moat::sys
