// Data pipeline benchmarks for ompq_bench (Google Benchmark), registered at run time:
//   BM_Decode/RandomResizedCrop224      JPEG decode + RandomResizedCrop(224) + flip + normalize
//   BM_Decode/Resize256_CenterCrop224   JPEG decode + Resize(256) + CenterCrop(224) + normalize
// on generated 500x375 JPEGs (the most common ImageNet size), one image per iteration on the
// benchmark's thread: items_per_second is images/s per decode thread, over CPU time.
//
// When the environment variable OMPQ_DECODE_BENCH_DIR names a folder, the generated JPEGs are
// also written there, so that scripts/bench_decode_torch.py times torchvision on the same bytes.
#pragma once

namespace ompq {

void register_data_benchmarks();

}  // namespace ompq
