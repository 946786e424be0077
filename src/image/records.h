#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "image/store.h"

// The store's internal value types and their JSON forms. Only records_json.cc touches the
// JSON library (it catches its exceptions); everything else works on these structs.
namespace moat::image {

struct LayerRecord {
  std::string blob_digest;  // "sha256:..." of the blob as loaded (maybe compressed)
  std::string media_type;
  int64_t blob_size = 0;
  std::string diff_id;      // "sha256:..." of the uncompressed tar
  std::string chain_id;     // "sha256:..."
  int64_t size = 0;         // extracted bytes
};

// images/<hex>.json
struct ImageRecord {
  std::string id;               // "sha256:<config digest>"
  std::string manifest_digest;  // "sha256:..." of the stored manifest blob
  std::vector<LayerRecord> layers;  // bottom first
  int64_t size = 0;
  int64_t loaded = 0;  // unix seconds when stored (LastTagTime)
  std::vector<std::string> repo_digests;  // "busybox@sha256:<manifest digest>", sorted
};

// layers/<hex>/meta.json
struct LayerMeta {
  std::string diff_id, chain_id, parent;
  int64_t size = 0;
};

struct ParsedConfig {
  ImageConfigView view;
  std::vector<std::string> diff_ids;
  std::vector<HistoryEntry> history;
  int64_t created = 0;
  std::string architecture, os, author, comment, docker_version;
};

// One entry of a docker-archive manifest.json.
struct DockerManifestEntry {
  std::string config;                  // path in the archive
  std::vector<std::string> repo_tags;  // "busybox:latest"
  std::vector<std::string> layers;     // paths in the archive
};

struct Descriptor {
  std::string media_type, digest;
  int64_t size = 0;
  std::string ref_name;    // org.opencontainers.image.ref.name
  std::string image_name;  // io.containerd.image.name
  std::string os, architecture, variant;
  std::vector<std::string> urls;  // foreign layers' URLs
};

struct OciManifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

// All parsers return kInvalidArgument naming `what` on malformed JSON or wrong types.
Result<ParsedConfig> ParseConfig(const std::string& json);
Result<std::vector<DockerManifestEntry>> ParseDockerManifest(const std::string& json);
// An OCI image index: its manifest descriptors.
Result<std::vector<Descriptor>> ParseIndex(const std::string& json);
// Whether a manifest/index blob is an index (mediaType or a "manifests" member).
Result<bool> IsIndex(const std::string& json);
Result<OciManifest> ParseOciManifest(const std::string& json);
Result<ImageRecord> ParseImageRecord(const std::string& json);
std::string ImageRecordJson(const ImageRecord& r);
Result<std::map<std::string, std::string>> ParseRepositories(const std::string& json);
std::string RepositoriesJson(const std::map<std::string, std::string>& repos);
std::string LayerMetaJson(const LayerMeta& m);
Result<LayerMeta> ParseLayerMeta(const std::string& json);
// moat-extract's result line, or its error as kInvalidArgument.
struct ExtractReply {
  std::string diff_id;
  int64_t size = 0;
  bool tar_split = false;     // the tar-split record was written (moat-extract --tar-split)
  std::string tar_split_why;  // if not, why (empty without --tar-split)
};
Result<ExtractReply> ParseExtractReply(const std::string& line);

// Save: docker-archive manifest.json and "repositories", OCI manifest and index.
std::string DockerManifestJson(const std::vector<DockerManifestEntry>& entries);
std::string DockerRepositoriesJson(const std::map<std::string, std::map<std::string, std::string>>& r);
std::string OciManifestJson(const OciManifest& m);
std::string OciIndexJson(const std::vector<Descriptor>& manifests);

// Import: a config for a single-layer image.
Result<std::string> ImportConfigJson(const std::string& diff_id, const ImportOptions& options,
                                     int64_t created, const std::string& architecture);

// Commit: the parent image's config with `options.config_json` as its "config", `diff_id`
// appended to rootfs.diff_ids and a history entry appended.
Result<std::string> CommitConfigJson(const std::string& parent_config_json,
                                     const std::string& diff_id, const CommitOptions& options,
                                     int64_t created);

// Engine API JSON.
std::string SummaryJsonOf(const Image& image);
std::string InspectJsonOf(const Image& image);
std::string HistoryJsonOf(const Image& image, const std::vector<int64_t>& layer_sizes);

// Registry manifests (pull). The media type comes from the body's "mediaType" or, if the body
// has none, from the HTTP Content-Type; when both are given they must agree.
enum class ManifestKind { kImage, kIndex };
// kInvalidArgument naming the media type for anything but a Docker schema 2 manifest or
// manifest list, or an OCI manifest or index; kUnsupported for Docker schema 1.
Result<ManifestKind> ClassifyManifest(const std::string& json, const std::string& content_type);

struct ImageManifest {
  std::string media_type;  // Docker schema 2 or OCI manifest
  Descriptor config;
  std::vector<Descriptor> layers;
};
// Parses and validates an image manifest: schemaVersion 2, every descriptor with a sha256
// digest and a size >= 0, the config an image config (Docker or OCI), every layer a tar
// (plain, gzip or zstd; Docker or OCI media types). kInvalidArgument naming the offending
// descriptor; kUnsupported for foreign (non-distributable) layers.
Result<ImageManifest> ParseImageManifest(const std::string& json, const std::string& content_type);
// The media type of a gzip'd layer in a manifest of `manifest_media_type` (Docker schema 2 or
// OCI).
const char* GzipLayerMediaType(const std::string& manifest_media_type);
// The manifest `json` with the mediaType, digest and size of each layer descriptor replaced by
// those of `layers` (as many as it has); every other member is kept (push of recompressed
// layers). kInvalidArgument if it is not such a manifest.
Result<std::string> ReplaceManifestLayers(const std::string& json,
                                          const std::vector<Descriptor>& layers);
// Parses a manifest list / OCI index: its entries (with platform os/architecture/variant).
Result<std::vector<Descriptor>> ParseManifestIndex(const std::string& json);
// Chooses the entry of an index for os/architecture/variant: an entry with another variant
// than a non-empty `variant` does not match (arm64's "" and "v8" are the same); with `variant`
// empty the first entry for os/architecture wins. kNotFound "no matching manifest for
// linux/arm64 in the manifest list entries".
Result<Descriptor> ChoosePlatform(const std::vector<Descriptor>& entries, const std::string& os,
                                  const std::string& architecture, const std::string& variant);

// RFC 3339 <-> unix seconds.
std::string FormatRfc3339(int64_t t);
int64_t ParseRfc3339(const std::string& s);  // 0 if unparsable

}  // namespace moat::image
