#include "apps/bench_data.h"

#include <benchmark/benchmark.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/philox.h"
#include "data/dataloader.h"
#include "data/imagenet.h"
#include "data/transforms.h"

namespace ompq {
namespace {

constexpr int kWidth = 500, kHeight = 375, kImages = 16;
constexpr int kQuality = 90;  // 4:2:0, as most ImageNet JPEGs

// A stand-in for a photograph: per image, a colour gradient, three sinusoidal gratings of random
// orientation and frequency (edges and texture at several scales) and uniform noise of +-10
// levels (sensor noise; it keeps the entropy-coded data, which dominates decode time, near the
// size of real photos: about 100 KB per image here, ImageNet's mean is about 110 KB).
std::vector<uint8_t> make_pixels(uint64_t image) {
  const uint64_t key = 0x5eed0000 + image;
  auto uniform = [key](uint64_t i) { return philox_uniform(key, i); };
  float fx[3], fy[3], amplitude[3], phase[3];
  for (int g = 0; g < 3; ++g) {
    const float angle = 6.2831853f * uniform(4 * g);
    const float u = uniform(4 * g + 1);
    const float frequency = 0.01f + 0.25f * u * u;  // mostly low frequencies, as in photos
    fx[g] = frequency * std::cos(angle);
    fy[g] = frequency * std::sin(angle);
    amplitude[g] = 15.0f + 30.0f * uniform(4 * g + 2);
    phase[g] = 6.2831853f * uniform(4 * g + 3);
  }
  std::vector<uint8_t> pixels(kWidth * kHeight * 3);
  uint64_t noise_index = 1000;
  for (int y = 0; y < kHeight; ++y) {
    for (int x = 0; x < kWidth; ++x) {
      for (int c = 0; c < 3; ++c) {
        float v = 60.0f + 0.15f * x + 0.2f * y + 25.0f * c;
        for (int g = 0; g < 3; ++g) {
          v += amplitude[g] * std::sin(fx[g] * x + fy[g] * y + phase[g] + 0.7f * c * g);
        }
        v += 80.0f * (uniform(noise_index++) - 0.5f);
        pixels[(y * kWidth + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
      }
    }
  }
  return pixels;
}

std::vector<std::string> make_jpegs() {
  std::vector<std::string> jpegs;
  tjhandle compressor = tjInitCompress();
  for (int i = 0; i < kImages; ++i) {
    const std::vector<uint8_t> pixels = make_pixels(i);
    unsigned char* jpeg = nullptr;
    unsigned long size = 0;
    if (tjCompress2(compressor, pixels.data(), kWidth, 0, kHeight, TJPF_RGB, &jpeg, &size,
                    TJSAMP_420, kQuality, 0) != 0) {
      std::fprintf(stderr, "BM_Decode: tjCompress2 failed: %s\n", tjGetErrorStr2(compressor));
      std::exit(1);
    }
    jpegs.emplace_back(reinterpret_cast<const char*>(jpeg), size);
    tjFree(jpeg);
  }
  tjDestroy(compressor);
  return jpegs;
}

const std::vector<std::string>& bench_jpegs() {
  static const std::vector<std::string> jpegs = make_jpegs();
  return jpegs;
}

void write_jpegs(const std::string& folder) {
  std::filesystem::create_directories(folder);
  for (size_t i = 0; i < bench_jpegs().size(); ++i) {
    const std::string path = absl::StrFormat("%s/bench_%02d.JPEG", folder, i);
    std::ofstream out(path, std::ios::binary);
    out.write(bench_jpegs()[i].data(), static_cast<std::streamsize>(bench_jpegs()[i].size()));
    if (!out) {
      std::fprintf(stderr, "bench_data: cannot write %s\n", path.c_str());
      std::exit(1);
    }
  }
}

// One image per iteration, cycling through the set; iteration i draws its crop and flip from
// seed i.
void decode(benchmark::State& state, data::ImageTransformMode mode) {
  const std::vector<std::string>& jpegs = bench_jpegs();
  data::ImageTransformOptions options;
  options.mode = mode;
  uint64_t i = 0;
  double bytes = 0.0;
  for (auto _ : state) {
    const std::string& jpeg = jpegs[i % jpegs.size()];
    Generator rng(i);
    absl::StatusOr<Tensor> out = data::transform_image(jpeg, options, rng);
    if (!out.ok()) {
      state.SkipWithError(std::string(out.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(out->data<float>());
    bytes += static_cast<double>(jpeg.size());
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["jpeg_kb"] = bytes / 1024.0 / std::max<double>(1.0, static_cast<double>(i));
}

// The bench JPEGs as an ImageNet folder, train/ and val/ alike: kLoaderImages files spread over
// kLoaderClasses class folders, file i being bench JPEG i mod kImages. The files are hard links
// to kImages written ones: what is timed is the CPU's work per image (read from the page cache,
// decode, transform, batch), which hard links leave unchanged; disk reads are not timed.
constexpr int kLoaderImages = 1024, kLoaderClasses = 4, kLoaderBatch = 32;
// Batches timed per run: fewer than an epoch's kLoaderImages / kLoaderBatch, so that the workers
// never idle at an epoch's end inside the timed region.
constexpr int kLoaderTimedBatches = 24;

class LoaderFolder {
 public:
  LoaderFolder()
      : root_(std::filesystem::temp_directory_path() /
              absl::StrFormat("ompq_bench_imagefolder_%d", static_cast<int>(getpid()))) {
    const std::filesystem::path originals = root_ / "originals";
    write_jpegs(originals.string());
    for (const char* split : {"train", "val"}) {
      for (int i = 0; i < kLoaderImages; ++i) {
        const std::filesystem::path folder =
            root_ / split / absl::StrFormat("n%08d", i % kLoaderClasses);
        std::filesystem::create_directories(folder);
        std::error_code error;
        std::filesystem::create_hard_link(
            originals / absl::StrFormat("bench_%02d.JPEG", i % kImages),
            folder / absl::StrFormat("image_%04d.JPEG", i), error);
        if (error) {
          std::fprintf(stderr, "BM_ImageFolderLoader: cannot link into %s: %s\n", folder.c_str(),
                       error.message().c_str());
          std::exit(1);
        }
      }
    }
  }
  ~LoaderFolder() {
    std::error_code ignored;  // a temporary folder left behind is not worth failing the run
    std::filesystem::remove_all(root_, ignored);
  }
  std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

// Batches of kLoaderBatch from the ImageNet reader over LoaderFolder with the recipe of `split`
// (train: RandomResizedCrop + flip; val: Resize + CenterCrop), shuffled as in training, built by
// `workers` DataLoader threads, or on the benchmark's thread for 0 workers.
void image_folder_loader(benchmark::State& state, const std::string& split, int workers) {
  static const LoaderFolder folder;
  absl::StatusOr<std::unique_ptr<data::ImageFolderDataset>> dataset =
      data::ImageFolderDataset::open(data::imagenet_options(folder.root(), split));
  if (!dataset.ok()) {
    state.SkipWithError(std::string(dataset.status().message()).c_str());
    return;
  }
  data::DataLoaderOptions options;
  options.batch_size = kLoaderBatch;
  options.shuffle = true;
  options.num_workers = workers;
  const data::DataLoader loader(std::move(*dataset), options);
  data::BatchStream batches = loader.batches();
  for (auto _ : state) {
    std::optional<data::Batch> batch = batches.next();
    if (!batch) {
      state.SkipWithError("BM_ImageFolderLoader: the epoch ended inside the timed batches");
      break;
    }
    benchmark::DoNotOptimize(batch->inputs.data<float>());
  }
  const int64_t images = state.iterations() * kLoaderBatch;
  state.SetItemsProcessed(images);
  state.counters["img_per_s_per_worker"] = benchmark::Counter(
      static_cast<double>(images) / std::max(workers, 1), benchmark::Counter::kIsRate);
}

}  // namespace

void register_data_benchmarks() {
  if (const char* folder = std::getenv("OMPQ_DECODE_BENCH_DIR")) write_jpegs(folder);
  benchmark::RegisterBenchmark("BM_Decode/RandomResizedCrop224", decode,
                               data::ImageTransformMode::kTrain)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_Decode/Resize256_CenterCrop224", decode,
                               data::ImageTransformMode::kEval)
      ->Unit(benchmark::kMicrosecond);
  for (const char* split : {"train", "val"}) {
    for (int workers : {0, 1, 2}) {
      benchmark::internal::Benchmark* bench =
          benchmark::RegisterBenchmark(
              absl::StrFormat("BM_ImageFolderLoader/%s/workers:%d", split, workers).c_str(),
              image_folder_loader, std::string(split), workers)
              ->Iterations(kLoaderTimedBatches)
              ->Unit(benchmark::kMillisecond);
      // With workers the benchmark's thread only waits: only wall time measures them.
      if (workers > 0) bench->UseRealTime();
    }
  }
}

}  // namespace ompq
