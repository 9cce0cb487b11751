// Data pipeline benchmarks for ompq_bench (Google Benchmark), registered at run time:
//   BM_Decode/RandomResizedCrop224      JPEG decode + RandomResizedCrop(224) + flip + normalize
//   BM_Decode/Resize256_CenterCrop224   JPEG decode + Resize(256) + CenterCrop(224) + normalize
// on generated 500x375 JPEGs (the most common ImageNet size), one image per iteration on the
// benchmark's thread: items_per_second is images/s per decode thread, over CPU time.
//   BM_ImageFolderLoader/{train,val}/workers:{0,1,2}
// the whole ImageNet input path on the same JPEGs laid out as an image folder in a temporary
// directory: ImageFolderDataset with the recipe's transform of the split, shuffled DataLoader,
// one batch of 32 per iteration. workers:0 builds the batches on the benchmark's thread and is
// timed in CPU time: one worker's images/s on a core of its own, whatever else the machine runs.
// workers:1 and 2 are timed in wall time: what a consumer gets from worker threads, on a loaded
// machine less than workers x the workers:0 rate. img_per_s_per_worker is items_per_second over
// the workers.
//
// When the environment variable OMPQ_DECODE_BENCH_DIR names a folder, the generated JPEGs are
// also written there, so that scripts/bench_decode_torch.py times torchvision on the same bytes.
#pragma once

namespace ompq {

void register_data_benchmarks();

}  // namespace ompq
