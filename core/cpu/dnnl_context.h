// The CPU backend's bridge to oneDNN: one engine, a stream per thread, memory descriptors built
// from a Tensor's real shape and strides, reorders into scratch buffers taken from our pooled
// allocator, and a cache of primitives keyed by shape and parameters so that a training loop builds
// each primitive once (oneDNN's own cache only skips the primitive, not the descriptor search).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace ompq::cpu {

dnnl::engine& dnnl_engine();
// Execution on CPU is synchronous under the OpenMP runtime; one stream per thread keeps callers
// on different threads (data loaders, tests) from sharing stream state.
dnnl::stream& dnnl_stream();

// oneDNN's data type for f32, bf16 or f16 (any other dtype throws).
dnnl::memory::data_type dnnl_data_type(DType dtype);
// A plain descriptor with the tensor's dims, strides and data type (f32, bf16 or f16).
dnnl::memory::desc dnnl_desc(const Tensor& t);
// The same descriptor with dims regrouped as oneDNN's grouped-weights layout
// [groups, O/groups, C/groups, kh, kw] for a weight tensor [O, C/groups, kh, kw].
dnnl::memory::desc dnnl_grouped_weights_desc(const Tensor& w, int64_t groups);
dnnl::memory dnnl_memory(const dnnl::memory::desc& desc, const Tensor& t);

// A memory holding `user`'s data in layout `desc`: `user` itself when the layouts match, else a
// scratch buffer (owned by `scratch`, which must outlive the use) that `user` is reordered into.
dnnl::memory reorder_to(const dnnl::memory& user, const dnnl::memory::desc& desc, Tensor* scratch);
// A memory of layout `desc` to be written and then moved into `user` with finish_output(): `user`
// itself when the layouts match, else a scratch buffer.
dnnl::memory output_as(const dnnl::memory& user, const dnnl::memory::desc& desc, Tensor* scratch);
void finish_output(const dnnl::memory& written, const dnnl::memory& user);

// Attributes for every cached primitive: a user-managed scratchpad, so that one primitive may run
// on several threads at once and its scratch memory comes from our pool (oneDNN's library mode
// keeps a private buffer per primitive for the life of the process).
dnnl::primitive_attr primitive_attr();
// Adds the scratchpad that `pd` asks for (owned by `scratch`) to a primitive's arguments.
void add_scratchpad(const dnnl::primitive_desc_base& pd,
                    std::unordered_map<int, dnnl::memory>* args, Tensor* scratch);

// Primitives (with the descriptors needed to bind their arguments) keyed by a list of integers
// that fully describes the problem. Thread-safe; entries live for the process.
using PrimitiveKey = std::vector<int64_t>;

struct PrimitiveKeyHash {
  size_t operator()(const PrimitiveKey& key) const {
    size_t h = 0xcbf29ce484222325ull;
    for (int64_t v : key) h = (h ^ static_cast<size_t>(v)) * 0x100000001b3ull;
    return h;
  }
};

template <typename Entry>
class PrimitiveCache {
 public:
  const Entry& get(const PrimitiveKey& key, const std::function<Entry()>& make) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      it = entries_.emplace(key, std::make_unique<Entry>(make())).first;
    }
    return *it->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<PrimitiveKey, std::unique_ptr<Entry>, PrimitiveKeyHash> entries_;
};

// Appends dims and strides of `t` to a cache key.
void append_layout(PrimitiveKey* key, const Tensor& t);

// Whether oneDNN computes bf16 convolutions and matmuls on this CPU. oneDNN 2.6 has them only on
// AVX-512 cores (native with AVX512-BF16, emulated without); elsewhere (AVX2) it cannot create the
// primitives, and the kernels widen bf16 to f32 as they do f16. Decided once per process by
// creating a tiny bf16 convolution and matmul; false on a thread inside a ScopedBf16Widening.
bool onednn_has_bf16();

// Makes onednn_has_bf16() false on this thread while alive, so that tests run the widened bf16
// path on CPUs where oneDNN has bf16.
class ScopedBf16Widening {
 public:
  ScopedBf16Widening();
  ~ScopedBf16Widening();
  ScopedBf16Widening(const ScopedBf16Widening&) = delete;
  ScopedBf16Widening& operator=(const ScopedBf16Widening&) = delete;

 private:
  bool previous_;
};

}  // namespace ompq::cpu
