// measure_gpu_layers in a build without CUDA (launch/bench_gpu.h): a config error saying so.
#include "devices/error.h"
#include "launch/bench_gpu.h"

namespace dpt {

GpuBenchResult measure_gpu_layers(const proto::Config&, int) {
  DPT_THROW(ErrorKind::kConfig)
      << "dpt bench step: device.kind: CUDA, but this dpt was built without CUDA "
         "(DPT_WITH_CUDA=OFF); use AUTO or CPU";
}

}  // namespace dpt
