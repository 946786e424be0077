#pragma once

// Invariant checks. Never use them for outside input (specs, requests, image bytes).

namespace moat::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);
}  // namespace moat::internal

#define MOAT_CHECK(cond)                                                      \
  do {                                                                        \
    if (!(cond)) ::moat::internal::CheckFailed(__FILE__, __LINE__, #cond);    \
  } while (0)

#ifdef NDEBUG
#define MOAT_DCHECK(cond) \
  do {                    \
  } while (0)
#else
#define MOAT_DCHECK(cond) MOAT_CHECK(cond)
#endif
