#include "image/test_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

#include <fstream>
#include <map>
#include <sstream>

#include "base/check.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "image/decompress.h"
#include "image/digest.h"

namespace moat::image::testing {

TempDir::TempDir() {
  std::string tmpl = "/tmp/moat-image-test-XXXXXX";
  MOAT_CHECK(mkdtemp(tmpl.data()) != nullptr);
  path_ = tmpl;
}

TempDir::~TempDir() { (void)sys::RemoveAll(path_); }

TarEntry File(std::string name, std::string data, mode_t mode) {
  TarEntry e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}
TarEntry Dir(std::string name, mode_t mode) {
  TarEntry e;
  e.type = TarEntry::kDir;
  e.name = std::move(name);
  e.mode = mode;
  return e;
}
TarEntry Symlink(std::string name, std::string target) {
  TarEntry e;
  e.type = TarEntry::kSymlink;
  e.name = std::move(name);
  e.link = std::move(target);
  e.mode = 0777;
  return e;
}
TarEntry Hardlink(std::string name, std::string target) {
  TarEntry e;
  e.type = TarEntry::kHardlink;
  e.name = std::move(name);
  e.link = std::move(target);
  return e;
}

std::string Noise(size_t n, uint32_t seed) {
  std::string out(n, '\0');
  for (char& c : out) {
    seed = seed * 1103515245 + 12345;
    c = static_cast<char>(seed >> 24);
  }
  return out;
}

std::string BuildTar(const std::vector<TarEntry>& entries) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  size_t cap = 1 << 20;
  for (const auto& e : entries) cap += e.data.size() + 8192;
  std::string out(cap, '\0');
  size_t used = 0;
  MOAT_CHECK(archive_write_open_memory(a, out.data(), out.size(), &used) == ARCHIVE_OK);
  for (const auto& t : entries) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.name.c_str());
    archive_entry_set_perm(e, t.mode);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    for (const auto& [k, v] : t.xattrs) archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    switch (t.type) {
      case TarEntry::kFile:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, static_cast<la_int64_t>(t.data.size()));
        break;
      case TarEntry::kDir: archive_entry_set_filetype(e, AE_IFDIR); break;
      case TarEntry::kSymlink:
        archive_entry_set_filetype(e, AE_IFLNK);
        archive_entry_set_symlink(e, t.link.c_str());
        break;
      case TarEntry::kHardlink:
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_hardlink(e, t.link.c_str());
        break;
      case TarEntry::kChar:
        archive_entry_set_filetype(e, AE_IFCHR);
        break;
      case TarEntry::kFifo: archive_entry_set_filetype(e, AE_IFIFO); break;
    }
    MOAT_CHECK(archive_write_header(a, e) == ARCHIVE_OK);
    if (t.type == TarEntry::kFile && !t.data.empty())
      MOAT_CHECK(archive_write_data(a, t.data.data(), t.data.size()) ==
                 static_cast<la_ssize_t>(t.data.size()));
    archive_entry_free(e);
  }
  MOAT_CHECK(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
  out.resize(used);
  return out;
}

std::string Digest(const std::string& data) { return "sha256:" + Sha256Hex(data); }

TestImage MakeImage(const std::vector<std::string>& layers, const std::string& cmd,
                    const std::string& tag, const std::string& compress) {
  TestImage im;
  im.tag = tag;
  std::string diff_ids;
  for (const auto& l : layers) {
    im.diff_ids.push_back(Digest(l));
    if (compress == "gzip") {
      im.layer_blobs.push_back(GzipCompress(l));
    } else if (compress == "zstd") {
      im.layer_blobs.push_back(ZstdCompress(l));
    } else {
      im.layer_blobs.push_back(l);
    }
    diff_ids += (diff_ids.empty() ? "\"" : ",\"") + im.diff_ids.back() + "\"";
  }
  im.config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-02T03:04:05Z\","
              "\"config\":{\"Cmd\":[\"" + cmd + "\"],\"Env\":[\"A=b\"],\"Labels\":{\"l\":\"v\"}},"
              "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" + diff_ids + "]},"
              "\"history\":[{\"created\":\"2024-01-02T03:04:05Z\",\"created_by\":\"test\"}]}";
  return im;
}

namespace {
std::string Hex(const std::string& data) { return Sha256Hex(data); }
}  // namespace

std::string OciLayoutTar(const std::vector<TestImage>& images) {
  std::vector<TarEntry> entries = {File("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}")};
  std::map<std::string, bool> seen;
  auto blob = [&](const std::string& data) {
    std::string h = Hex(data);
    if (!seen[h]) entries.push_back(File("blobs/sha256/" + h, data));
    seen[h] = true;
    return h;
  };
  std::string index = "{\"schemaVersion\":2,\"manifests\":[";
  bool first = true;
  for (const auto& im : images) {
    std::string layers;
    for (const auto& l : im.layer_blobs) {
      std::string h = blob(l);
      layers += StrFormat("%s{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
                          "\"digest\":\"sha256:%s\",\"size\":%zu}",
                          layers.empty() ? "" : ",", h.c_str(), l.size());
    }
    std::string ch = blob(im.config);
    std::string manifest = StrFormat(
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
        "\"digest\":\"sha256:%s\",\"size\":%zu},\"layers\":[%s]}",
        ch.c_str(), im.config.size(), layers.c_str());
    std::string mh = blob(manifest);
    std::string ann = im.tag.empty() ? "" : ",\"annotations\":{\"io.containerd.image.name\":\"" +
                                               im.tag + "\"}";
    index += StrFormat("%s{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                       "\"digest\":\"sha256:%s\",\"size\":%zu%s}",
                       first ? "" : ",", mh.c_str(), manifest.size(), ann.c_str());
    first = false;
  }
  index += "]}";
  entries.push_back(File("index.json", index));
  return BuildTar(entries);
}

std::string DockerArchiveTar(const std::vector<TestImage>& images) {
  std::vector<TarEntry> entries;
  std::string manifest = "[";
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& im = images[i];
    std::string ch = Hex(im.config);
    entries.push_back(File(ch + ".json", im.config));
    std::string layers;
    for (const auto& l : im.layer_blobs) {
      std::string id = Hex(l + ch);
      entries.push_back(Dir(id));
      entries.push_back(File(id + "/layer.tar", l));
      layers += (layers.empty() ? "\"" : ",\"") + id + "/layer.tar\"";
    }
    std::string tags = im.tag.empty() ? "null" : "[\"" + im.tag + "\"]";
    manifest += StrFormat("%s{\"Config\":\"%s.json\",\"RepoTags\":%s,\"Layers\":[%s]}",
                          i ? "," : "", ch.c_str(), tags.c_str(), layers.c_str());
  }
  manifest += "]";
  entries.push_back(File("manifest.json", manifest));
  return BuildTar(entries);
}

void WriteFileOrDie(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
  MOAT_CHECK(f.good());
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MOAT_CHECK(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace moat::image::testing
