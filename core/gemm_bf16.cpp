// Bf16Gemm: oneDNN matmul primitives with bf16 src/weights and float32 dst, keyed by shape.
// beta = 1 is oneDNN's "sum" post-op (dst += result), which grad-weight accumulation needs.
#include "core/gemm_bf16.h"

#include <algorithm>
#include <dnnl.hpp>
#include <map>
#include <tuple>

#include "devices/cpu_device.h"
#include "devices/error.h"

namespace dpt {
namespace {

using dt = dnnl::memory::data_type;
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;

Key key_of(const GemmShape& s, bool accumulate) {
  return {s.trans_a, s.trans_b, s.m, s.n, s.k, s.lda, s.ldb, s.ldc, accumulate};
}

std::string shape_text(const GemmShape& s) {
  return std::string(s.trans_a ? "T" : "N") + (s.trans_b ? "T" : "N") +
         " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k);
}

struct Entry {
  dnnl::memory::desc a, b, c;
  dnnl::matmul primitive;
  std::string implementation;
};

}  // namespace

bool bf16_matmul(const Device& device) {
  return device.kind() == DeviceKind::kCpu &&
         static_cast<const CpuDevice&>(device).matmul_precision() == MatmulPrecision::kBf16;
}

bool onednn_bf16_native() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (isa & bf16) == bf16;  // the ISA values are cumulative bit masks
}

struct Bf16Gemm::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<Key, Entry> primitives;

  Entry& get(const GemmShape& s, bool accumulate) {
    const Key key = key_of(s, accumulate);
    auto found = primitives.find(key);
    if (found != primitives.end()) return found->second;
    DPT_CHECK(s.m > 0 && s.n > 0 && s.k > 0)
        << "bf16 gemm: empty shape " << shape_text(s) << " has no primitive";
    // Row-major op(A)[m, k]: stored [m, k] (strides lda, 1) or transposed [k, m] (1, lda).
    const dnnl::memory::dims a_strides =
        s.trans_a ? dnnl::memory::dims{1, s.lda} : dnnl::memory::dims{s.lda, 1};
    const dnnl::memory::dims b_strides =
        s.trans_b ? dnnl::memory::dims{1, s.ldb} : dnnl::memory::dims{s.ldb, 1};
    Entry entry;
    entry.a = dnnl::memory::desc({s.m, s.k}, dt::bf16, a_strides);
    entry.b = dnnl::memory::desc({s.k, s.n}, dt::bf16, b_strides);
    entry.c = dnnl::memory::desc({s.m, s.n}, dt::f32, dnnl::memory::dims{s.ldc, 1});
    dnnl::primitive_attr attr;
    if (accumulate) {
      dnnl::post_ops ops;
      ops.append_sum(1.0f);
      attr.set_post_ops(ops);
    }
    try {
      dnnl::matmul::primitive_desc desc(dnnl::matmul::desc(entry.a, entry.b, entry.c), attr,
                                        engine);
      entry.implementation = desc.impl_info_str();
      entry.primitive = dnnl::matmul(desc);
    } catch (const dnnl::error& e) {
      DPT_THROW(ErrorKind::kInternal)
          << "bf16 gemm: oneDNN has no matmul for " << shape_text(s) << ": " << e.what();
    }
    return primitives.emplace(key, std::move(entry)).first->second;
  }
};

Bf16Gemm::Bf16Gemm() : impl_(std::make_unique<Impl>()) {}
Bf16Gemm::~Bf16Gemm() = default;

void Bf16Gemm::run(const GemmShape& s, const uint16_t* a, const uint16_t* b, float beta, float* c) {
  DPT_CHECK(beta == 0.0f || beta == 1.0f) << "bf16 gemm: beta must be 0 or 1, got " << beta;
  if (s.m == 0 || s.n == 0) return;
  if (s.k == 0) {  // op(A) op(B) is zero: C = beta C
    if (beta == 0.0f) {
      for (int64_t i = 0; i < s.m; ++i) std::fill(c + i * s.ldc, c + i * s.ldc + s.n, 0.0f);
    }
    return;
  }
  Entry& entry = impl_->get(s, beta == 1.0f);
  // oneDNN takes non-const handles; it only reads src and weights.
  dnnl::memory a_mem(entry.a, impl_->engine, const_cast<uint16_t*>(a));
  dnnl::memory b_mem(entry.b, impl_->engine, const_cast<uint16_t*>(b));
  dnnl::memory c_mem(entry.c, impl_->engine, c);
  try {
    entry.primitive.execute(
        impl_->stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    impl_->stream.wait();
  } catch (const dnnl::error& e) {
    DPT_THROW(ErrorKind::kInternal) << "bf16 gemm " << shape_text(s) << " failed: " << e.what();
  }
}

std::string Bf16Gemm::implementation(const GemmShape& shape, float beta) {
  return impl_->get(shape, beta == 1.0f).implementation;
}

std::size_t Bf16Gemm::cached() const { return impl_->primitives.size(); }

}  // namespace dpt
