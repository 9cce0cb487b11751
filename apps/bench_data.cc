#include "apps/bench_data.h"

#include <benchmark/benchmark.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/philox.h"
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
      std::fprintf(stderr, "BM_Decode: cannot write %s\n", path.c_str());
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

}  // namespace

void register_data_benchmarks() {
  if (const char* folder = std::getenv("OMPQ_DECODE_BENCH_DIR")) write_jpegs(folder);
  benchmark::RegisterBenchmark("BM_Decode/RandomResizedCrop224", decode,
                               data::ImageTransformMode::kTrain)
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("BM_Decode/Resize256_CenterCrop224", decode,
                               data::ImageTransformMode::kEval)
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace ompq
