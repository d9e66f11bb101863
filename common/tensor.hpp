// SPDX-License-Identifier: MIT
/// @file tensor.hpp
/// @brief Tensor: a shape, a dtype (fp32 or int32) and contiguous memory on the host or a GPU.
///
/// Deliberately small: every tensor is contiguous (row-major); views (`view`, `narrow`, `flat`)
/// share memory with their parent. Device memory comes from the DeviceAllocator that the CUDA
/// backend registers, so this file (and all lesson code) never mentions CUDA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <string>
#include <vector>

#include "common/check.hpp"

namespace fivefold {

/// Element type.
enum class DType : std::uint8_t { f32, i32 };
/// Where the memory lives.
enum class Device : std::uint8_t { host, cuda };
/// Row-major shape, outermost dimension first.
using Shape = std::vector<std::int64_t>;

/// Bytes per element of @p t.
std::size_t dtype_size(DType t);
/// "f32" or "i32".
const char* dtype_name(DType t);
/// "host" or "cuda".
const char* device_name(Device d);
/// Number of elements of @p s (1 for the empty shape, a scalar).
std::int64_t shape_numel(const Shape& s);
/// "[2, 3, 4]".
std::string shape_str(const Shape& s);

/// Memory hooks for Device::cuda, registered by the CUDA backend (see backends/cuda).
class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  /// Allocates @p bytes of device memory.
  virtual void* allocate(std::size_t bytes) = 0;
  /// Frees memory from allocate().
  virtual void deallocate(void* p) = 0;
  /// Copies @p bytes between any two of host/device (synchronous with respect to the host).
  virtual void copy(void* dst, Device dst_dev, const void* src, Device src_dev, std::size_t bytes) = 0;
  /// Sets @p bytes of device memory to zero.
  virtual void zero(void* p, std::size_t bytes) = 0;
};
/// Registers the allocator used for Device::cuda (nullptr unregisters).
void set_device_allocator(DeviceAllocator* a);
/// The registered allocator, or nullptr when no GPU backend is active.
DeviceAllocator* device_allocator();

/// Bytes of tensor memory on one device, counted by Tensor::empty and the storage deleter.
/// Counts the bytes the tensors asked for (numel * dtype size), not the allocator's rounding,
/// so the numbers can be compared exactly with formulas. Views share memory and count nothing.
struct MemoryStats {
  std::int64_t live_bytes = 0;   ///< bytes held by tensors alive now
  std::int64_t peak_bytes = 0;   ///< maximum of live_bytes since start-up or the last reset_peak()
  std::int64_t allocations = 0;  ///< number of allocations since start-up
};
/// Live and peak tensor bytes on @p device (thread-safe snapshot).
MemoryStats memory_stats(Device device);
/// Sets the peak of @p device to its current live bytes (start of a measured region).
void reset_peak(Device device);

/// A contiguous n-dimensional array of fp32 or int32 on the host or a GPU.
class Tensor {
 public:
  /// An undefined tensor (no memory, numel 0).
  Tensor() = default;
  /// Uninitialised memory of @p shape.
  static Tensor empty(Shape shape, DType dtype = DType::f32, Device device = Device::host);
  /// Zero-filled memory of @p shape.
  static Tensor zeros(Shape shape, DType dtype = DType::f32, Device device = Device::host);
  /// Host fp32 tensor holding @p values (numel must match @p shape).
  static Tensor from_vector(const std::vector<float>& values, Shape shape);
  /// Host int32 tensor holding @p values (numel must match @p shape).
  static Tensor from_vector(const std::vector<std::int32_t>& values, Shape shape);

  /// True when the tensor owns or views memory.
  bool defined() const { return static_cast<bool>(storage_); }
  /// The shape.
  const Shape& shape() const { return shape_; }
  /// Size of dimension @p i (negative counts from the end).
  std::int64_t dim(int i) const;
  /// Number of dimensions.
  int ndim() const { return static_cast<int>(shape_.size()); }
  /// Number of elements.
  std::int64_t numel() const { return defined() ? shape_numel(shape_) : 0; }
  /// Number of bytes.
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
  /// Element type.
  DType dtype() const { return dtype_; }
  /// Memory location.
  Device device() const { return device_; }
  /// "f32[2, 3]@host".
  std::string str() const;

  /// Untyped pointer to the first element.
  void* raw() { return static_cast<char*>(storage_.get()) + offset_; }
  /// Untyped pointer to the first element.
  const void* raw() const { return static_cast<const char*>(storage_.get()) + offset_; }
  /// Typed pointer (checks that T matches the dtype).
  template <typename T> T* data() { check_type<T>(); return static_cast<T*>(raw()); }
  /// Typed pointer (checks that T matches the dtype).
  template <typename T> const T* data() const { check_type<T>(); return static_cast<const T*>(raw()); }
  /// Host element access by flat index (host tensors only).
  template <typename T> T& at(std::int64_t i) { check_host(); return data<T>()[i]; }
  /// Host element access by flat index (host tensors only).
  template <typename T> const T& at(std::int64_t i) const { check_host(); return data<T>()[i]; }

  /// Same memory, another shape with the same number of elements.
  Tensor view(Shape shape) const;
  /// Rows [start, start+len) of dimension 0, sharing memory.
  Tensor narrow(std::int64_t start, std::int64_t len) const;
  /// Elements [start, start+len) as a 1-D view, sharing memory.
  Tensor flat(std::int64_t start, std::int64_t len) const;
  /// A deep copy on the same device.
  Tensor clone() const;
  /// A deep copy on @p device.
  Tensor to(Device device) const;
  /// Copies @p src (same numel and dtype, any devices) into this tensor's memory.
  void copy_from(const Tensor& src);
  /// Sets every byte to zero.
  void zero();
  /// Host copy of an fp32 tensor as a vector.
  std::vector<float> to_vector() const;
  /// Host copy of an int32 tensor as a vector.
  std::vector<std::int32_t> to_ivector() const;

 private:
  template <typename T> void check_type() const;
  void check_host() const;

  std::shared_ptr<void> storage_;
  std::size_t offset_ = 0;  // bytes
  Shape shape_;
  DType dtype_ = DType::f32;
  Device device_ = Device::host;
};

template <typename T>
void Tensor::check_type() const {
  constexpr DType want = std::is_same_v<T, float> ? DType::f32 : DType::i32;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, std::int32_t>, "f32 or i32 only");
  FIVEFOLD_CHECK(dtype_ == want, "tensor ", str(), " accessed as ", dtype_name(want));
}

}  // namespace fivefold
