#include "base/result.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace moat {

namespace internal {
void CheckFailed(const char* file, int line, const char* cond) {
  fprintf(stderr, "moat: check failed at %s:%d: %s\n", file, line, cond);
  abort();
}
}  // namespace internal

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNotFound: return "not found";
    case ErrorKind::kAlreadyExists: return "already exists";
    case ErrorKind::kInvalidArgument: return "invalid argument";
    case ErrorKind::kPermissionDenied: return "permission denied";
    case ErrorKind::kConflict: return "conflict";
    case ErrorKind::kUnsupported: return "unsupported";
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kInternal: return "internal";
  }
  return "unknown";
}

namespace {
ErrorKind KindForErrno(int err) {
  switch (err) {
    case ENOENT: case ESRCH: case ENODEV: case ENXIO: return ErrorKind::kNotFound;
    case EEXIST: return ErrorKind::kAlreadyExists;
    case EINVAL: case ENAMETOOLONG: case ELOOP: case ENOTDIR: case EISDIR: case EXDEV:
      return ErrorKind::kInvalidArgument;
    case EPERM: case EACCES: case EROFS: return ErrorKind::kPermissionDenied;
    case EBUSY: case ENOTEMPTY: return ErrorKind::kConflict;
    case ENOSYS: case EOPNOTSUPP: return ErrorKind::kUnsupported;
    case EAGAIN: case ENOSPC: case ENOMEM: case EMFILE: case ENFILE: return ErrorKind::kUnavailable;
    default: return ErrorKind::kInternal;
  }
}
}  // namespace

Error Error::FromErrno(int err, std::string what) {
  Error e;
  e.kind = KindForErrno(err);
  e.sys_errno = err;
  e.message = std::move(what);
  e.message += ": ";
  e.message += strerrordesc_np(err) ? strerrordesc_np(err) : "unknown error";
  return e;
}

Error& Error::Prefix(const std::string& context) & {
  message = context + ": " + message;
  return *this;
}

Error MakeError(ErrorKind kind, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Error e{kind, 0, VStrFormat(fmt, ap)};
  va_end(ap);
  return e;
}

Unexpected Fail(ErrorKind kind, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  Error e{kind, 0, VStrFormat(fmt, ap)};
  va_end(ap);
  return Unexpected{std::move(e)};
}

Unexpected FailErrno(const char* fmt, ...) {
  int err = errno;
  va_list ap;
  va_start(ap, fmt);
  std::string what = VStrFormat(fmt, ap);
  va_end(ap);
  return Unexpected{Error::FromErrno(err, std::move(what))};
}

}  // namespace moat
