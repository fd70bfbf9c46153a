// `dpt bench step` on a GPU (launch/bench_gpu.h): the training step on the selected GPU through
// the CPU bench's StepTimer (launch/bench_step_timer.h: TrainStep on synthetic data, a
// synchronize after each step, phases from the GPU's timing events), then the per-layer table
// (measure_gpu_layers), rendered together.
#include <fmt/core.h>

#include "devices/error.h"
#include "launch/bench_gemm.h"
#include "launch/bench_gpu.h"
#include "launch/bench_step_timer.h"
#include "launch/metrics_writer.h"

namespace dpt {

nlohmann::json bench_step_gpu(const BenchStepArgs& args, const proto::Config& config,
                              DeviceChoice choice, std::FILE* out) {
  DPT_CHECK(choice.device && choice.device->kind() == DeviceKind::kCuda)
      << "bench_step_gpu: needs a CUDA device";
  fmt::print(out, "{}\n{}\n", choice.reason, choice.precision_reason);
  std::unique_ptr<Communicator> comm = make_communicator(config.comm(), choice.device.get());
  StepRun run;
  {
    // The model, optimizer and loader give their GPU memory back to this device's pool (cached,
    // not freed) before the layer table's device allocates its own: both fit (wide_mlp: about
    // 6 GB cached plus 5 GB).
    StepTimer timer(config, *choice.device, *comm, args.warmup + args.steps);
    timer.run(args.warmup, false);
    timer.run(args.steps, true);
    run = timer.result();
  }
  GpuBenchResult result = measure_gpu_layers(config, choice.device->index());
  result.model_summary = run.model_summary;
  result.optimizer = run.optimizer;
  result.num_params = run.num_params;
  result.ranks = comm->size();
  result.batch = config.train().batch_size();
  result.micro =
      config.train().micro_batch_size() > 0 ? config.train().micro_batch_size() : result.batch;
  result.steps = args.steps;
  result.warmup = args.warmup;
  // step_gemms counts the global batch; each rank computes its equal share of it.
  result.step_flops = gemm_flops(run.shapes) / comm->size();
  result.p50 = run.p50;
  result.p99 = run.p99;
  result.phase_sum = run.phase_sum;
  result.loss_scale = run.loss_scale;
  result.loss_scale_skipped = run.loss_scale_skipped;
  nlohmann::json json_out = render_gpu_bench(result, out);
  json_out["config"] = args.config;
  // Under mpirun every rank has its own numbers; rank 0's are written.
  if (!args.json.empty() && comm->rank() == 0) write_json_file(args.json, json_out);
  return json_out;
}

}  // namespace dpt
