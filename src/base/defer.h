#pragma once

#include <utility>

namespace moat {

// Runs `fn` at scope exit unless Cancel() was called. Only for rolling back a multi-step
// operation; resources have their own RAII owners.
template <typename F>
class Defer {
 public:
  explicit Defer(F fn) : fn_(std::move(fn)) {}
  Defer(const Defer&) = delete;
  Defer& operator=(const Defer&) = delete;
  ~Defer() {
    if (armed_) fn_();
  }
  void Cancel() { armed_ = false; }

 private:
  F fn_;
  bool armed_ = true;
};

}  // namespace moat
