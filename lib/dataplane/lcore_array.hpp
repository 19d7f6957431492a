#pragma once
// Internal: memory an lcore writes while it runs. Per-lcore arrays (flow state, staging,
// counters, reorder bookkeeping) come from DPDK's heap on the lcore's NUMA socket, start on a
// cache line and fill whole cache lines, so no two lcores ever write the same line (no false
// sharing) and none reads its hot state across sockets. Sized once at start; nothing here
// allocates while packets flow.

#include <rte_common.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <type_traits>
#include <utility>

namespace segx::dataplane {

/// The NUMA socket of an lcore (0 when EAL does not know it).
inline int lcore_socket(unsigned lcore) {
  const unsigned s = rte_lcore_to_socket_id(lcore);
  return s == static_cast<unsigned>(SOCKET_ID_ANY) ? 0 : static_cast<int>(s);
}

/// A fixed-capacity array of T in whole cache lines of one socket's memory. Its capacity is
/// set once by init(); push_back() beyond it is a bug (it aborts), never a reallocation.
template <class T>
class LcoreArray {
 public:
  LcoreArray() = default;
  ~LcoreArray() { release(); }
  LcoreArray(const LcoreArray&) = delete;
  LcoreArray& operator=(const LcoreArray&) = delete;
  LcoreArray(LcoreArray&& o) noexcept { take(o); }
  LcoreArray& operator=(LcoreArray&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }

  /// Room for max(n, capacity) elements on `socket`, the first n value-initialised (what
  /// was there before is released). False when DPDK's heap has no room.
  bool init(size_t n, int socket, size_t capacity = 0) {
    release();
    const size_t cap = capacity > n ? capacity : n;
    const size_t bytes = RTE_ALIGN_CEIL((cap > 0 ? cap : 1) * sizeof(T), RTE_CACHE_LINE_SIZE);
    data_ = static_cast<T*>(rte_zmalloc_socket("segx_lcore", bytes, RTE_CACHE_LINE_SIZE, socket));
    if (data_ == nullptr) return false;
    capacity_ = cap;
    for (; size_ < n; ++size_)
      new (data_ + size_) T();
    return true;
  }
  /// Sets the first n elements (n <= capacity) to `value`; the rest are destroyed.
  void assign(size_t n, const T& value) {
    clear();
    if (n > capacity_) std::abort();
    for (; size_ < n; ++size_)
      new (data_ + size_) T(value);
  }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  T& back() { return data_[size_ - 1]; }
  /// Within the capacity init() gave.
  void push_back(const T& v) {
    if (size_ == capacity_) [[unlikely]]
      std::abort();
    new (data_ + size_++) T(v);
  }
  void pop_back() { data_[--size_].~T(); }
  void clear() {
    while (size_ > 0)
      data_[--size_].~T();
  }

 private:
  void release() {
    clear();
    rte_free(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  void take(LcoreArray& o) {
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    capacity_ = std::exchange(o.capacity_, 0);
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace segx::dataplane
