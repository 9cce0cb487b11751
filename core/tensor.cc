#include "core/tensor.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/autograd.h"
#include "core/ops/copy.h"
#include "core/trace.h"

namespace ompq {
namespace {

Shape infer_size(const Shape& requested, int64_t numel, const char* op) {
  Shape shape = requested;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      OMPQ_CHECK(infer < 0, op, ": only one dim may be -1 in ", shape_str(requested));
      infer = static_cast<int>(i);
    } else {
      OMPQ_CHECK(shape[i] >= 0, op, ": negative size in ", shape_str(requested));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    OMPQ_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape_str(requested),
               " is invalid for ", numel, " elements");
    shape[infer] = numel / known;
  }
  OMPQ_CHECK(shape_numel(shape) == numel, op, ": shape ", shape_str(requested), " is invalid for ",
             numel, " elements");
  return shape;
}

// Strides that let `new_shape` view memory laid out as (old_shape, old_strides), or nothing
// when the view would need a copy: each run of merged old dims must be contiguous in itself.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides,
                                  const Shape& new_shape) {
  Shape new_strides(new_shape.size());
  // Empty and 0-dim tensors: any strides address their (zero or one) elements.
  if (shape_numel(old_shape) == 0 || old_shape.empty()) return contiguous_strides(new_shape);
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1;
  int64_t view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 ||
        (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

}  // namespace

Tensor as_strided(const Tensor& t, const Shape& shape, const Shape& strides, int64_t offset) {
  return make_view(t, shape, strides, offset);
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  OMPQ_CHECK(a.device() == b.device(), op, ": tensors on different devices (", a.device().str(),
             " and ", b.device().str(), ")");
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  OMPQ_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch (", dtype_name(a.dtype()),
             " with shape ", shape_str(a.shape()), " and ", dtype_name(b.dtype()), " with shape ",
             shape_str(b.shape()), ")");
}

// ---- factories
// -----------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t s : shape) OMPQ_CHECK(s >= 0, "empty: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}

Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  ops::fill_(t, value);
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  std::vector<double> values(n);
  std::iota(values.begin(), values.end(), 0.0);
  return from_vector(values, {n}).to(dtype).to(device);
}

Tensor Tensor::scalar(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, int64_t offset, const Shape& shape,
                            const Shape& strides, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// ---- metadata
// ------------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(storage()->data()) + offset() * static_cast<int64_t>(element_size());
}

double Tensor::item_double() const { return item<double>(); }

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype())
     << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  constexpr int64_t kMaxShown = 32;
  if (numel() > 0) {
    std::vector<double> values =
        (numel() <= kMaxShown ? *this : detach().flatten().slice(0, 0, kMaxShown))
            .to_vector<double>();
    os << ", values=[";
    for (size_t i = 0; i < values.size(); ++i)
      os << (i ? ", " : "") << absl::StrFormat("%.6g", values[i]);
    if (numel() > kMaxShown) os << ", ... (" << numel() << " in all)";
    os << "]";
  }
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

// ---- views
// ---------------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& requested) const {
  return trace::traced(
      [&]() -> Tensor {
        Shape shape = infer_size(requested, numel(), "view");
        std::optional<Shape> strides = view_strides(this->shape(), this->strides(), shape);
        OMPQ_CHECK(strides.has_value(), "view: shape ", shape_str(requested),
                   " is not compatible with ", "the strides of a tensor of shape ",
                   shape_str(this->shape()), "; use reshape()");
        Shape in_shape = this->shape();
        return record(
            make_view(*this, shape, *strides, offset()), {*this}, "ViewBackward",
            [in_shape](const Tensor& g) { return std::vector<Tensor>{g.reshape(in_shape)}; });
      },
      [&] {
        return trace::OpCall{trace::Op::kReshape, {*this}};
      });
}

Tensor Tensor::reshape(const Shape& requested) const {
  return trace::traced(
      [&]() -> Tensor {
        Shape shape = infer_size(requested, numel(), "reshape");
        if (view_strides(this->shape(), strides(), shape).has_value()) return view(shape);
        return contiguous().view(shape);
      },
      [&] {
        return trace::OpCall{trace::Op::kReshape, {*this}};
      });
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  return trace::traced(
      [&]() -> Tensor {
        if (dim() == 0) return reshape({1});
        int64_t s = wrap_dim(start_dim, dim(), "flatten");
        int64_t e = wrap_dim(end_dim, dim(), "flatten");
        OMPQ_CHECK(s <= e, "flatten: start_dim ", start_dim, " is after end_dim ", end_dim);
        Shape shape(this->shape().begin(), this->shape().begin() + s);
        int64_t merged = 1;
        for (int64_t d = s; d <= e; ++d) merged *= this->shape()[d];
        shape.push_back(merged);
        shape.insert(shape.end(), this->shape().begin() + e + 1, this->shape().end());
        return reshape(shape);
      },
      [&] {
        return trace::OpCall{trace::Op::kReshape, {*this}};
      });
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  OMPQ_CHECK(static_cast<int64_t>(dims.size()) == dim(), "permute: ", dims.size(),
             " dims given for a tensor of shape ", shape_str(shape()));
  Shape shape(dims.size()), strides(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    OMPQ_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated in ", shape_str(dims));
    inverse[d] = static_cast<int64_t>(i);
    shape[i] = this->shape()[d];
    strides[i] = this->strides()[d];
  }
  return record(make_view(*this, shape, strides, offset()), {*this}, "PermuteBackward",
                [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  std::vector<int64_t> dims(dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[wrap_dim(dim0, dim(), "transpose")], dims[wrap_dim(dim1, dim(), "transpose")]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  OMPQ_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = this->shape(), strides = this->strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Shape in_shape = this->shape();
  DType in_dtype = dtype();
  Device in_device = device();
  return record(make_view(*this, shape, strides, offset() + start * this->strides()[d]), {*this},
                "SliceBackward", [=](const Tensor& g) {
                  Tensor grad = Tensor::zeros(in_shape, in_dtype, in_device);
                  ops::copy_(grad.slice(d, start, end, step), g);
                  return std::vector<Tensor>{grad};
                });
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  int64_t n = shape()[d];
  OMPQ_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dim ", d,
             " of size ", n);
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape shape = this->shape();
  shape.erase(shape.begin() + d);
  return view(shape);
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape shape = this->shape();
  shape.insert(shape.begin() + d, 1);
  return view(shape);
}

Tensor Tensor::expand(const Shape& requested) const {
  OMPQ_CHECK(static_cast<int64_t>(requested.size()) >= dim(), "expand: shape ",
             shape_str(requested), " has fewer dims than ", shape_str(shape()));
  size_t lead = requested.size() - shape().size();
  Shape shape(requested.size()), strides(requested.size());
  for (size_t i = 0; i < requested.size(); ++i) {
    if (i < lead) {
      OMPQ_CHECK(requested[i] >= 0, "expand: -1 not allowed for a new leading dim in ",
                 shape_str(requested));
      shape[i] = requested[i];
      strides[i] = 0;
      continue;
    }
    int64_t own = this->shape()[i - lead];
    int64_t want = requested[i] == -1 ? own : requested[i];
    OMPQ_CHECK(own == want || own == 1, "expand: cannot expand shape ", shape_str(this->shape()),
               " to ", shape_str(requested));
    shape[i] = want;
    strides[i] = own == want ? this->strides()[i - lead] : 0;
  }
  if (shape == this->shape()) return *this;
  Shape in_shape = this->shape();
  return record(make_view(*this, shape, strides, offset()), {*this}, "ExpandBackward",
                [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to(g, in_shape)}; });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  ops::copy_(out, *this);
  return record(out, {*this}, "CloneBackward",
                [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor out = empty(shape(), dtype, device());
  ops::copy_(out, *this);
  DType in_dtype = this->dtype();
  return record(out, {*this}, "ToDTypeBackward",
                [in_dtype](const Tensor& g) { return std::vector<Tensor>{g.to(in_dtype)}; });
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), dtype(), device);
  ops::copy_(out, *this);
  Device in_device = this->device();
  return record(out, {*this}, "ToDeviceBackward",
                [in_device](const Tensor& g) { return std::vector<Tensor>{g.to(in_device)}; });
}

Tensor& Tensor::copy_(const Tensor& src) {
  ops::copy_(*this, src);
  return *this;
}

Tensor& Tensor::fill_(double value) {
  ops::fill_(*this, value);
  return *this;
}

// ---- autograd
// ------------------------------------------------------------------------------------

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  OMPQ_CHECK(!requires_grad || is_floating(dtype()), "set_requires_grad: only floating tensors ",
             "can require grad (dtype is ", dtype_name(dtype()), ")");
  OMPQ_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad");
  impl().requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& grad) const {
  impl().grad = grad.defined() ? grad.impl_ptr() : nullptr;
}

void Tensor::zero_grad() const { impl().grad = nullptr; }

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->offset = offset();
  impl->shape = shape();
  impl->strides = strides();
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

void Tensor::backward(const Tensor& grad) const {
  Tensor seed = grad;
  if (!seed.defined()) {
    OMPQ_CHECK(numel() == 1, "backward: a gradient must be given for a tensor of shape ",
               shape_str(shape()), " (only one-element tensors get an implicit 1)");
    seed = ones(shape(), dtype(), device());
  }
  OMPQ_CHECK(seed.shape() == shape(), "backward: gradient of shape ", shape_str(seed.shape()),
             " for a tensor of shape ", shape_str(shape()));
  run_backward(*this, seed);
}

}  // namespace ompq
