#pragma once

#include <unistd.h>

namespace moat::runtime {

template <typename FrozenFn>
Status DeriveStatus(const StateStore& store, const ContainerState& state, FrozenFn frozen) {
  if (state.pid <= 0) return Status::kStopped;
  auto start = ProcessStartTime(state.pid);
  if (!start || *start != state.pid_start_time) return Status::kStopped;
  if (access(store.FifoPath(state.id).c_str(), F_OK) == 0) return Status::kCreated;
  if (frozen()) return Status::kPaused;
  return Status::kRunning;
}

}  // namespace moat::runtime
