#include "daemon/core/engine.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <thread>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/memory.h"
#include "base/sys/socket.h"
#include "daemon/core/container_internal.h"
#include "daemon/privsep/commands.h"

namespace moat::daemon::core {
namespace {

using privsep::Op;

std::string ArgString(const Json& args, const char* key) {
  auto it = args.find(key);
  return it != args.end() && it->is_string() ? it->get<std::string>() : std::string();
}
int64_t ArgInt(const Json& args, const char* key, int64_t fallback) {
  auto it = args.find(key);
  return it != args.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}
bool ArgBool(const Json& args, const char* key, bool fallback) {
  auto it = args.find(key);
  return it != args.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

Result<std::string> RequiredId(const Json& args, const char* key = "id") {
  std::string v = ArgString(args, key);
  if (v.empty() || v.size() > 256) return Fail(ErrorKind::kInvalidArgument, "%s: missing or too long", key);
  return v;
}

// {"status": N, "body": ...}: what the front answers.
Json Answer(int status, Json body = nullptr) { return {{"status", status}, {"body", std::move(body)}}; }

int64_t MemTotal() {
  std::ifstream f("/proc/meminfo");
  std::string k;
  int64_t v = 0;
  while (f >> k >> v) {
    if (k == "MemTotal:") return v * 1024;
    std::string unit;
    f >> unit;
  }
  return 0;
}

}  // namespace

Engine::Engine(EngineInfo info, image::Store* store, Containers* containers, Events* events, Networks* networks)
    : info_(std::move(info)), store_(store), containers_(containers), events_(events), networks_(networks) {}

Result<Json> Engine::Info() {
  auto counts = containers_->Count();
  auto images = store_->List();
  struct utsname u;
  uname(&u);
  std::string os = "Linux";
  if (auto rel = sys::ReadFile("/etc/os-release")) {
    for (const auto& line : StrSplit(*rel, '\n')) {
      if (line.rfind("PRETTY_NAME=", 0) == 0) {
        os = line.substr(12);
        if (os.size() >= 2 && os.front() == '"') os = os.substr(1, os.size() - 2);
      }
    }
  }
  bool v2 = ::access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return Json{{"ID", info_.daemon_id},
              {"Containers", counts.total},
              {"ContainersRunning", counts.running},
              {"ContainersPaused", counts.paused},
              {"ContainersStopped", counts.stopped},
              {"Images", images ? images->size() : 0},
              {"Driver", "overlay2"},
              {"DriverStatus", Json::array({{"Backing Filesystem", "extfs"}})},
              {"Plugins", {{"Volume", {"local"}}, {"Network", {"bridge", "host", "null"}}, {"Log", {"json-file"}}}},
              {"MemoryLimit", true},
              {"SwapLimit", true},
              {"CpuCfsPeriod", true},
              {"CpuCfsQuota", true},
              {"CPUShares", true},
              {"CPUSet", true},
              {"PidsLimit", true},
              {"IPv4Forwarding", false},
              {"Debug", false},
              {"NFd", 0},
              {"OomKillDisable", false},
              {"NGoroutines", 0},
              {"SystemTime", FormatTime(NowNano())},
              {"LoggingDriver", "json-file"},
              {"CgroupDriver", "cgroupfs"},
              {"CgroupVersion", v2 ? "2" : "1"},
              {"NEventsListener", 0},
              {"KernelVersion", u.release},
              {"OperatingSystem", os},
              {"OSVersion", ""},
              {"OSType", "linux"},
              {"Architecture", u.machine},
              {"IndexServerAddress", "https://index.docker.io/v1/"},
              {"RegistryConfig", {{"InsecureRegistryCIDRs", {"127.0.0.0/8"}}, {"IndexConfigs", Json::object()}, {"Mirrors", Json::array()}}},
              {"NCPU", std::thread::hardware_concurrency()},
              {"MemTotal", MemTotal()},
              {"DockerRootDir", info_.data_root},
              {"Name", host},
              {"Labels", Json::array()},
              {"ExperimentalBuild", false},
              {"ServerVersion", info_.version},
              {"Runtimes", {{"moat", {{"path", "moat-runtime"}}}}},
              {"DefaultRuntime", "moat"},
              {"Swarm", {{"NodeID", ""}, {"NodeAddr", ""}, {"LocalNodeState", "inactive"}, {"ControlAvailable", false}, {"Error", ""}, {"RemoteManagers", nullptr}}},
              {"LiveRestoreEnabled", true},
              {"Isolation", ""},
              {"InitBinary", "tini"},
              {"ContainerdCommit", {{"ID", ""}, {"Expected", ""}}},
              {"RuncCommit", {{"ID", ""}, {"Expected", ""}}},
              {"InitCommit", {{"ID", ""}, {"Expected", ""}}},
              {"SecurityOptions", {"name=seccomp,profile=moat-default", "name=no-new-privileges"}},
              {"Warnings", Json::array()}};
}

Result<Json> Engine::LoadImage(privsep::Request& r, std::vector<UniqueFd>* out_fds) {
  // fds: [client conn, body pipe (read end)]. The answer is a JSON message stream written into
  // a pipe whose read end goes back to the front.
  if (r.fds.size() < 2) return Fail(ErrorKind::kInvalidArgument, "image.load: no body stream");
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return FailErrno("pipe2");
  UniqueFd rd(p[0]);
  auto wr = std::make_shared<UniqueFd>(p[1]);
  auto body = std::make_shared<UniqueFd>(std::move(r.fds[1]));
  bool quiet = ArgBool(r.args, "quiet", false);
  std::thread([this, wr, body, quiet] {
    signal(SIGPIPE, SIG_IGN);
    auto line = [&](const Json& j) { (void)sys::WriteAll(wr->get(), Dump(j) + "\n"); };
    auto result = store_->Load(body->get(), [&](const std::string& msg) {
      if (!quiet) line({{"stream", msg + "\n"}});
    });
    if (!result) {
      line({{"errorDetail", {{"message", result.error().message}}}, {"error", result.error().message}});
      return;
    }
    for (const auto& t : result->tags) {
      line({{"stream", "Loaded image: " + t + "\n"}});
      Event e;
      e.type = "image";
      e.action = "load";
      e.id = t;
      e.attributes = {{"name", t}};
      events_->Publish(e);
    }
    if (result->tags.empty()) {
      for (const auto& id : result->ids) line({{"stream", "Loaded image ID: " + id + "\n"}});
    }
  }).detach();
  out_fds->push_back(std::move(rd));
  return Answer(200);
}

namespace {

// The core's check of what the front decoded (the front is not trusted).
Result<image::RegistryAuth> AuthArg(const Json& args) {
  MOAT_ASSIGN_OR_RETURN(privsep::RegistryAuthSpec spec,
                        privsep::DecodeRegistryAuth(args.value("auth", Json::object())));
  image::RegistryAuth a;
  a.username = spec.username;
  a.password = spec.password;
  a.identity_token = spec.identity_token;
  a.registry_token = spec.registry_token;
  a.server_address = spec.server_address;
  return a;
}

// One line of Docker's JSON message stream for a progress event.
Json ProgressJson(const image::ProgressEvent& e) {
  Json j = {{"status", e.status}};
  if (!e.id.empty()) j["id"] = e.id;
  if (e.current >= 0 || e.total >= 0) {
    Json d = Json::object();
    if (e.current >= 0) d["current"] = e.current;
    if (e.total >= 0) d["total"] = e.total;
    j["progressDetail"] = d;
  } else if (!e.id.empty()) {
    j["progressDetail"] = Json::object();
  }
  return j;
}

Json ErrorLine(const std::string& message) {
  return {{"errorDetail", {{"message", message}}}, {"error", message}};
}

// Runs `job` on its own thread writing JSON lines into a pipe; the read end is the answer's fd.
Result<Json> StreamJob(std::vector<UniqueFd>* out_fds,
                       std::function<void(const std::function<void(const Json&)>&)> job) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return FailErrno("pipe2");
  UniqueFd rd(p[0]);
  auto wr = std::make_shared<UniqueFd>(p[1]);
  std::thread([wr, job = std::move(job)] {
    signal(SIGPIPE, SIG_IGN);
    job([&](const Json& j) { (void)sys::WriteAll(wr->get(), Dump(j) + "\n"); });
  }).detach();
  out_fds->push_back(std::move(rd));
  return Answer(200);
}

}  // namespace

Result<Json> Engine::PullImage(privsep::Request& r, std::vector<UniqueFd>* out_fds) {
  MOAT_ASSIGN_OR_RETURN(image::Reference ref, image::ParseReference(ArgString(r.args, "ref")));
  image::PullOptions opts;
  MOAT_ASSIGN_OR_RETURN(opts.auth, AuthArg(r.args));
  Json platform = r.args.value("platform", Json::object());
  std::string text;
  if (platform.is_object() && !platform.value("os", "").empty()) {
    text = platform.value("os", "");
    if (!platform.value("architecture", "").empty()) text += "/" + platform.value("architecture", "");
    if (!platform.value("variant", "").empty()) text += "/" + platform.value("variant", "");
  }
  MOAT_ASSIGN_OR_RETURN(privsep::PlatformSpec ps, privsep::ParsePlatform(text));
  opts.os = ps.os;
  opts.architecture = ps.architecture;
  opts.variant = ps.variant;
  return StreamJob(out_fds, [this, ref, opts](const std::function<void(const Json&)>& line) {
    auto result = store_->Pull(ref, opts, [&](const image::ProgressEvent& e) { line(ProgressJson(e)); });
    if (!result) {
      MOAT_LOG(kWarning, "pull %s: %s", ref.String().c_str(), result.error().message.c_str());
      line(ErrorLine(result.error().message));
      return;
    }
    Event e{"image", "pull", ref.String(), {{"name", ref.String()}}, 0};
    events_->Publish(e);
  });
}

Result<Json> Engine::PushImage(privsep::Request& r, std::vector<UniqueFd>* out_fds) {
  MOAT_ASSIGN_OR_RETURN(image::Reference ref, image::ParseReference(ArgString(r.args, "ref")));
  MOAT_ASSIGN_OR_RETURN(image::RegistryAuth auth, AuthArg(r.args));
  MOAT_TRY(store_->Resolve(ref.String()));  // a clear 404 before any stream starts
  return StreamJob(out_fds, [this, ref, auth](const std::function<void(const Json&)>& line) {
    auto digest = store_->Push(ref, auth, [&](const image::ProgressEvent& e) { line(ProgressJson(e)); });
    if (!digest) {
      MOAT_LOG(kWarning, "push %s: %s", ref.String().c_str(), digest.error().message.c_str());
      line(ErrorLine(digest.error().message));
      return;
    }
    line({{"progressDetail", Json::object()}, {"aux", {{"Tag", ref.tag}, {"Digest", *digest}}}});
    Event e{"image", "push", ref.String(), {{"name", ref.String()}}, 0};
    events_->Publish(e);
  });
}

Result<Json> Engine::SaveImage(privsep::Request& r, std::vector<UniqueFd>* out_fds) {
  std::vector<std::string> names;
  if (r.args.contains("names") && r.args["names"].is_array()) {
    for (const auto& n : r.args["names"]) {
      if (n.is_string()) names.push_back(n.get<std::string>());
    }
  }
  if (names.empty()) return Fail(ErrorKind::kInvalidArgument, "no image names given");
  for (const auto& n : names) MOAT_TRY(store_->Resolve(n));
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return FailErrno("pipe2");
  UniqueFd rd(p[0]);
  auto wr = std::make_shared<UniqueFd>(p[1]);
  std::thread([this, wr, names] {
    signal(SIGPIPE, SIG_IGN);
    if (auto s = store_->Save(names, wr->get()); !s) {
      MOAT_LOG(kWarning, "image save: %s", s.error().message.c_str());
    }
  }).detach();
  out_fds->push_back(std::move(rd));
  return Answer(200);
}

Result<Json> Engine::Volumes(privsep::Request& r) {
  std::string root = info_.data_root + "/volumes";
  auto volume_json = [&](const std::string& name) {
    return Json{{"Name", name}, {"Driver", "local"}, {"Mountpoint", root + "/" + name + "/_data"},
                {"CreatedAt", ""}, {"Labels", Json::object()}, {"Scope", "local"}, {"Options", Json::object()}};
  };
  auto list = [&]() {
    std::vector<std::string> names;
    if (DIR* d = opendir(root.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && n[0] != '.') names.push_back(n);
      }
      closedir(d);
    }
    return names;
  };
  switch (r.op) {
    case Op::kVolumeList: {
      Json vols = Json::array();
      for (const auto& n : list()) vols.push_back(volume_json(n));
      return Answer(200, {{"Volumes", vols}, {"Warnings", Json::array()}});
    }
    case Op::kVolumeCreate: {
      std::string name = ArgString(r.args, "name");
      if (name.empty()) name = RandomId();
      MOAT_TRY(privsep::NormaliseContainerName(name).Context("invalid volume name"));
      MOAT_TRY(sys::MkdirAll(root + "/" + name + "/_data", 0755));
      Event e{"volume", "create", name, {{"driver", "local"}}, 0};
      events_->Publish(e);
      return Answer(201, volume_json(name));
    }
    case Op::kVolumeInspect: {
      MOAT_ASSIGN_OR_RETURN(std::string name, RequiredId(r.args, "name"));
      MOAT_TRY(privsep::NormaliseContainerName(name).Context("invalid volume name"));
      if (::access((root + "/" + name).c_str(), F_OK) != 0) {
        return Fail(ErrorKind::kNotFound, "get %s: no such volume", name.c_str());
      }
      return Answer(200, volume_json(name));
    }
    case Op::kVolumeRemove: {
      MOAT_ASSIGN_OR_RETURN(std::string name, RequiredId(r.args, "name"));
      MOAT_TRY(privsep::NormaliseContainerName(name).Context("invalid volume name"));
      if (::access((root + "/" + name).c_str(), F_OK) != 0) {
        return Fail(ErrorKind::kNotFound, "get %s: no such volume", name.c_str());
      }
      auto used = containers_->VolumesInUse();
      if (auto it = used.find(name); it != used.end() && !ArgBool(r.args, "force", false)) {
        return Fail(ErrorKind::kConflict, "remove %s: volume is in use - [%s]", name.c_str(), it->second.c_str());
      }
      MOAT_TRY(sys::RemoveAll(root + "/" + name));
      Event e{"volume", "destroy", name, {{"driver", "local"}}, 0};
      events_->Publish(e);
      return Answer(204);
    }
    case Op::kVolumePrune: {
      auto used = containers_->VolumesInUse();
      Json deleted = Json::array();
      for (const auto& n : list()) {
        if (used.count(n)) continue;
        if (sys::RemoveAll(root + "/" + n)) {
          deleted.push_back(n);
          Event e{"volume", "destroy", n, {{"driver", "local"}}, 0};
          events_->Publish(e);
        }
      }
      return Answer(200, {{"VolumesDeleted", deleted}, {"SpaceReclaimed", 0}});
    }
    default:
      return Fail(ErrorKind::kInternal, "not a volume op");
  }
}

Result<Json> Engine::NetworkOp(privsep::Request& r) {
  const Json& a = r.args;
  if (!networks_) return Fail(ErrorKind::kUnsupported, "networking is off in this daemon");
  switch (r.op) {
    case Op::kNetworkList: {
      MOAT_ASSIGN_OR_RETURN(Json j, networks_->List(a.value("filters", Json::object())));
      return Answer(200, j);
    }
    case Op::kNetworkCreate: {
      MOAT_ASSIGN_OR_RETURN(Json j, networks_->Create(a.value("body", Json::object())));
      return Answer(201, j);
    }
    case Op::kNetworkInspect: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, networks_->Inspect(id));
      return Answer(200, j);
    }
    case Op::kNetworkRemove: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(networks_->Remove(id));
      return Answer(204);
    }
    case Op::kNetworkConnect: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(privsep::EndpointSpec ep,
                            privsep::DecodeEndpointSpec(a.value("endpoint", Json::object()), "EndpointConfig"));
      MOAT_TRY(containers_->Connect(ArgString(a, "container"), id, ep));
      return Answer(200);
    }
    case Op::kNetworkDisconnect: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->Disconnect(ArgString(a, "container"), id, ArgBool(a, "force", false)));
      return Answer(200);
    }
    case Op::kNetworkPrune: {
      MOAT_ASSIGN_OR_RETURN(Json j, networks_->Prune(a.value("filters", Json::object())));
      return Answer(200, j);
    }
    default:
      return Fail(ErrorKind::kInternal, "not a network op");
  }
}

Result<Json> Engine::Dispatch(privsep::Request& r, std::vector<UniqueFd>* out) {
  const Json& a = r.args;
  switch (r.op) {
    case Op::kSystemInfo: {
      MOAT_ASSIGN_OR_RETURN(Json info, Info());
      return Answer(200, info);
    }
    case Op::kSystemDf: {
      Json images = Json::array();
      if (auto list = store_->List()) {
        for (const auto& img : *list) images.push_back(ParseJson(store_->SummaryJson(img)).value_or(Json::object()));
      }
      MOAT_ASSIGN_OR_RETURN(Json containers, containers_->List(true, 0, Json::object()));
      return Answer(200, {{"LayersSize", 0}, {"Images", images}, {"Containers", containers},
                          {"Volumes", Json::array()}, {"BuildCache", Json::array()}});
    }
    case Op::kEvents: {
      Json filters = a.contains("filters") ? a["filters"] : Json::object();
      MOAT_ASSIGN_OR_RETURN(UniqueFd fd, events_->Subscribe(ArgInt(a, "since", 0), ArgInt(a, "until", 0), filters));
      out->push_back(std::move(fd));
      return Answer(200);
    }
    case Op::kImageList: {
      MOAT_ASSIGN_OR_RETURN(auto list, store_->List());
      Json arr = Json::array();
      for (const auto& img : list) {
        MOAT_ASSIGN_OR_RETURN(Json j, ParseJson(store_->SummaryJson(img)));
        arr.push_back(j);
      }
      return Answer(200, arr);
    }
    case Op::kImageInspect:
    case Op::kImageHistory: {
      MOAT_ASSIGN_OR_RETURN(std::string name, RequiredId(a, "name"));
      MOAT_ASSIGN_OR_RETURN(image::Image img, store_->Resolve(name));
      MOAT_ASSIGN_OR_RETURN(Json j, ParseJson(r.op == Op::kImageInspect ? store_->InspectJson(img) : store_->HistoryJson(img)));
      return Answer(200, j);
    }
    case Op::kImageLoad:
      return LoadImage(r, out);
    case Op::kImageSave:
      return SaveImage(r, out);
    case Op::kImagePull:
      return PullImage(r, out);
    case Op::kImagePush:
      return PushImage(r, out);
    case Op::kAuth: {
      MOAT_ASSIGN_OR_RETURN(image::RegistryAuth auth, AuthArg(a));
      MOAT_ASSIGN_OR_RETURN(std::string token, store_->CheckAuth(auth));
      return Answer(200, {{"Status", "Login Succeeded"}, {"IdentityToken", token}});
    }
    case Op::kImageTag: {
      MOAT_ASSIGN_OR_RETURN(std::string name, RequiredId(a, "name"));
      std::string repo = ArgString(a, "repo"), tag = ArgString(a, "tag");
      MOAT_ASSIGN_OR_RETURN(image::Reference ref, image::ParseReference(tag.empty() ? repo : repo + ":" + tag));
      MOAT_TRY(store_->Tag(name, ref));
      Event e{"image", "tag", ref.String(), {{"name", ref.String()}}, 0};
      events_->Publish(e);
      return Answer(201);
    }
    case Op::kImageRemove: {
      MOAT_ASSIGN_OR_RETURN(std::string name, RequiredId(a, "name"));
      MOAT_ASSIGN_OR_RETURN(auto removed, store_->Remove(name, ArgBool(a, "force", false), [this](const std::string& id) {
        return containers_->ImageUser(id);
      }));
      Json arr = Json::array();
      for (const auto& [k, v] : removed) {
        arr.push_back({{k, v}});
        Event e{"image", k == "Untagged" ? "untag" : "delete", v, {{"name", v}}, 0};
        events_->Publish(e);
      }
      return Answer(200, arr);
    }
    case Op::kImagePrune: {
      MOAT_ASSIGN_OR_RETURN(auto gc, store_->CollectGarbage());
      return Answer(200, {{"ImagesDeleted", Json::array()}, {"SpaceReclaimed", gc.bytes_reclaimed}});
    }
    case Op::kImageImport: {
      if (r.fds.size() < 2) return Fail(ErrorKind::kInvalidArgument, "image.import: no body stream");
      std::optional<image::Reference> ref;
      std::string repo = ArgString(a, "repo"), tag = ArgString(a, "tag");
      if (!repo.empty()) {
        MOAT_ASSIGN_OR_RETURN(ref, image::ParseReference(tag.empty() ? repo : repo + ":" + tag));
      }
      image::ImportOptions opts;
      opts.message = ArgString(a, "message");
      MOAT_ASSIGN_OR_RETURN(image::Image img, store_->Import(r.fds[1].get(), ref, opts));
      return Answer(200, {{"status", img.id}});
    }
    case Op::kContainerCreate: {
      MOAT_ASSIGN_OR_RETURN(privsep::ContainerSpec spec,
                            privsep::DecodeContainerSpec(a.value("spec", Json::object()), ArgString(a, "name")));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Create(spec));
      return Answer(201, j);
    }
    case Op::kContainerStart: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(bool started, containers_->Start(id));
      return Answer(started ? 204 : 304);
    }
    case Op::kContainerStop: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(bool stopped, containers_->Stop(id, static_cast<int>(ArgInt(a, "timeout", -1))));
      return Answer(stopped ? 204 : 304);
    }
    case Op::kContainerRestart: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->Restart(id, static_cast<int>(ArgInt(a, "timeout", -1))));
      return Answer(204);
    }
    case Op::kContainerKill: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      std::string sig = ArgString(a, "signal");
      MOAT_ASSIGN_OR_RETURN(int signum, privsep::ParseSignal(sig.empty() ? "KILL" : sig));
      MOAT_TRY(containers_->Kill(id, signum));
      return Answer(204);
    }
    case Op::kContainerRemove: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->Remove(id, ArgBool(a, "force", false)));
      return Answer(204);
    }
    case Op::kContainerInspect: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Inspect(id));
      return Answer(200, j);
    }
    case Op::kContainerList: {
      Json filters = a.contains("filters") ? a["filters"] : Json::object();
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->List(ArgBool(a, "all", false), ArgInt(a, "limit", 0), filters));
      return Answer(200, j);
    }
    case Op::kContainerWait: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      // fds[0]: the API client's socket, when the front passed it (cancels on hang-up).
      int client = r.fds.empty() ? -1 : r.fds[0].get();
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Wait(id, ArgString(a, "condition"), client));
      return Answer(200, j);
    }
    case Op::kContainerLogs: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      LogOptions o;
      o.follow = ArgBool(a, "follow", false);
      o.stdout_ = ArgBool(a, "stdout", false);
      o.stderr_ = ArgBool(a, "stderr", false);
      o.timestamps = ArgBool(a, "timestamps", false);
      o.since_nano = ArgInt(a, "since", 0);
      o.until_nano = ArgInt(a, "until", 0);
      o.tail = ArgInt(a, "tail", -1);
      MOAT_ASSIGN_OR_RETURN(StreamResult s, containers_->Logs(id, o));
      out->push_back(std::move(s.fd));
      return Answer(200, {{"tty", s.tty}});
    }
    case Op::kContainerAttach: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      AttachOptions o;
      o.stdin_ = ArgBool(a, "stdin", false);
      o.stdout_ = ArgBool(a, "stdout", false);
      o.stderr_ = ArgBool(a, "stderr", false);
      o.stream = ArgBool(a, "stream", false);
      o.logs = ArgBool(a, "logs", false);
      MOAT_ASSIGN_OR_RETURN(StreamResult s, containers_->Attach(id, o));
      out->push_back(std::move(s.fd));
      return Answer(200, {{"tty", s.tty}});
    }
    case Op::kContainerResize: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->Resize(id, static_cast<int>(ArgInt(a, "h", 0)), static_cast<int>(ArgInt(a, "w", 0))));
      return Answer(200);
    }
    case Op::kContainerPause: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->Pause(id));
      return Answer(204);
    }
    case Op::kContainerUnpause: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->Unpause(id));
      return Answer(204);
    }
    case Op::kContainerRename: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->Rename(id, ArgString(a, "name")));
      return Answer(204);
    }
    case Op::kContainerTop: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Top(id, ArgString(a, "ps_args")));
      return Answer(200, j);
    }
    case Op::kContainerPrune: {
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Prune());
      return Answer(200, j);
    }
    case Op::kExecCreate: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(privsep::ExecSpec spec, privsep::DecodeExecSpec(a.value("spec", Json::object())));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->ExecCreate(id, spec));
      return Answer(201, j);
    }
    case Op::kExecStart: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(StreamResult s, containers_->ExecStart(id, ArgBool(a, "detach", false)));
      if (s.fd) out->push_back(std::move(s.fd));
      return Answer(200, {{"tty", s.tty}});
    }
    case Op::kExecInspect: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->ExecInspect(id));
      return Answer(200, j);
    }
    case Op::kExecResize: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_TRY(containers_->ExecResize(id, static_cast<int>(ArgInt(a, "h", 0)), static_cast<int>(ArgInt(a, "w", 0))));
      return Answer(200);
    }
    case Op::kVolumeList:
    case Op::kVolumeCreate:
    case Op::kVolumeInspect:
    case Op::kVolumeRemove:
    case Op::kVolumePrune:
      return Volumes(r);
    case Op::kNetworkList:
    case Op::kNetworkCreate:
    case Op::kNetworkInspect:
    case Op::kNetworkRemove:
    case Op::kNetworkConnect:
    case Op::kNetworkDisconnect:
    case Op::kNetworkPrune:
      return NetworkOp(r);
    case Op::kContainerStats: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Stats(id));
      return Answer(200, j);
    }
    case Op::kContainerUpdate: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Update(id, a.value("resources", Json::object())));
      return Answer(200, j);
    }
    case Op::kContainerArchiveStat: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->ArchiveStat(id, ArgString(a, "path")));
      return Answer(200, j);
    }
    case Op::kContainerArchiveGet: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      Json stat;
      MOAT_ASSIGN_OR_RETURN(StreamResult s, containers_->ArchiveGet(id, ArgString(a, "path"), &stat));
      out->push_back(std::move(s.fd));
      return Answer(200, stat);
    }
    case Op::kContainerArchivePut: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      if (r.fds.size() < 2) return Fail(ErrorKind::kInvalidArgument, "archive: no body stream");
      MOAT_TRY(containers_->ArchivePut(id, ArgString(a, "path"), r.fds[1].get(),
                                       ArgBool(a, "no_overwrite_dir_non_dir", false),
                                       ArgBool(a, "copy_uid_gid", false)));
      return Answer(200);
    }
    case Op::kContainerExport: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(StreamResult s, containers_->Export(id));
      out->push_back(std::move(s.fd));
      return Answer(200);
    }
    case Op::kContainerChanges: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Changes(id));
      return Answer(200, j);
    }
    case Op::kContainerCommit: {
      MOAT_ASSIGN_OR_RETURN(std::string id, RequiredId(a));
      MOAT_ASSIGN_OR_RETURN(Json j, containers_->Commit(id, a));
      return Answer(201, j);
    }
  }
  return Fail(ErrorKind::kInternal, "unhandled op");
}

privsep::Reply Engine::Handle(privsep::Request request) {
  privsep::Reply reply;
  reply.id = request.id;
  // The client connection travels with every request: its credentials are read here, from the
  // kernel, not from anything the front says (the policy work to come keys on them).
  if (!request.fds.empty()) {
    ucred cred{};
    socklen_t len = sizeof cred;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    bool tcp = getsockname(request.fds[0].get(), reinterpret_cast<sockaddr*>(&addr), &alen) == 0 &&
               (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
    if (tcp) {
      // TCP (TLS with a client certificate, terminated in the front): no kernel credentials;
      // the certificate's name as the front reports it.
      MOAT_LOG(kDebug, "request %s over TLS from client certificate CN=%s (per the front)",
               privsep::OpName(request.op), ArgString(request.args, "_tls_client_cn").c_str());
    } else if (getsockopt(request.fds[0].get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      MOAT_LOG(kDebug, "request %s from pid %d uid %u gid %u", privsep::OpName(request.op), cred.pid,
               cred.uid, cred.gid);
    }
  }
  std::vector<UniqueFd> out;
  auto result = Dispatch(request, &out);
  if (!result) {
    reply.ok = false;
    reply.error = result.error();
    return reply;
  }
  reply.result = std::move(*result);
  reply.fds = std::move(out);
  return reply;
}

Result<void> Engine::Serve(int sock) {
  // Shared with the request threads, which may outlive this loop.
  auto sender = std::make_shared<privsep::Sender>(sock);
  std::shared_ptr<sys::QuietReleaser> releaser;
  if (info_.release_quiet_ms > 0)
    releaser = std::make_shared<sys::QuietReleaser>(std::chrono::milliseconds(info_.release_quiet_ms));
  for (;;) {
    MOAT_ASSIGN_OR_RETURN(sys::Message m, sys::RecvWithFds(sock, privsep::kMaxMessage, privsep::kMaxFds));
    if (m.data.empty() && m.fds.empty()) return {};  // the front is gone
    auto request = privsep::DecodeRequest(m.data, std::move(m.fds));
    if (!request) {
      MOAT_LOG(kWarning, "front sent a bad request: %s", request.error().message.c_str());
      continue;
    }
    auto shared = std::make_shared<privsep::Request>(std::move(*request));
    if (releaser) releaser->Activity();
    std::thread([this, shared, sender, releaser] {
      privsep::Reply reply = Handle(std::move(*shared));
      std::vector<int> fds;
      for (const auto& fd : reply.fds) fds.push_back(fd.get());
      auto sent = sender->Send(privsep::EncodeReply(reply), fds);
      if (!sent) MOAT_LOG(kWarning, "reply to the front: %s", sent.error().message.c_str());
      reply = {};
      if (releaser) releaser->Activity();  // answered: the quiet counts from now
    }).detach();
  }
}

}  // namespace moat::daemon::core
