// A move-only, type-erased callable (std::function cannot hold Asio handlers,
// which are move-only; std::move_only_function is C++23).
//
// A callable of up to two pointers (an awaiting coroutine's handler and the
// driver, a shared_ptr) is kept inside the object; a larger one on the heap.
// Every operation the driver starts completes through one of these, so the
// small case saves a malloc and a free per operation: with synchronous
// confirms, one per message.
#pragma once

#include <cstddef>
#include <new>
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
  unique_function(F&& f) {
    using D = std::decay_t<F>;
    if constexpr (kept_inline<D>) {
      ::new (static_cast<void*>(store_)) D(std::forward<F>(f));
      ops_ = &inline_ops<D>;
    } else {
      D* p = new D(std::forward<F>(f));
      ::new (static_cast<void*>(store_)) D*(p);
      ops_ = &heap_ops<D>;
    }
  }

  unique_function(unique_function&& o) noexcept { take(o); }
  unique_function& operator=(unique_function&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  ~unique_function() { reset(); }

  explicit operator bool() const noexcept { return ops_ != nullptr; }
  R operator()(Args... args) { return ops_->call(store_, std::forward<Args>(args)...); }

  // Calls and empties: a one-shot completion cannot run twice. Calling an
  // empty one does nothing (fire-and-forget operations pass none). The
  // callable is moved out first, so it may refill this object.
  R consume(Args... args) {
    if (ops_ == nullptr) return R();
    unique_function f(std::move(*this));
    return f.ops_->call(f.store_, std::forward<Args>(args)...);
  }

 private:
  static constexpr std::size_t store_size = 2 * sizeof(void*);
  template <class D>
  static constexpr bool kept_inline =
      sizeof(D) <= store_size &&
      alignof(D) <= alignof(void*) && std::is_nothrow_move_constructible_v<D>;

  struct operations {
    R (*call)(void* store, Args&&... args);
    // Moves the callable from one store into the other (raw) one, and
    // destroys what is left in the first.
    void (*relocate)(void* from, void* to) noexcept;
    void (*destroy)(void* store) noexcept;
  };

  template <class D>
  static constexpr operations inline_ops{
      [](void* s, Args&&... args) -> R {
        return (*std::launder(static_cast<D*>(s)))(std::forward<Args>(args)...);
      },
      [](void* from, void* to) noexcept {
        D* f = std::launder(static_cast<D*>(from));
        ::new (to) D(std::move(*f));
        f->~D();
      },
      [](void* s) noexcept { std::launder(static_cast<D*>(s))->~D(); }};

  template <class D>
  static constexpr operations heap_ops{
      [](void* s, Args&&... args) -> R {
        return (**std::launder(static_cast<D**>(s)))(std::forward<Args>(args)...);
      },
      [](void* from, void* to) noexcept { ::new (to) D*(*std::launder(static_cast<D**>(from))); },
      [](void* s) noexcept { delete *std::launder(static_cast<D**>(s)); }};

  void take(unique_function& o) noexcept {
    if (o.ops_ == nullptr) return;
    o.ops_->relocate(o.store_, store_);
    ops_ = o.ops_;
    o.ops_ = nullptr;
  }
  void reset() noexcept {
    if (ops_ == nullptr) return;
    const operations* ops = ops_;
    ops_ = nullptr;
    ops->destroy(store_);
  }

  const operations* ops_ = nullptr;
  alignas(void*) unsigned char store_[store_size];
};

}  // namespace warren::detail
