// Result<T>: a value or an Error (std::expected arrives only in C++23).
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <utility>
#include <variant>

#include "sandbox/sys/error.h"

namespace sandrun {

// The value of a Result<void>.
struct Unit {};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T take() { return std::move(value()); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  Error& error() & { assert(!ok()); return std::get<1>(v_); }
  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

  // Wraps the error (if any) with an outer context and passes the result on.
  Result wrap(std::string context) && {
    if (!ok()) error().wrap(std::move(context));
    return std::move(*this);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unit) {}  // NOLINT
  Result(Error error) : error_(std::make_unique<Error>(std::move(error))) {}  // NOLINT

  bool ok() const { return !error_; }
  explicit operator bool() const { return ok(); }
  Unit take() { return {}; }
  void value() const { assert(ok()); }

  Error& error() & { return *error_; }
  const Error& error() const& { return *error_; }
  Error&& error() && { return std::move(*error_); }

  Result wrap(std::string context) && {
    if (!ok()) error_->wrap(std::move(context));
    return std::move(*this);
  }

 private:
  // A pointer keeps the success path (the common one) one word wide.
  std::unique_ptr<Error> error_;
};

}  // namespace sandrun

// Evaluates a Result-returning expression; on error returns the error from the enclosing
// function, otherwise yields the value (Unit for Result<void>). GNU statement expression.
#define SANDRUN_TRY(expr)                                   \
  ({                                                        \
    auto&& sandrun_try_result_ = (expr);                    \
    if (!sandrun_try_result_) {                             \
      return std::move(sandrun_try_result_).error();        \
    }                                                       \
    sandrun_try_result_.take();                             \
  })
