// images (image ls), load, save, import, tag, rmi (image rm), image prune.

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <set>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/tty.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/progress.h"

namespace moat::cli {
namespace {

struct ImagesOpts {
  bool all = false, quiet = false, no_trunc = false, digests = false;
  std::vector<std::string> filters;
  std::string format;
  std::vector<std::string> repo;  // optional REPOSITORY[:TAG] positional
};

Result<void> Images(Context& ctx, const ImagesOpts& o) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  std::vector<std::string> filters = o.filters;
  if (!o.repo.empty()) filters.push_back("reference=" + o.repo[0]);
  MOAT_ASSIGN_OR_RETURN(
      Json list, c->CallJson("GET", "/images/json" + Query({{"all", o.all ? "1" : ""},
                                                            {"filters", FiltersJson(filters)}})));
  int64_t now = static_cast<int64_t>(time(nullptr));
  std::vector<Json> rows;
  std::set<std::string> seen;
  if (list.is_array()) {
    for (const auto& img : list) {
      std::string id = GetString(img, "Id");
      std::string shown = o.no_trunc ? id : ShortId(id);
      if (o.quiet) {
        if (seen.insert(shown).second) printf("%s\n", shown.c_str());
        continue;
      }
      auto tags = GetStrings(img, "RepoTags");
      auto digests = GetStrings(img, "RepoDigests");
      if (tags.empty()) tags.push_back("<none>:<none>");
      for (const auto& rt : tags) {
        size_t colon = rt.rfind(':');
        if (colon != std::string::npos && rt.find('/', colon) != std::string::npos)
          colon = std::string::npos;
        Json r;
        r["Containers"] = GetInt(img, "Containers", -1) < 0 ? "N/A"
                                                           : std::to_string(GetInt(img, "Containers"));
        int64_t created = GetInt(img, "Created");
        r["CreatedAt"] = GoTimeString(created);
        r["CreatedSince"] = HumanDuration(now - created) + " ago";
        std::string digest = "<none>";
        for (const auto& d : digests)
          if (size_t at = d.find('@'); at != std::string::npos) digest = d.substr(at + 1);
        r["Digest"] = digest;
        r["ID"] = shown;
        r["Repository"] = colon == std::string::npos ? rt : rt.substr(0, colon);
        r["SharedSize"] = GetInt(img, "SharedSize", -1) < 0
                              ? "N/A"
                              : HumanSize(static_cast<double>(GetInt(img, "SharedSize")));
        r["Size"] = HumanSize(static_cast<double>(GetInt(img, "Size")));
        r["Tag"] = colon == std::string::npos ? "<none>" : rt.substr(colon + 1);
        r["UniqueSize"] = "N/A";
        r["VirtualSize"] = HumanSize(static_cast<double>(GetInt(img, "Size")));
        rows.push_back(r);
      }
    }
  }
  if (o.quiet) return Ok();
  Json headers;
  headers["Repository"] = "REPOSITORY";
  headers["Tag"] = "TAG";
  headers["ID"] = "IMAGE ID";
  headers["CreatedSince"] = "CREATED";
  headers["CreatedAt"] = "CREATED AT";
  headers["Size"] = "SIZE";
  headers["Digest"] = "DIGEST";
  std::string def = o.digests
                        ? "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                        : "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
  return PrintFormatted(o.format, def, headers, rows);
}

// A one-line progress display on stderr, redrawn in place; only when stderr is a terminal.
class Progress {
 public:
  Progress(const char* label, uint64_t total)
      : label_(label), total_(total), enabled_(sys::IsTerminal(2)) {}
  void Update(uint64_t done) {
    if (!enabled_) return;
    time_t now = time(nullptr);
    if (now == last_ && done != total_) return;
    last_ = now;
    std::string bar;
    if (total_ > 0) {
      int width = 50, filled = static_cast<int>(done * width / std::max<uint64_t>(total_, 1));
      filled = std::min(filled, width);
      bar = "[" + std::string(static_cast<size_t>(filled), '=') + (filled < width ? ">" : "") +
            std::string(static_cast<size_t>(width - filled - (filled < width ? 1 : 0)), ' ') +
            "] " + HumanSize(static_cast<double>(done)) + "/" +
            HumanSize(static_cast<double>(total_));
    } else {
      bar = HumanSize(static_cast<double>(done));
    }
    fprintf(stderr, "\r\033[K%s %s", label_, bar.c_str());
    fflush(stderr);
    drawn_ = true;
  }
  void Done() {
    if (drawn_) fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  const char* label_;
  uint64_t total_;
  bool enabled_;
  bool drawn_ = false;
  time_t last_ = 0;
};

Result<void> Load(Context& ctx, const std::string& input, bool quiet) {
  UniqueFd owned;
  int fd = 0;
  if (!input.empty()) {
    MOAT_ASSIGN_OR_RETURN(owned, sys::open(input, O_RDONLY | O_CLOEXEC));
    fd = owned.get();
  } else if (sys::IsTerminal(0)) {
    return Fail(ErrorKind::kInvalidArgument,
                "requested load from stdin, but stdin is a terminal: use -i FILE or redirect "
                "a tar archive (moat load < image.tar)");
  }
  uint64_t total = 0;
  if (auto st = sys::fstat(fd); st.has_value() && S_ISREG(st->st_mode))
    total = static_cast<uint64_t>(st->st_size);
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  Progress progress("Loading", total);
  ProgressDisplay messages(stdout, quiet);
  auto r = c->Upload("POST", "/images/load?quiet=1", fd, "application/x-tar",
                     [&](std::string_view d) { return messages.Feed(d); },
                     [&](uint64_t sent) {
                       if (!quiet) progress.Update(sent);
                     });
  progress.Done();
  MOAT_TRY(r);
  return messages.Finish();
}

Result<void> Save(Context& ctx, const std::vector<std::string>& images, const std::string& output) {
  UniqueFd owned;
  int fd = 1;
  if (!output.empty()) {
    MOAT_ASSIGN_OR_RETURN(owned, sys::open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    fd = owned.get();
  } else if (sys::IsTerminal(1)) {
    return Fail(ErrorKind::kInvalidArgument,
                "cowardly refusing to save to a terminal. Use the -o flag or redirect");
  }
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  std::string q;
  for (const auto& i : images) q += (q.empty() ? "?" : "&") + std::string("names=") + QueryEscape(i);
  Progress progress("Saving", 0);
  uint64_t written = 0;
  auto r = c->Stream("GET", "/images/get" + q, {}, [&](std::string_view d) -> Result<void> {
    MOAT_TRY(sys::WriteAll(fd, d));
    written += d.size();
    if (fd != 2) progress.Update(written);
    return Ok();
  });
  progress.Done();
  if (!r.has_value() && !output.empty()) (void)sys::unlinkat(AT_FDCWD, output, 0);
  return r;
}

Result<void> Import(Context& ctx, const std::string& file, const std::string& ref,
                    const std::vector<std::string>& changes, const std::string& message) {
  UniqueFd owned;
  int fd = 0;
  if (file != "-") {
    MOAT_ASSIGN_OR_RETURN(owned, sys::open(file, O_RDONLY | O_CLOEXEC));
    fd = owned.get();
  }
  std::string repo = ref, tag;
  size_t colon = ref.rfind(':');
  if (colon != std::string::npos && ref.find('/', colon) == std::string::npos) {
    repo = ref.substr(0, colon);
    tag = ref.substr(colon + 1);
  }
  std::string q = Query({{"fromSrc", "-"}, {"repo", repo}, {"tag", tag}, {"message", message}});
  for (const auto& ch : changes) q += "&changes=" + QueryEscape(ch);
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  ProgressDisplay messages(stdout, false);
  MOAT_TRY(c->Upload("POST", "/images/create" + q, fd, "application/x-tar",
                     [&](std::string_view d) { return messages.Feed(d); }, nullptr));
  return messages.Finish();
}

Result<void> Tag(Context& ctx, const std::string& source, const std::string& target) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  std::string repo = target, tag = "latest";
  size_t colon = target.rfind(':');
  if (colon != std::string::npos && target.find('/', colon) == std::string::npos) {
    repo = target.substr(0, colon);
    tag = target.substr(colon + 1);
  }
  if (target.find('@') != std::string::npos)
    return Fail(ErrorKind::kInvalidArgument, "refusing to create a tag with a digest reference");
  return c->CallOk("POST", "/images/" + source + "/tag" + Query({{"repo", repo}, {"tag", tag}}));
}

int Rmi(Context& ctx, const std::vector<std::string>& images, bool force, bool no_prune) {
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error());
  int status = 0;
  for (const auto& img : images) {
    auto r = (*client)->CallJson(
        "DELETE", "/images/" + img + Query({{"force", force ? "1" : ""},
                                            {"noprune", no_prune ? "1" : ""}}));
    if (!r.has_value()) {
      status = ReportError(r.error());
      continue;
    }
    if (r->is_array())
      for (const auto& e : *r) {
        if (!GetString(e, "Untagged").empty()) printf("Untagged: %s\n", GetString(e, "Untagged").c_str());
        if (!GetString(e, "Deleted").empty()) printf("Deleted: %s\n", GetString(e, "Deleted").c_str());
      }
  }
  return status;
}

Result<void> ImagePrune(Context& ctx, bool all, bool force, const std::vector<std::string>& filters) {
  if (!force &&
      !Confirm(all ? "WARNING! This will remove all images without at least one container associated to them."
                   : "WARNING! This will remove all dangling images."))
    return Ok();
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  std::vector<std::string> f = filters;
  f.push_back(all ? "dangling=false" : "dangling=true");
  MOAT_ASSIGN_OR_RETURN(Json r, c->CallJson("POST", "/images/prune" + Query({{"filters", FiltersJson(f)}})));
  if (const Json* del = Member(r, "ImagesDeleted"); del && del->is_array() && !del->empty()) {
    printf("Deleted Images:\n");
    for (const auto& d : *del) {
      if (!GetString(d, "Untagged").empty()) printf("untagged: %s\n", GetString(d, "Untagged").c_str());
      if (!GetString(d, "Deleted").empty()) printf("deleted: %s\n", GetString(d, "Deleted").c_str());
    }
    printf("\n");
  }
  printf("Total reclaimed space: %s\n",
         HumanSize(static_cast<double>(GetInt(r, "SpaceReclaimed"))).c_str());
  return Ok();
}

void AddImagesCmd(CLI::App* parent, const std::string& name, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand(name, "List images");
  auto o = std::make_shared<ImagesOpts>();
  cmd->add_flag("-a,--all", o->all, "show all images (default hides intermediate images)");
  cmd->add_flag("-q,--quiet", o->quiet, "only show image IDs");
  cmd->add_flag("--no-trunc", o->no_trunc, "don't truncate output");
  cmd->add_flag("--digests", o->digests, "show digests");
  cmd->add_option("-f,--filter", o->filters, "filter output based on conditions provided")->allow_extra_args(false);
  cmd->add_option("--format", o->format, "table, json or a Go template");
  cmd->add_option("repository", o->repo, "REPOSITORY[:TAG]")->expected(0, 1);
  cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Images(ctx, *o)); });
}

void AddRmiCmd(CLI::App* parent, const std::string& name, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand(name, "Remove one or more images");
  struct Opts {
    bool force = false, no_prune = false;
    std::vector<std::string> images;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_flag("-f,--force", o->force, "force removal of the image");
  cmd->add_flag("--no-prune", o->no_prune, "do not delete untagged parents");
  cmd->add_option("image", o->images, "IMAGE [IMAGE...]")->required();
  cmd->callback([&ctx, exit_code, o] { *exit_code = Rmi(ctx, o->images, o->force, o->no_prune); });
}

void AddLoadCmd(CLI::App* parent, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand("load", "Load an image from a tar archive or STDIN");
  struct Opts {
    std::string input;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-i,--input", o->input, "read from tar archive file, instead of STDIN");
  cmd->add_flag("-q,--quiet", o->quiet, "suppress the load output");
  cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Load(ctx, o->input, o->quiet)); });
}

void AddSaveCmd(CLI::App* parent, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand("save", "Save one or more images to a tar archive (streamed to STDOUT by default)");
  struct Opts {
    std::string output;
    std::vector<std::string> images;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-o,--output", o->output, "write to a file, instead of STDOUT");
  cmd->add_option("image", o->images, "IMAGE [IMAGE...]")->required();
  cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Save(ctx, o->images, o->output)); });
}

void AddImportCmd(CLI::App* parent, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand("import", "Import the contents from a tarball to create a filesystem image");
  struct Opts {
    std::string file, ref, message;
    std::vector<std::string> changes;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-c,--change", o->changes, "apply Dockerfile instruction to the created image")->allow_extra_args(false);
  cmd->add_option("-m,--message", o->message, "set commit message for imported image");
  cmd->add_option("file", o->file, "file or - for STDIN")->required();
  cmd->add_option("reference", o->ref, "REPOSITORY[:TAG]");
  cmd->callback([&ctx, exit_code, o] {
    *exit_code = ExitStatus(Import(ctx, o->file, o->ref, o->changes, o->message));
  });
}

void AddTagCmd(CLI::App* parent, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand("tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE");
  struct Opts {
    std::string source, target;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("source", o->source, "SOURCE_IMAGE[:TAG]")->required();
  cmd->add_option("target", o->target, "TARGET_IMAGE[:TAG]")->required();
  cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Tag(ctx, o->source, o->target)); });
}

}  // namespace

void AddImageCommands(CLI::App& app, Context& ctx, int* exit_code) {
  AddImagesCmd(&app, "images", ctx, exit_code);
  AddRmiCmd(&app, "rmi", ctx, exit_code);
  AddLoadCmd(&app, ctx, exit_code);
  AddSaveCmd(&app, ctx, exit_code);
  AddImportCmd(&app, ctx, exit_code);
  AddTagCmd(&app, ctx, exit_code);
  auto* image = app.add_subcommand("image", "Manage images");
  image->require_subcommand(1);
  AddImagesCmd(image, "ls", ctx, exit_code);
  AddImagesCmd(image, "list", ctx, exit_code);
  AddRmiCmd(image, "rm", ctx, exit_code);
  AddLoadCmd(image, ctx, exit_code);
  AddSaveCmd(image, ctx, exit_code);
  AddImportCmd(image, ctx, exit_code);
  AddTagCmd(image, ctx, exit_code);
  {
    auto* cmd = image->add_subcommand("prune", "Remove unused images");
    struct Opts {
      bool all = false, force = false;
      std::vector<std::string> filters;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-a,--all", o->all, "remove all unused images, not just dangling ones");
    cmd->add_flag("-f,--force", o->force, "do not prompt for confirmation");
    cmd->add_option("--filter", o->filters, "provide filter values (e.g. until=<timestamp>)")->allow_extra_args(false);
    cmd->callback([&ctx, exit_code, o] {
      *exit_code = ExitStatus(ImagePrune(ctx, o->all, o->force, o->filters));
    });
  }
}

}  // namespace moat::cli
