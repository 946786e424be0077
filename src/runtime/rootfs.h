#pragma once

// The container's root: /dev contents, pivot_root, masked and read-only paths. All child-side
// functions run in the container's mount namespace; fds remain owned by the caller.

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "oci/spec.h"

namespace moat::runtime {

// The devices every container gets (runtime-spec "Default Devices") plus config.json's,
// deduplicated by path with the config winning.
std::vector<oci::Device> PlanDevices(const std::vector<oci::Device>& configured);

// Creates each device node under `root_fd`. `bind_from_host`: in a user namespace mknod is
// refused, so an empty file is created and the host's node of the same path bind-mounted on it.
enum class DeviceMode { kMknod, kBindFromHost };
Result<void> CreateDevicesInChild(int root_fd, const std::vector<oci::Device>& devices,
                                  DeviceMode mode);
// /dev/fd, /dev/std{in,out,err}, /dev/ptmx (-> pts/ptmx when /dev/pts is devpts), /dev/core.
Result<void> CreateDevSymlinksInChild(int root_fd);

// Makes the rootfs a mount point of its own (bind onto itself) after setting the propagation of
// "/" to `propagation`; returns an O_PATH fd of the new mount's root.
Result<UniqueFd> PrepareRootInChild(const std::string& rootfs, unsigned long propagation);

// pivot_root into `root_fd` with the old root stacked underneath and detached, without
// needing a put_old directory.
Result<void> PivotRootInChild(int root_fd);

// After pivot_root: bind /dev/null (`devnull_fd`, the container's own) over masked files,
// an empty read-only tmpfs over masked directories; missing paths are skipped.
Result<void> MaskPathsInChild(const std::vector<std::string>& paths, int devnull_fd);
// After pivot_root: recursive read-only binds of each path onto itself; missing are skipped.
Result<void> ReadonlyPathsInChild(const std::vector<std::string>& paths);
// After pivot_root: the whole rootfs read-only (the mounts on top keep their own flags).
Result<void> MakeRootReadonlyInChild();

}  // namespace moat::runtime
