// Int8Matmul on oneDNN (dnnl.hpp): a matmul primitive per batch size with per-output-channel
// output scales (mask 1 << 1 over the N axis), f32 bias and an eltwise ReLU post-op. oneDNN 2.x
// applies the output scales to (accumulator + bias), which is why the bias is in accumulator
// units. Weights are given as [N, K] row-major, i.e. oneDNN's [K, N] weights in format "ba",
// and reordered into whatever layout the primitive asks for ("any"), once per distinct layout.
#include "core/int8_matmul.h"

#include <dnnl.hpp>

#include <map>
#include <unordered_map>
#include <utility>

#include "devices/error.h"

namespace dpt {
namespace {

using dnnl::memory;

memory::data_type data_type(Int8Type type) {
  switch (type) {
    case Int8Type::kU8:
      return memory::data_type::u8;
    case Int8Type::kS8:
      return memory::data_type::s8;
    case Int8Type::kF32:
      return memory::data_type::f32;
  }
  DPT_THROW(ErrorKind::kInternal) << "int8 matmul: unknown type";
}

}  // namespace

struct Int8Matmul::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  memory plain_weights;  // the spec's weights, [K, N] "ba", no copy
  memory bias;
  struct Batch {
    dnnl::matmul primitive;
    memory src, dst;  // their data handles are set on each run
    std::unordered_map<int, memory> args;
  };
  std::map<int64_t, Batch> batches;
  std::vector<std::pair<memory::desc, memory>> reordered;  // weights per layout

  memory weights_for(const memory::desc& desc) {
    if (desc == plain_weights.get_desc()) return plain_weights;
    for (const auto& [known, weights] : reordered) {
      if (known == desc) return weights;
    }
    memory weights(desc, engine);
    dnnl::reorder(plain_weights, weights).execute(stream, plain_weights, weights);
    stream.wait();
    reordered.emplace_back(desc, weights);
    return weights;
  }
};

Int8Matmul::Int8Matmul(Int8MatmulSpec spec) : spec_(std::move(spec)) {
  const int64_t k = spec_.input_size, n = spec_.output_size;
  DPT_CHECK(k > 0 && n > 0 && static_cast<int64_t>(spec_.weight.size()) == k * n &&
            static_cast<int64_t>(spec_.scales.size()) == n &&
            (spec_.bias.empty() || static_cast<int64_t>(spec_.bias.size()) == n) &&
            spec_.src != Int8Type::kF32)
      << "int8 matmul: inconsistent spec (K " << k << ", N " << n << ", " << spec_.weight.size()
      << " weights, " << spec_.scales.size() << " scales, " << spec_.bias.size() << " biases)";
  try {
    impl_ = std::make_unique<Impl>();
    impl_->plain_weights = memory({{k, n}, memory::data_type::s8, memory::format_tag::ba},
                                  impl_->engine, spec_.weight.data());
    if (!spec_.bias.empty()) {
      impl_->bias = memory({{1, n}, memory::data_type::f32, memory::format_tag::ab}, impl_->engine,
                           spec_.bias.data());
    }
  } catch (const dnnl::error& e) {
    DPT_THROW(ErrorKind::kInternal)
        << "oneDNN: cannot set up an int8 matmul with K " << k << ", N " << n << ": " << e.what();
  }
}

Int8Matmul::~Int8Matmul() = default;

void Int8Matmul::run(const void* src, int64_t rows, void* dst) {
  if (rows == 0) return;
  const int64_t k = spec_.input_size, n = spec_.output_size;
  try {
    auto found = impl_->batches.find(rows);
    if (found == impl_->batches.end()) {
      const memory::desc src_desc({rows, k}, data_type(spec_.src), memory::format_tag::ab);
      const memory::desc weights_any({k, n}, memory::data_type::s8, memory::format_tag::any);
      const memory::desc dst_desc({rows, n}, data_type(spec_.dst), memory::format_tag::ab);
      dnnl::primitive_attr attr;
      attr.set_output_scales(1 << 1, spec_.scales);
      if (spec_.relu) {
        dnnl::post_ops ops;
        ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
        attr.set_post_ops(ops);
      }
      const dnnl::matmul::desc desc =
          spec_.bias.empty()
              ? dnnl::matmul::desc(src_desc, weights_any, dst_desc)
              : dnnl::matmul::desc(src_desc, weights_any, impl_->bias.get_desc(), dst_desc);
      const dnnl::matmul::primitive_desc pd(desc, attr, impl_->engine);
      Impl::Batch batch{dnnl::matmul(pd),
                        memory(src_desc, impl_->engine, nullptr),
                        memory(dst_desc, impl_->engine, nullptr),
                        {}};
      batch.args = {{DNNL_ARG_SRC, batch.src},
                    {DNNL_ARG_WEIGHTS, impl_->weights_for(pd.weights_desc())},
                    {DNNL_ARG_DST, batch.dst}};
      if (!spec_.bias.empty()) batch.args.emplace(DNNL_ARG_BIAS, impl_->bias);
      found = impl_->batches.emplace(rows, std::move(batch)).first;
    }
    Impl::Batch& batch = found->second;
    batch.src.set_data_handle(const_cast<void*>(src));
    batch.dst.set_data_handle(dst);
    batch.primitive.execute(impl_->stream, batch.args);
    impl_->stream.wait();
  } catch (const dnnl::error& e) {
    DPT_THROW(ErrorKind::kInternal) << "oneDNN int8 matmul [" << rows << ", " << k << "] x [" << k
                                    << ", " << n << "]: " << e.what();
  }
}

}  // namespace dpt
