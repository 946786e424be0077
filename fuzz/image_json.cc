// Fuzz target: the image store's parsers of image metadata, src/image/records.h — the JSON that
// `docker load` archives and registries hand over: image configs (ParseConfig, and
// CommitConfigJson, which rewrites a parent image's config), OCI / Docker schema 2 manifests
// (ParseOciManifest), indexes and manifest lists (IsIndex, ParseIndex) and docker-archive
// manifest.json (ParseDockerManifest). Every parser sees every input (a config seed may mutate
// into a manifest), and the registry pull's ClassifyManifest, ParseImageManifest,
// ParseManifestIndex and ChoosePlatform. Checks: a parsed manifest or index re-encodes to a fixpoint
// (Json(Parse(Json(x))) == Json(x)), and the timestamps a config yields format without
// failing as the Engine API does (FormatRfc3339).

#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "image/records.h"

using namespace moat::image;

namespace {

void CheckManifestFixpoint(const OciManifest& m) {
  std::string once = OciManifestJson(m);
  auto again = ParseOciManifest(once);
  if (!again) moat::fuzz::Violation("OciManifestJson output does not parse", again.error().message);
  if (OciManifestJson(*again) != once)
    moat::fuzz::Violation("manifest JSON is not a fixpoint", once);
}

void CheckIndexFixpoint(const std::vector<Descriptor>& manifests) {
  std::string once = OciIndexJson(manifests);
  auto again = ParseIndex(once);
  if (!again) moat::fuzz::Violation("OciIndexJson output does not parse", again.error().message);
  if (OciIndexJson(*again) != once) moat::fuzz::Violation("index JSON is not a fixpoint", once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  if (auto config = ParseConfig(text)) {
    (void)FormatRfc3339(config->created);
    for (const HistoryEntry& h : config->history) (void)FormatRfc3339(h.created);
    CommitOptions options;
    options.config_json = R"({"Cmd":["sh"]})";
    options.author = "fuzz";
    options.created_by = "moat commit";
    auto committed = CommitConfigJson(text, "sha256:" + std::string(64, 'a'), options, 0);
    if (!committed) moat::fuzz::Violation("a config that parses cannot be committed on",
                                          committed.error().message);
    auto reparsed = ParseConfig(*committed);
    if (!reparsed || reparsed->diff_ids.size() != config->diff_ids.size() + 1)
      moat::fuzz::Violation("a committed config does not parse with one more layer", *committed);
  } else {
    (void)CommitConfigJson(text, "sha256:" + std::string(64, 'a'), CommitOptions{}, 0);
  }

  auto is_index = IsIndex(text);
  if (auto index = ParseIndex(text)) CheckIndexFixpoint(*index);
  if (auto manifest = ParseOciManifest(text)) CheckManifestFixpoint(*manifest);
  if (auto entries = ParseDockerManifest(text)) {
    std::string once = DockerManifestJson(*entries);
    auto again = ParseDockerManifest(once);
    if (!again || DockerManifestJson(*again) != once)
      moat::fuzz::Violation("docker manifest.json is not a fixpoint", once);
  }
  (void)is_index;

  // The registry pull's parsers (records.h, added for issue #4's distribution client): the
  // media type comes from the body or from Content-Type, so try both ways.
  for (const char* content_type : {"", "application/vnd.oci.image.manifest.v1+json",
                                   "application/vnd.docker.distribution.manifest.list.v2+json"}) {
    auto kind = ClassifyManifest(text, content_type);
    if (!kind) continue;
    if (*kind == ManifestKind::kImage) {
      if (auto m = ParseImageManifest(text, content_type)) {
        if (m->config.digest.empty())
          moat::fuzz::Violation("ParseImageManifest accepted a config without digest", text);
      }
    } else if (auto entries = ParseManifestIndex(text)) {
      for (const char* arch : {"amd64", "arm64"}) {
        if (auto d = ChoosePlatform(*entries, "linux", arch, "")) {
          if (d->architecture != arch)
            moat::fuzz::Violation("ChoosePlatform chose another architecture", d->architecture);
        }
      }
    }
  }
  return 0;
}
