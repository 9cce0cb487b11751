#include "core/cpu/dnnl_context.h"

#include "absl/strings/str_cat.h"

namespace ompq::cpu {

dnnl::engine& dnnl_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream stream(dnnl_engine());
  return stream;
}

dnnl::memory::data_type dnnl_data_type(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return dnnl::memory::data_type::f32;
    case DType::kBF16:
      return dnnl::memory::data_type::bf16;
    case DType::kF16:
      return dnnl::memory::data_type::f16;
    default:
      throw Error(absl::StrCat("oneDNN path: unsupported dtype ", dtype_name(dtype),
                               " (expected f32, bf16 or f16)"));
  }
}

dnnl::memory::desc dnnl_desc(const Tensor& t) {
  return dnnl::memory::desc(t.shape(), dnnl_data_type(t.dtype()), t.strides());
}

dnnl::memory::desc dnnl_grouped_weights_desc(const Tensor& w, int64_t groups) {
  const Shape& s = w.shape();
  const Shape& st = w.strides();
  dnnl::memory::dims dims = {groups, s[0] / groups, s[1], s[2], s[3]};
  dnnl::memory::dims strides = {s[0] / groups * st[0], st[0], st[1], st[2], st[3]};
  return dnnl::memory::desc(dims, dnnl_data_type(w.dtype()), strides);
}

dnnl::memory dnnl_memory(const dnnl::memory::desc& desc, const Tensor& t) {
  return dnnl::memory(desc, dnnl_engine(), t.data_ptr());
}

namespace {

dnnl::memory scratch_memory(const dnnl::memory::desc& desc, Tensor* scratch) {
  // Scratch comes from the pooled tensor allocator: a fresh multi-megabyte malloc per call would
  // page-fault its way through every step.
  int64_t floats = static_cast<int64_t>((desc.get_size() + sizeof(float) - 1) / sizeof(float));
  *scratch = Tensor::empty({floats}, DType::kF32);
  return dnnl::memory(desc, dnnl_engine(), scratch->data_ptr());
}

}  // namespace

dnnl::memory reorder_to(const dnnl::memory& user, const dnnl::memory::desc& desc, Tensor* scratch) {
  if (user.get_desc() == desc) return user;
  dnnl::memory out = scratch_memory(desc, scratch);
  dnnl::reorder(user, out).execute(dnnl_stream(), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, out}});
  return out;
}

dnnl::memory output_as(const dnnl::memory& user, const dnnl::memory::desc& desc, Tensor* scratch) {
  if (user.get_desc() == desc) return user;
  return scratch_memory(desc, scratch);
}

void finish_output(const dnnl::memory& written, const dnnl::memory& user) {
  if (written == user) return;
  dnnl::reorder(written, user)
      .execute(dnnl_stream(), {{DNNL_ARG_FROM, written}, {DNNL_ARG_TO, user}});
}

dnnl::primitive_attr primitive_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

void add_scratchpad(const dnnl::primitive_desc_base& pd,
                    std::unordered_map<int, dnnl::memory>* args, Tensor* scratch) {
  const dnnl::memory::desc desc = pd.scratchpad_desc();
  if (desc.get_size() == 0) return;
  (*args)[DNNL_ARG_SCRATCHPAD] = scratch_memory(desc, scratch);
}

void append_layout(PrimitiveKey* key, const Tensor& t) {
  key->push_back(t.dim());
  key->insert(key->end(), t.shape().begin(), t.shape().end());
  key->insert(key->end(), t.strides().begin(), t.strides().end());
}

namespace {

thread_local bool t_bf16_widening_forced = false;

// oneDNN refuses a primitive descriptor when none of its implementations covers the data type on
// this CPU, so creating them (never running them) answers the question.
bool bf16_primitives_available() {
  using memory = dnnl::memory;
  constexpr memory::data_type kBf16 = memory::data_type::bf16;
  try {
    const memory::desc src({1, 16, 4, 4}, kBf16, memory::format_tag::any),
        weights({16, 16, 3, 3}, kBf16, memory::format_tag::any),
        dst({1, 16, 4, 4}, kBf16, memory::format_tag::any);
    dnnl::convolution_forward::desc conv(dnnl::prop_kind::forward_training,
                                         dnnl::algorithm::convolution_direct, src, weights, dst,
                                         {1, 1}, {1, 1}, {1, 1});
    dnnl::convolution_forward::primitive_desc(conv, primitive_attr(), dnnl_engine());
    const memory::desc a({1, 4, 8}, kBf16, memory::format_tag::abc),
        b({1, 8, 4}, kBf16, memory::format_tag::abc), c({1, 4, 4}, kBf16, memory::format_tag::abc);
    dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), primitive_attr(), dnnl_engine());
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace

bool onednn_has_bf16() {
  static const bool available = bf16_primitives_available();
  return available && !t_bf16_widening_forced;
}

ScopedBf16Widening::ScopedBf16Widening() : previous_(t_bf16_widening_forced) {
  t_bf16_widening_forced = true;
}

ScopedBf16Widening::~ScopedBf16Widening() { t_bf16_widening_forced = previous_; }

}  // namespace ompq::cpu
