// A move-only, type-erased callable (std::function cannot hold Asio handlers,
// which are move-only; std::move_only_function is C++23).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace warren::detail {

template <class Signature>
class unique_function;

template <class R, class... Args>
class unique_function<R(Args...)> {
 public:
  unique_function() noexcept = default;
  unique_function(std::nullptr_t) noexcept {}
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, unique_function>>>
  unique_function(F&& f) : impl_(new model<std::decay_t<F>>(std::forward<F>(f))) {}

  unique_function(unique_function&&) noexcept = default;
  unique_function& operator=(unique_function&&) noexcept = default;

  explicit operator bool() const noexcept { return static_cast<bool>(impl_); }
  R operator()(Args... args) { return impl_->call(std::forward<Args>(args)...); }

  // Calls and empties: a one-shot completion cannot run twice. Calling an
  // empty one does nothing (fire-and-forget operations pass none).
  R consume(Args... args) {
    auto f = std::move(impl_);
    if (!f) return R();
    return f->call(std::forward<Args>(args)...);
  }

 private:
  struct concept_ {
    virtual ~concept_() = default;
    virtual R call(Args... args) = 0;
  };
  template <class F>
  struct model final : concept_ {
    explicit model(F&& f) : f_(std::move(f)) {}
    explicit model(const F& f) : f_(f) {}
    R call(Args... args) override { return f_(std::forward<Args>(args)...); }
    F f_;
  };
  std::unique_ptr<concept_> impl_;
};

}  // namespace warren::detail
