#pragma once

#include <cerrno>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/check.h"
#include "base/strings.h"

namespace moat {

// The closed set of failure categories. The API maps them to HTTP statuses; the runtime maps
// all of them to exit code 1, as runc does.
enum class ErrorKind {
  kNotFound,
  kAlreadyExists,
  kInvalidArgument,
  kPermissionDenied,
  kConflict,
  kUnsupported,
  kUnavailable,
  kInternal,
};

const char* ErrorKindName(ErrorKind kind);

// A failure as data: what kind, the errno if a syscall failed (0 otherwise), and a lowercase
// message naming the path, id or syscall involved.
struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  int sys_errno = 0;
  std::string message;

  // Builds an error whose kind follows from `err` (ENOENT -> kNotFound, EPERM/EACCES ->
  // kPermissionDenied, ...); the message gets ": <strerror>" appended.
  static Error FromErrno(int err, std::string what);

  // Prefixes the message with "<context>: ".
  Error& Prefix(const std::string& context) &;

  std::string ToString() const { return message; }
};

Error MakeError(ErrorKind kind, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// Wraps an Error so that it converts to any Result<T>; returned through moat::Fail.
struct Unexpected {
  Error error;
};

inline Unexpected Fail(Error e) { return Unexpected{std::move(e)}; }
Unexpected Fail(ErrorKind kind, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// Fail with the current errno, e.g. FailErrno("open %s", path).
Unexpected FailErrno(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Result<T>: a value or an Error. Member names follow std::expected<T, Error>.
template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit
  template <typename U>
    requires(std::is_constructible_v<T, U &&> && !std::is_same_v<std::decay_t<U>, Result> &&
             !std::is_same_v<std::decay_t<U>, Unexpected> && !std::is_same_v<std::decay_t<U>, T>)
  Result(U&& value) : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}  // NOLINT
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}      // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    MOAT_CHECK(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    MOAT_CHECK(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    MOAT_CHECK(has_value());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    MOAT_CHECK(!has_value());
    return std::get<1>(v_);
  }
  Error&& error() && {
    MOAT_CHECK(!has_value());
    return std::get<1>(std::move(v_));
  }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }

  // Adds context to a failure; no effect on success. Returns by value: binding the result of
  // a temporary's Context() to a reference would dangle.
  Result Context(const char* fmt, ...) && __attribute__((format(printf, 2, 3))) {
    if (!has_value()) {
      va_list ap;
      va_start(ap, fmt);
      std::get<1>(v_).Prefix(VStrFormat(fmt, ap));
      va_end(ap);
    }
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  using value_type = void;
  Result() = default;
  Result(Unexpected u) : error_(std::move(u.error)), ok_(false) {}  // NOLINT: implicit

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const { MOAT_CHECK(ok_); }
  const Error& error() const& {
    MOAT_CHECK(!ok_);
    return error_;
  }
  Error&& error() && {
    MOAT_CHECK(!ok_);
    return std::move(error_);
  }
  Result Context(const char* fmt, ...) && __attribute__((format(printf, 2, 3))) {
    if (!ok_) {
      va_list ap;
      va_start(ap, fmt);
      error_.Prefix(VStrFormat(fmt, ap));
      va_end(ap);
    }
    return std::move(*this);
  }

 private:
  Error error_;
  bool ok_ = true;
};

inline Result<void> Ok() { return {}; }

}  // namespace moat

#define MOAT_CONCAT_INNER_(a, b) a##b
#define MOAT_CONCAT_(a, b) MOAT_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result) from the enclosing function, which returns a Result.
#define MOAT_TRY(expr)                                            \
  do {                                                            \
    auto moat_try_result_ = (expr);                               \
    if (!moat_try_result_.has_value())                            \
      return ::moat::Fail(std::move(moat_try_result_).error());   \
  } while (0)

#define MOAT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)               \
  auto tmp = (expr);                                              \
  if (!tmp.has_value()) return ::moat::Fail(std::move(tmp).error()); \
  lhs = std::move(tmp).value()

// `MOAT_ASSIGN_OR_RETURN(auto fd, sys::open(...));`
#define MOAT_ASSIGN_OR_RETURN(lhs, expr) \
  MOAT_ASSIGN_OR_RETURN_IMPL_(MOAT_CONCAT_(moat_result_, __LINE__), lhs, expr)
