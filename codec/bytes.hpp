// Byte buffer, bounds-checked reader and big-endian writer: the primitives every
// AMQP encoder and decoder is written in.
//
// The reader never reads past its end. A failed read returns a zero value and
// records the first error; decoders read a whole structure and check ok() once,
// which keeps the hot path free of a branch per field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "warren/codec/error.hpp"

namespace warren {

using bytes_view = std::span<const std::uint8_t>;

namespace detail {
// Size classes of the inline copies below: n in [17, 32] with two
// overlapping 16-byte moves, [8, 16] and [4, 7] with two overlapping words,
// [1, 3] with three single bytes.
[[gnu::always_inline]] inline void copy_17_32(unsigned char* d, const unsigned char* s,
                                              std::size_t n) noexcept {
  unsigned char a[16], b[16];
  std::memcpy(a, s, 16);
  std::memcpy(b, s + n - 16, 16);
  std::memcpy(d, a, 16);
  std::memcpy(d + n - 16, b, 16);
}
// Two overlapping moves of a word W: n in [sizeof(W), 2 * sizeof(W)].
template <class W>
[[gnu::always_inline]] inline void copy_two_words(unsigned char* d, const unsigned char* s,
                                                  std::size_t n) noexcept {
  W a, b;
  std::memcpy(&a, s, sizeof(W));
  std::memcpy(&b, s + n - sizeof(W), sizeof(W));
  std::memcpy(d, &a, sizeof(W));
  std::memcpy(d + n - sizeof(W), &b, sizeof(W));
}
[[gnu::always_inline]] inline void copy_1_3(unsigned char* d, const unsigned char* s,
                                            std::size_t n) noexcept {
  const unsigned char a = s[0], b = s[n / 2], c = s[n - 1];
  d[0] = a;
  d[n / 2] = b;
  d[n - 1] = c;
}

// memcpy for the short runs AMQP is full of (names, keys, tags, small bodies).
// A call into the C library's memcpy costs a few nanoseconds however short the
// copy; up to 64 bytes this copies inline with at most four overlapping 16-byte
// (or two smaller) moves instead. Source and destination must not overlap.
[[gnu::always_inline]] inline void copy_bytes(void* dst, const void* src, std::size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (n > 64) {
    std::memcpy(d, s, n);
  } else if (n > 32) {
    unsigned char a[16], b[16], c[16], e[16];
    std::memcpy(a, s, 16);
    std::memcpy(b, s + 16, 16);
    std::memcpy(c, s + n - 32, 16);
    std::memcpy(e, s + n - 16, 16);
    std::memcpy(d, a, 16);
    std::memcpy(d + 16, b, 16);
    std::memcpy(d + n - 32, c, 16);
    std::memcpy(d + n - 16, e, 16);
  } else if (n > 16) {
    copy_17_32(d, s, n);
  } else if (n >= 8) {
    copy_two_words<std::uint64_t>(d, s, n);
  } else if (n >= 4) {
    copy_two_words<std::uint32_t>(d, s, n);
  } else if (n != 0) {
    copy_1_3(d, s, n);
  }
}

// copy_bytes ordered for short strings (names and property values), which
// are mostly 16 bytes or fewer: the small sizes are tested first.
[[gnu::always_inline]] inline void copy_short_first(void* dst, const void* src,
                                                    std::size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (n <= 16) {
    if (n >= 8)
      copy_two_words<std::uint64_t>(d, s, n);
    else if (n >= 4)
      copy_two_words<std::uint32_t>(d, s, n);
    else if (n != 0)
      copy_1_3(d, s, n);
  } else if (n <= 32) {
    copy_17_32(d, s, n);
  } else {
    copy_bytes(d, s, n);
  }
}

// assign_chars() when the length changes.
[[gnu::noinline]] inline void assign_chars_resized(std::string& s, std::string_view v) {
  if (v.size() <= 64 && v.size() <= s.capacity()) {
    s.resize(v.size());
    copy_bytes(s.data(), v.data(), v.size());
  } else {
    s.assign(v);
  }
}

// s = v, reusing s's storage; v must not point into s.
[[gnu::always_inline]] inline void assign_chars(std::string& s, std::string_view v) {
  // The same length again (a consumer's tag, exchange and routing key from
  // one delivery to the next, a header's name): the bytes only, inline.
  if (v.size() == s.size() && v.size() <= 64) {
    copy_bytes(s.data(), v.data(), v.size());
    return;
  }
  assign_chars_resized(s, v);
}
}  // namespace detail

// A growable byte buffer that does not zero what it allocates. Writers append
// to it; clear() keeps the capacity, so a warm buffer never allocates.
class byte_buffer {
 public:
  byte_buffer() = default;
  explicit byte_buffer(std::size_t capacity) { reserve(capacity); }
  byte_buffer(const byte_buffer& o) { append(o.data(), o.size()); }
  byte_buffer& operator=(const byte_buffer& o) {
    if (this != &o) {
      clear();
      append(o.data(), o.size());
    }
    return *this;
  }
  byte_buffer(byte_buffer&& o) noexcept
      : data_(std::move(o.data_)), size_(o.size_), capacity_(o.capacity_) {
    o.size_ = o.capacity_ = 0;
  }
  byte_buffer& operator=(byte_buffer&& o) noexcept {
    data_ = std::move(o.data_);
    size_ = o.size_;
    capacity_ = o.capacity_;
    o.size_ = o.capacity_ = 0;
    return *this;
  }

  std::uint8_t* data() noexcept { return data_.get(); }
  const std::uint8_t* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  bytes_view view() const noexcept { return {data_.get(), size_}; }
  std::string_view str() const noexcept {
    return {reinterpret_cast<const char*>(data_.get()), size_};
  }

  void clear() noexcept { size_ = 0; }
  void reserve(std::size_t n) {
    if (n > capacity_) regrow(n);
  }
  // Appends n uninitialised bytes and returns where they start.
  std::uint8_t* extend(std::size_t n) {
    if (capacity_ - size_ < n) regrow(size_ + n);
    std::uint8_t* p = data_.get() + size_;
    size_ += n;
    return p;
  }
  void append(const void* p, std::size_t n) {
    if (n != 0) detail::copy_bytes(extend(n), p, n);
  }
  void resize(std::size_t n) {
    reserve(n);
    size_ = n;
  }
  // Drops the first n bytes, moving the rest to the front.
  void consume(std::size_t n) noexcept {
    if (n >= size_) {
      size_ = 0;
      return;
    }
    std::memmove(data_.get(), data_.get() + n, size_ - n);
    size_ -= n;
  }

 private:
  void regrow(std::size_t need) {
    std::size_t cap = capacity_ < 64 ? 64 : capacity_;
    while (cap < need) cap = cap * 2 > cap ? cap * 2 : need;
    std::unique_ptr<std::uint8_t[]> p(new std::uint8_t[cap]);
    if (size_ != 0) std::memcpy(p.get(), data_.get(), size_);
    data_ = std::move(p);
    capacity_ = cap;
  }

  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

namespace detail {
inline void store16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}
inline void store32(std::uint8_t* p, std::uint32_t v) noexcept {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void store64(std::uint8_t* p, std::uint64_t v) noexcept {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}
inline std::uint16_t load16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t load32(const std::uint8_t* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}
inline std::uint64_t load64(const std::uint8_t* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}

// The first error a reader or writer hit. Kept as value and category rather
// than as a std::error_code, whose default constructor calls into the C++
// library for the system category: a reader made per frame would pay that
// call every time.
class first_error {
 public:
  explicit operator bool() const noexcept { return value_ != 0; }
  std::error_code get() const noexcept {
    return cat_ != nullptr ? std::error_code(value_, *cat_) : std::error_code();
  }
  void set(std::error_code ec) noexcept {
    if (value_ == 0) {
      value_ = ec.value();
      cat_ = &ec.category();
    }
  }

 private:
  int value_ = 0;
  const std::error_category* cat_ = nullptr;
};
}  // namespace detail

// Reads big-endian values from a byte range. Never reads past the end: a read
// that would fails, returns zero/empty and leaves the reader failed.
class reader {
 public:
  reader() = default;
  reader(const std::uint8_t* p, std::size_t n) noexcept : p_(p), end_(p + n) {}
  explicit reader(bytes_view s) noexcept : reader(s.data(), s.size()) {}

  bool ok() const noexcept { return !error_; }
  std::error_code error() const noexcept { return error_.get(); }
  void fail(std::error_code ec) noexcept {
    error_.set(ec);
    p_ = end_;
  }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  bool empty() const noexcept { return p_ == end_; }
  const std::uint8_t* position() const noexcept { return p_; }

  [[gnu::always_inline]] std::uint8_t u8() noexcept {
    if (!need(1)) return 0;
    return *p_++;
  }
  [[gnu::always_inline]] std::uint16_t u16() noexcept {
    if (!need(2)) return 0;
    auto v = detail::load16(p_);
    p_ += 2;
    return v;
  }
  [[gnu::always_inline]] std::uint32_t u32() noexcept {
    if (!need(4)) return 0;
    auto v = detail::load32(p_);
    p_ += 4;
    return v;
  }
  [[gnu::always_inline]] std::uint64_t u64() noexcept {
    if (!need(8)) return 0;
    auto v = detail::load64(p_);
    p_ += 8;
    return v;
  }
  std::int8_t i8() noexcept { return static_cast<std::int8_t>(u8()); }
  std::int16_t i16() noexcept { return static_cast<std::int16_t>(u16()); }
  std::int32_t i32() noexcept { return static_cast<std::int32_t>(u32()); }
  std::int64_t i64() noexcept { return static_cast<std::int64_t>(u64()); }
  float f32() noexcept {
    std::uint32_t b = u32();
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  double f64() noexcept {
    std::uint64_t b = u64();
    double d;
    std::memcpy(&d, &b, 8);
    return d;
  }
  // Views into the underlying bytes: valid as long as they are.
  [[gnu::always_inline]] bytes_view bytes(std::size_t n) noexcept {
    if (!need(n)) return {};
    bytes_view v(p_, n);
    p_ += n;
    return v;
  }
  [[gnu::always_inline]] std::string_view shortstr() noexcept { return chars(u8()); }
  [[gnu::always_inline]] std::string_view longstr() noexcept { return chars(u32()); }
  // The same, copied into `out` reusing its storage (empty on failure): what
  // a decoder filling the same struct again and again wants.
  [[gnu::always_inline]] void shortstr_into(std::string& out) {
    detail::assign_chars(out, shortstr());
  }
  [[gnu::always_inline]] void longstr_into(std::string& out) {
    detail::assign_chars(out, longstr());
  }

 private:
  [[gnu::always_inline]] bool need(std::size_t n) noexcept {
    if (static_cast<std::size_t>(end_ - p_) >= n) return true;
    fail(errc::truncated);
    return false;
  }
  [[gnu::always_inline]] std::string_view chars(std::size_t n) noexcept {
    if (!need(n)) return {};
    std::string_view v(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return v;
  }

  const std::uint8_t* p_ = nullptr;
  const std::uint8_t* end_ = nullptr;
  detail::first_error error_;
};

// Appends big-endian values to a byte_buffer. Values that cannot be encoded
// (a shortstr over 255 bytes...) fail the writer; check ok() when done.
class writer {
 public:
  explicit writer(byte_buffer& out) noexcept : out_(&out) {}

  bool ok() const noexcept { return !error_; }
  std::error_code error() const noexcept { return error_.get(); }
  void fail(std::error_code ec) noexcept { error_.set(ec); }
  byte_buffer& buffer() noexcept { return *out_; }
  std::size_t size() const noexcept { return out_->size(); }

  void u8(std::uint8_t v) { *out_->extend(1) = v; }
  void u16(std::uint16_t v) { detail::store16(out_->extend(2), v); }
  void u32(std::uint32_t v) { detail::store32(out_->extend(4), v); }
  void u64(std::uint64_t v) { detail::store64(out_->extend(8), v); }
  void i8(std::int8_t v) { u8(static_cast<std::uint8_t>(v)); }
  void i16(std::int16_t v) { u16(static_cast<std::uint16_t>(v)); }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void f32(float f) {
    std::uint32_t b;
    std::memcpy(&b, &f, 4);
    u32(b);
  }
  void f64(double d) {
    std::uint64_t b;
    std::memcpy(&b, &d, 8);
    u64(b);
  }
  void bytes(const void* p, std::size_t n) { out_->append(p, n); }
  void shortstr(std::string_view s) {
    if (s.size() > 255) {
      fail(errc::string_too_long);
      return;
    }
    std::uint8_t* p = out_->extend(1 + s.size());
    *p = static_cast<std::uint8_t>(s.size());
    detail::copy_bytes(p + 1, s.data(), s.size());
  }
  void longstr(std::string_view s) {
    if (s.size() > 0xFFFFFFFFu) {
      fail(errc::value_too_large);
      return;
    }
    std::uint8_t* p = out_->extend(4 + s.size());
    detail::store32(p, static_cast<std::uint32_t>(s.size()));
    detail::copy_bytes(p + 4, s.data(), s.size());
  }
  // Overwrites a u32 already written at an absolute offset (length prefixes).
  void patch_u32(std::size_t offset, std::uint32_t v) noexcept {
    detail::store32(out_->data() + offset, v);
  }

 private:
  byte_buffer* out_;
  detail::first_error error_;
};

}  // namespace warren
