// Tensor: a ref-counted handle to (storage, offset, shape, strides, dtype) plus autograd state.
// Copying a Tensor copies the handle; both see the same data. View methods (reshape, permute,
// slice, ...) share storage and are recorded by autograd like any other op.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace ompq {

class Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  DType dtype = DType::kF32;
  // Autograd. A leaf that requires grad gets its gradient accumulated into `grad`; a non-leaf has
  // the node that produced it in `grad_fn`.
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;
  std::shared_ptr<TensorImpl> grad;
  std::weak_ptr<Node> grad_accumulator;
  int64_t version = 0;  // bumped by in-place writes
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories -------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::kF32,
                     Device device = Device::cpu());
  // 0, 1, ..., n-1.
  static Tensor arange(int64_t n, DType dtype = DType::kF32, Device device = Device::cpu());
  // A 0-dim tensor.
  static Tensor scalar(double value, DType dtype = DType::kF32, Device device = Device::cpu());
  // Copies `values` (whose C++ type decides the dtype) into a new CPU tensor of `shape`.
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  // A tensor over existing storage.
  static Tensor from_storage(std::shared_ptr<Storage> storage, int64_t offset, const Shape& shape,
                             const Shape& strides, DType dtype);

  // ---- metadata --------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return static_cast<int64_t>(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  size_t element_size() const { return dtype_size(impl().dtype); }
  size_t nbytes() const { return numel() * element_size(); }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  TensorImpl* unsafe_impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }
  std::string str() const;  // shape, dtype, device and (up to a limit) values

  // ---- data access (CPU)
  // -------------------------------------------------------------------------
  void* data_ptr() const;  // address of element 0 (storage data + offset)
  // Typed pointer; throws when T does not match the dtype.
  template <typename T>
  T* data() const;
  template <typename T>
  T item() const;  // the value of a one-element tensor (copied to CPU if needed)
  template <typename T>
  std::vector<T> to_vector() const;  // all values in logical (row-major) order
  double item_double() const;        // item() converted to double whatever the dtype

  // ---- views and copies (autograd-aware)
  // ---------------------------------------------------------
  Tensor view(const Shape& shape) const;     // must be expressible as a view; -1 infers one dim
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // slice of one, dim removed
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;  // -1 keeps a dim
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place writes (no autograd: for initializers, optimizers and buffers) -----------------
  Tensor& copy_(const Tensor& src);  // broadcasts src to this shape; converts dtype and device
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  void bump_version() const { ++impl().version; }

  // ---- autograd ---------------------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  Tensor grad() const;  // undefined until backward() reached this leaf
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;  // drops the gradient
  // Same data, no autograd history.
  Tensor detach() const;
  // Computes gradients of this tensor w.r.t. the leaves that require grad. `grad` defaults to 1
  // for a one-element tensor.
  void backward(const Tensor& grad = Tensor()) const;

 private:
  TensorImpl& impl() const {
    OMPQ_CHECK(impl_ != nullptr, "use of an undefined Tensor");
    return *impl_;
  }
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Raw views: no autograd; shapes and strides given explicitly.
Tensor as_strided(const Tensor& t, const Shape& shape, const Shape& strides, int64_t offset);

// Throws an Error naming `op` unless a and b have the same device.
void check_same_device(const Tensor& a, const Tensor& b, const char* op);
// Throws an Error naming `op` unless a and b have the same dtype.
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);

// ---- template definitions
// ------------------------------------------------------------------------
template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  OMPQ_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
             "from_vector: ", values.size(), " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, DTypeOf<T>::value);
  if (!values.empty()) std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(T));
  return t;
}

template <typename T>
T* Tensor::data() const {
  OMPQ_CHECK(DTypeOf<T>::value == dtype(), "data<", dtype_name(DTypeOf<T>::value),
             ">() on a tensor of dtype ", dtype_name(dtype()));
  return static_cast<T*>(data_ptr());
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::cpu()).to(DTypeOf<T>::value).contiguous();
  std::vector<T> out(c.numel());
  if (!out.empty()) std::memcpy(out.data(), c.data_ptr(), out.size() * sizeof(T));
  return out;
}

template <typename T>
T Tensor::item() const {
  OMPQ_CHECK(numel() == 1, "item(): tensor of shape ", shape_str(shape()), " has ", numel(),
             " elements (expected 1)");
  return to_vector<T>()[0];
}

}  // namespace ompq
