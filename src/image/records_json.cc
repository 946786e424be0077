// The image library's only nlohmann-json user: every call that can throw is inside Guard(),
// which turns exceptions into kInvalidArgument errors.
#include <time.h>

#include <nlohmann/json.hpp>

#include "image/records.h"

namespace moat::image {
namespace {

using json = nlohmann::json;

template <typename F>
auto Guard(const char* what, F&& f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInvalidArgument, "invalid %s: %s", what, e.what());
  }
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->get<std::string>();
}

std::vector<std::string> StrList(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return {};
  return it->get<std::vector<std::string>>();
}

std::vector<std::string> Keys(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  for (auto& [k, v] : it->items()) out.push_back(k);
  return out;
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

Descriptor ParseDescriptor(const json& d) {
  Descriptor out;
  out.media_type = Str(d, "mediaType");
  out.digest = d.at("digest").get<std::string>();
  out.size = d.value("size", int64_t{0});
  if (auto a = d.find("annotations"); a != d.end() && a->is_object()) {
    out.ref_name = Str(*a, "org.opencontainers.image.ref.name");
    out.image_name = Str(*a, "io.containerd.image.name");
  }
  if (auto p = d.find("platform"); p != d.end() && p->is_object()) {
    out.os = Str(*p, "os");
    out.architecture = Str(*p, "architecture");
    out.variant = Str(*p, "variant");
  }
  out.urls = StrList(d, "urls");
  return out;
}

json DescriptorJson(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  json ann = json::object();
  if (!d.ref_name.empty()) ann["org.opencontainers.image.ref.name"] = d.ref_name;
  if (!d.image_name.empty()) ann["io.containerd.image.name"] = d.image_name;
  if (!ann.empty()) j["annotations"] = ann;
  if (!d.os.empty()) j["platform"] = {{"os", d.os}, {"architecture", d.architecture}};
  return j;
}

}  // namespace

std::string FormatRfc3339(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t ParseRfc3339(const std::string& s) {
  struct tm tm = {};
  const char* p = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p) return 0;
  if (*p == '.')
    while (*++p >= '0' && *p <= '9') {
    }
  int64_t t = timegm(&tm);
  if (*p == '+' || *p == '-') {
    int h = 0, m = 0;
    // Offsets beyond a day are malformed (and would overflow): ignored.
    if (sscanf(p + 1, "%d:%d", &h, &m) == 2 && h >= 0 && h < 24 && m >= 0 && m < 60)
      t += (*p == '+' ? -1 : 1) * (int64_t{h} * 3600 + int64_t{m} * 60);
  }
  return t;
}

Result<ParsedConfig> ParseConfig(const std::string& text) {
  return Guard("image config", [&] {
    json j = json::parse(text);
    ParsedConfig pc;
    pc.architecture = Str(j, "architecture");
    pc.os = Str(j, "os");
    pc.author = Str(j, "author");
    pc.comment = Str(j, "comment");
    pc.docker_version = Str(j, "docker_version");
    pc.created = ParseRfc3339(Str(j, "created"));
    const json& rootfs = j.at("rootfs");
    pc.diff_ids = rootfs.at("diff_ids").get<std::vector<std::string>>();
    if (auto h = j.find("history"); h != j.end() && h->is_array()) {
      for (const auto& e : *h) {
        HistoryEntry he;
        he.created = ParseRfc3339(Str(e, "created"));
        he.created_by = Str(e, "created_by");
        he.comment = Str(e, "comment");
        he.empty_layer = e.value("empty_layer", false);
        pc.history.push_back(he);
      }
    }
    auto c = j.find("config");
    if (c == j.end()) c = j.find("container_config");
    if (c != j.end() && c->is_object()) {
      ImageConfigView& v = pc.view;
      v.user = Str(*c, "User");
      v.env = StrList(*c, "Env");
      v.entrypoint = StrList(*c, "Entrypoint");
      v.cmd = StrList(*c, "Cmd");
      v.working_dir = Str(*c, "WorkingDir");
      v.stop_signal = Str(*c, "StopSignal");
      v.shell = StrList(*c, "Shell");
      if (auto l = c->find("Labels"); l != c->end() && l->is_object())
        v.labels = l->get<std::map<std::string, std::string>>();
      v.exposed_ports = Keys(*c, "ExposedPorts");
      v.volumes = Keys(*c, "Volumes");
      if (auto t = c->find("StopTimeout"); t != c->end() && t->is_number_integer())
        v.stop_timeout = t->get<int64_t>();
      if (auto hc = c->find("Healthcheck"); hc != c->end() && !hc->is_null())
        v.healthcheck_json = Dump(*hc);
    }
    return pc;
  });
}

Result<std::vector<DockerManifestEntry>> ParseDockerManifest(const std::string& text) {
  return Guard("manifest.json", [&] {
    json j = json::parse(text);
    std::vector<DockerManifestEntry> out;
    if (!j.is_array()) throw std::runtime_error("not an array");
    for (const auto& e : j) {
      DockerManifestEntry d;
      d.config = e.at("Config").get<std::string>();
      d.repo_tags = StrList(e, "RepoTags");
      d.layers = e.at("Layers").get<std::vector<std::string>>();
      out.push_back(std::move(d));
    }
    return out;
  });
}

Result<bool> IsIndex(const std::string& text) {
  return Guard("manifest", [&] {
    json j = json::parse(text);
    std::string mt = Str(j, "mediaType");
    if (mt == "application/vnd.oci.image.index.v1+json" ||
        mt == "application/vnd.docker.distribution.manifest.list.v2+json")
      return true;
    return mt.empty() && j.contains("manifests");
  });
}

Result<std::vector<Descriptor>> ParseIndex(const std::string& text) {
  return Guard("image index", [&] {
    json j = json::parse(text);
    std::vector<Descriptor> out;
    for (const auto& d : j.at("manifests")) out.push_back(ParseDescriptor(d));
    return out;
  });
}

Result<OciManifest> ParseOciManifest(const std::string& text) {
  return Guard("image manifest", [&] {
    json j = json::parse(text);
    OciManifest m;
    m.config = ParseDescriptor(j.at("config"));
    for (const auto& l : j.at("layers")) m.layers.push_back(ParseDescriptor(l));
    return m;
  });
}

Result<ImageRecord> ParseImageRecord(const std::string& text) {
  return Guard("image record", [&] {
    json j = json::parse(text);
    ImageRecord r;
    r.id = j.at("id").get<std::string>();
    r.manifest_digest = Str(j, "manifest_digest");
    r.size = j.value("size", int64_t{0});
    r.loaded = j.value("loaded", int64_t{0});
    r.repo_digests = StrList(j, "repo_digests");
    for (const auto& l : j.at("layers")) {
      LayerRecord lr;
      lr.blob_digest = l.at("blob_digest").get<std::string>();
      lr.media_type = Str(l, "media_type");
      lr.blob_size = l.value("blob_size", int64_t{0});
      lr.diff_id = l.at("diff_id").get<std::string>();
      lr.chain_id = l.at("chain_id").get<std::string>();
      lr.size = l.value("size", int64_t{0});
      r.layers.push_back(lr);
    }
    return r;
  });
}

std::string ImageRecordJson(const ImageRecord& r) {
  json layers = json::array();
  for (const auto& l : r.layers) {
    layers.push_back({{"blob_digest", l.blob_digest},
                      {"media_type", l.media_type},
                      {"blob_size", l.blob_size},
                      {"diff_id", l.diff_id},
                      {"chain_id", l.chain_id},
                      {"size", l.size}});
  }
  json j = {{"id", r.id},         {"manifest_digest", r.manifest_digest}, {"layers", layers},
            {"size", r.size},     {"loaded", r.loaded}};
  if (!r.repo_digests.empty()) j["repo_digests"] = r.repo_digests;
  return Dump(j);
}

Result<std::map<std::string, std::string>> ParseRepositories(const std::string& text) {
  return Guard("repositories.json", [&] {
    return json::parse(text).get<std::map<std::string, std::string>>();
  });
}

std::string RepositoriesJson(const std::map<std::string, std::string>& repos) {
  return Dump(json(repos));
}

std::string LayerMetaJson(const LayerMeta& m) {
  return Dump(json{{"diff_id", m.diff_id},
                   {"chain_id", m.chain_id},
                   {"parent", m.parent},
                   {"size", m.size}});
}

Result<LayerMeta> ParseLayerMeta(const std::string& text) {
  return Guard("layer meta.json", [&] {
    json j = json::parse(text);
    LayerMeta m;
    m.diff_id = Str(j, "diff_id");
    m.chain_id = Str(j, "chain_id");
    m.parent = Str(j, "parent");
    m.size = j.value("size", int64_t{0});
    return m;
  });
}

Result<ExtractReply> ParseExtractReply(const std::string& line) {
  auto r = Guard("extractor reply", [&]() -> ExtractReply {
    json j = json::parse(line);
    if (j.contains("error")) return ExtractReply{"", -1, false, ""};
    ExtractReply x;
    x.diff_id = j.at("diff_id").get<std::string>();
    x.size = j.at("size").get<int64_t>();
    x.tar_split = j.value("tar_split", false);
    x.tar_split_why = j.value("tar_split_why", std::string());
    return x;
  });
  if (r && r->size < 0) {
    std::string msg = Guard("extractor reply", [&] {
                        return json::parse(line).at("error").get<std::string>();
                      }).value_or(std::string("unknown"));
    return Fail(ErrorKind::kInvalidArgument, "%s", msg.c_str());
  }
  return r;
}

std::string DockerManifestJson(const std::vector<DockerManifestEntry>& entries) {
  json arr = json::array();
  for (const auto& e : entries) {
    arr.push_back({{"Config", e.config},
                   {"RepoTags", e.repo_tags.empty() ? json(nullptr) : json(e.repo_tags)},
                   {"Layers", e.layers}});
  }
  return Dump(arr);
}

std::string DockerRepositoriesJson(
    const std::map<std::string, std::map<std::string, std::string>>& r) {
  return Dump(json(r));
}

std::string OciManifestJson(const OciManifest& m) {
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(DescriptorJson(l));
  return Dump(json{{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config", DescriptorJson(m.config)},
                   {"layers", layers}});
}

std::string OciIndexJson(const std::vector<Descriptor>& manifests) {
  json arr = json::array();
  for (const auto& d : manifests) arr.push_back(DescriptorJson(d));
  return Dump(json{{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.index.v1+json"},
                   {"manifests", arr}});
}

Result<std::string> ImportConfigJson(const std::string& diff_id, const ImportOptions& options,
                                     int64_t created, const std::string& architecture) {
  return Guard("import changes", [&] {
    json cfg = json::object();
    for (const auto& change : options.changes) {
      std::string c = change;
      size_t sp = c.find(' ');
      std::string kw = c.substr(0, sp);
      std::string arg = sp == std::string::npos ? "" : c.substr(sp + 1);
      for (auto& ch : kw) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
      auto list = [&](const std::string& a) -> json {
        if (!a.empty() && a[0] == '[') return json::parse(a);
        return json::array({"/bin/sh", "-c", a});
      };
      if (kw == "CMD") {
        cfg["Cmd"] = list(arg);
      } else if (kw == "ENTRYPOINT") {
        cfg["Entrypoint"] = list(arg);
      } else if (kw == "ENV") {
        size_t eq = arg.find('=');
        if (eq == std::string::npos) eq = arg.find(' ');
        if (eq == std::string::npos) throw std::runtime_error("ENV needs a value: " + change);
        cfg["Env"].push_back(arg.substr(0, eq) + "=" + arg.substr(eq + 1));
      } else if (kw == "WORKDIR") {
        cfg["WorkingDir"] = arg;
      } else if (kw == "USER") {
        cfg["User"] = arg;
      } else if (kw == "EXPOSE") {
        std::string p = arg.find('/') == std::string::npos ? arg + "/tcp" : arg;
        cfg["ExposedPorts"][p] = json::object();
      } else if (kw == "VOLUME") {
        cfg["Volumes"][arg] = json::object();
      } else if (kw == "LABEL") {
        size_t eq = arg.find('=');
        if (eq == std::string::npos) throw std::runtime_error("LABEL needs key=value: " + change);
        cfg["Labels"][arg.substr(0, eq)] = arg.substr(eq + 1);
      } else if (kw == "STOPSIGNAL") {
        cfg["StopSignal"] = arg;
      } else {
        throw std::runtime_error("unsupported change " + change);
      }
    }
    json j = {{"architecture", architecture},
              {"os", options.os},
              {"created", FormatRfc3339(created)},
              {"config", cfg},
              {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id}}}},
              {"history",
               {{{"created", FormatRfc3339(created)},
                 {"created_by", "moat import"},
                 {"comment", options.message.empty() ? "Imported from -" : options.message}}}}};
    return Dump(j);
  });
}

Result<std::string> CommitConfigJson(const std::string& parent_config_json,
                                     const std::string& diff_id, const CommitOptions& options,
                                     int64_t created) {
  return Guard("commit config", [&] {
    json j = json::parse(parent_config_json);
    if (!j.is_object()) throw std::runtime_error("the parent config is not an object");
    json cfg = json::parse(options.config_json);
    if (!cfg.is_object()) throw std::runtime_error("the config is not an object");
    j["config"] = cfg;
    j["created"] = FormatRfc3339(created);
    if (!options.author.empty()) {
      j["author"] = options.author;
    } else {
      j.erase("author");
    }
    if (!options.comment.empty()) {
      j["comment"] = options.comment;
    } else {
      j.erase("comment");
    }
    j.erase("container");
    j.erase("container_config");
    if (!j.contains("rootfs") || !j["rootfs"].is_object()) j["rootfs"] = {{"type", "layers"}};
    if (!j["rootfs"].contains("diff_ids") || !j["rootfs"]["diff_ids"].is_array())
      j["rootfs"]["diff_ids"] = json::array();
    j["rootfs"]["diff_ids"].push_back(diff_id);
    if (!j.contains("history") || !j["history"].is_array()) j["history"] = json::array();
    json h = {{"created", FormatRfc3339(created)}, {"created_by", options.created_by}};
    if (!options.author.empty()) h["author"] = options.author;
    if (!options.comment.empty()) h["comment"] = options.comment;
    j["history"].push_back(h);
    return Dump(j);
  });
}

std::string SummaryJsonOf(const Image& im) {
  json labels = im.config.labels.empty() ? json(nullptr) : json(im.config.labels);
  return Dump(json{{"Id", im.id},
                   {"ParentId", ""},
                   {"RepoTags", im.tags},
                   {"RepoDigests", im.repo_digests},
                   {"Created", im.created},
                   {"Size", im.size},
                   {"SharedSize", -1},
                   {"VirtualSize", im.size},
                   {"Labels", labels},
                   {"Containers", -1}});
}

std::string InspectJsonOf(const Image& im) {
  json config = nullptr;
  try {
    json raw = json::parse(im.config_json);
    if (raw.contains("config")) config = raw["config"];
  } catch (const std::exception&) {
  }
  std::string upper = im.layer_dirs.empty() ? "" : im.layer_dirs.back();
  std::string lower;
  for (size_t i = im.layer_dirs.size(); i-- > 0;) {
    if (i + 1 == im.layer_dirs.size()) continue;
    if (!lower.empty()) lower += ":";
    lower += im.layer_dirs[i];
  }
  json graph_data = {{"MergedDir", ""}, {"UpperDir", upper}, {"WorkDir", ""}};
  if (!lower.empty()) graph_data["LowerDir"] = lower;
  return Dump(json{{"Id", im.id},
                   {"RepoTags", im.tags},
                   {"RepoDigests", im.repo_digests},
                   {"Parent", ""},
                   {"Comment", im.comment},
                   {"Created", FormatRfc3339(im.created)},
                   {"DockerVersion", im.docker_version},
                   {"Author", im.author},
                   {"Config", config},
                   {"Architecture", im.architecture},
                   {"Os", im.os},
                   {"Size", im.size},
                   {"VirtualSize", im.size},
                   {"GraphDriver", {{"Name", "overlay2"}, {"Data", graph_data}}},
                   {"RootFS", {{"Type", "layers"}, {"Layers", im.diff_ids}}},
                   {"Metadata", {{"LastTagTime", "0001-01-01T00:00:00Z"}}}});
}

std::string HistoryJsonOf(const Image& im, const std::vector<int64_t>& layer_sizes) {
  json arr = json::array();
  size_t layer = 0;
  std::vector<json> items;
  for (const auto& h : im.history) {
    int64_t size = 0;
    if (!h.empty_layer && layer < layer_sizes.size()) size = layer_sizes[layer++];
    items.push_back({{"Id", "<missing>"},
                     {"Created", h.created},
                     {"CreatedBy", h.created_by},
                     {"Tags", nullptr},
                     {"Size", size},
                     {"Comment", h.comment}});
  }
  if (items.empty()) {
    items.push_back({{"Id", "<missing>"}, {"Created", im.created}, {"CreatedBy", ""},
                     {"Tags", nullptr}, {"Size", im.size}, {"Comment", ""}});
  }
  items.back()["Id"] = im.id;
  items.back()["Tags"] = im.tags;
  for (auto it = items.rbegin(); it != items.rend(); ++it) arr.push_back(*it);
  return Dump(arr);
}


// ---------------------------------------------------------------------------------------------
// Registry manifests

namespace {

constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
constexpr char kDockerList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr char kDockerSchema1[] = "application/vnd.docker.distribution.manifest.v1+json";
constexpr char kDockerSchema1Signed[] = "application/vnd.docker.distribution.manifest.v1+prettyjws";
constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";

constexpr const char* kLayerTypes[] = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
};
constexpr const char* kForeignLayerTypes[] = {
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
};

// The manifest's media type: the body's, else the Content-Type; they must agree if both set.
std::string EffectiveMediaType(const json& j, const std::string& content_type) {
  std::string body_mt = j.is_object() ? Str(j, "mediaType") : "";
  if (!body_mt.empty() && !content_type.empty() && body_mt != content_type &&
      content_type != "application/json" && content_type != "application/octet-stream")
    throw std::runtime_error("mediaType " + body_mt + " does not match the Content-Type " +
                             content_type);
  return body_mt.empty() ? content_type : body_mt;
}

bool ValidDigest(const std::string& d) {
  return d.size() == 71 && d.compare(0, 7, "sha256:") == 0 &&
         d.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
}

Descriptor CheckedDescriptor(const json& d, const char* what) {
  if (!d.is_object()) throw std::runtime_error(std::string(what) + " is not an object");
  Descriptor out = ParseDescriptor(d);
  if (!ValidDigest(out.digest))
    throw std::runtime_error(std::string(what) + " has an invalid digest \"" + out.digest + "\"");
  if (!d.contains("size") || !d["size"].is_number_integer() || out.size < 0)
    throw std::runtime_error(std::string(what) + " " + out.digest + " has no valid size");
  return out;
}

}  // namespace

Result<ManifestKind> ClassifyManifest(const std::string& text, const std::string& content_type) {
  MOAT_ASSIGN_OR_RETURN(std::string mt, Guard("manifest", [&] {
                          json j = json::parse(text);
                          if (!j.is_object()) throw std::runtime_error("not an object");
                          std::string m = EffectiveMediaType(j, content_type);
                          // OCI without any media type: an index has "manifests".
                          if (m.empty() || m == "application/json")
                            m = j.contains("manifests") ? kOciIndex : kOciManifest;
                          return m;
                        }));
  if (mt == kDockerManifest || mt == kOciManifest) return ManifestKind::kImage;
  if (mt == kDockerList || mt == kOciIndex) return ManifestKind::kIndex;
  if (mt == kDockerSchema1 || mt == kDockerSchema1Signed)
    return Fail(ErrorKind::kUnsupported, "Docker image manifest schema 1 (%s) is not supported",
                mt.c_str());
  return Fail(ErrorKind::kInvalidArgument, "unsupported manifest media type %s", mt.c_str());
}

const char* GzipLayerMediaType(const std::string& manifest_media_type) {
  return manifest_media_type == kDockerManifest ? kLayerTypes[0] : kLayerTypes[3];
}

Result<std::string> ReplaceManifestLayers(const std::string& text,
                                          const std::vector<Descriptor>& layers) {
  return Guard("image manifest", [&] {
    json j = json::parse(text);
    json& arr = j.at("layers");
    if (!arr.is_array() || arr.size() != layers.size())
      throw std::runtime_error("the manifest does not have " + std::to_string(layers.size()) +
                               " layers");
    for (size_t i = 0; i < layers.size(); ++i) {
      arr[i]["mediaType"] = layers[i].media_type;
      arr[i]["digest"] = layers[i].digest;
      arr[i]["size"] = layers[i].size;
    }
    return Dump(j);
  });
}

Result<ImageManifest> ParseImageManifest(const std::string& text, const std::string& content_type) {
  MOAT_ASSIGN_OR_RETURN(ManifestKind kind, ClassifyManifest(text, content_type));
  if (kind != ManifestKind::kImage)
    return Fail(ErrorKind::kInvalidArgument, "expected an image manifest, got an index");
  std::string foreign;
  auto m = Guard("image manifest", [&] {
    json j = json::parse(text);
    if (j.value("schemaVersion", 0) != 2) throw std::runtime_error("schemaVersion is not 2");
    ImageManifest out;
    out.media_type = EffectiveMediaType(j, content_type);
    if (out.media_type.empty() || out.media_type == "application/json")
      out.media_type = kOciManifest;
    out.config = CheckedDescriptor(j.at("config"), "config");
    if (out.config.media_type != kDockerConfig && out.config.media_type != kOciConfig)
      throw std::runtime_error("config " + out.config.digest + " has media type \"" +
                               out.config.media_type + "\", not an image config");
    if (!j.at("layers").is_array()) throw std::runtime_error("layers is not an array");
    for (const auto& l : j.at("layers")) {
      Descriptor d = CheckedDescriptor(l, "layer");
      bool ok = false;
      for (const char* t : kLayerTypes) ok = ok || d.media_type == t;
      for (const char* t : kForeignLayerTypes)
        if (d.media_type == t && foreign.empty()) foreign = d.digest;
      if (!ok && foreign != d.digest)
        throw std::runtime_error("layer " + d.digest + " has media type \"" + d.media_type +
                                 "\", not a layer tar");
      out.layers.push_back(std::move(d));
    }
    return out;
  });
  if (!m) return m;
  if (!foreign.empty())
    return Fail(ErrorKind::kUnsupported, "layer %s is a foreign (non-distributable) layer",
                foreign.c_str());
  return m;
}

Result<std::vector<Descriptor>> ParseManifestIndex(const std::string& text) {
  return Guard("image index", [&] {
    json j = json::parse(text);
    if (j.value("schemaVersion", 0) != 2) throw std::runtime_error("schemaVersion is not 2");
    if (!j.at("manifests").is_array()) throw std::runtime_error("manifests is not an array");
    std::vector<Descriptor> out;
    for (const auto& d : j.at("manifests")) out.push_back(CheckedDescriptor(d, "manifest"));
    return out;
  });
}

Result<Descriptor> ChoosePlatform(const std::vector<Descriptor>& entries, const std::string& os,
                                  const std::string& architecture, const std::string& variant) {
  auto norm = [&](const std::string& arch, const std::string& v) {
    return (arch == "arm64" && v.empty()) ? std::string("v8") : v;
  };
  for (const auto& e : entries) {
    // Docker's attestation manifests ("unknown/unknown") never match a real platform.
    if (e.os != os || e.architecture != architecture) continue;
    if (!variant.empty() && norm(e.architecture, e.variant) != norm(architecture, variant))
      continue;
    if (e.media_type != kDockerManifest && e.media_type != kOciManifest && !e.media_type.empty())
      continue;
    return e;
  }
  std::string want = os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
  return Fail(ErrorKind::kNotFound, "no matching manifest for %s in the manifest list entries",
              want.c_str());
}

}  // namespace moat::image
