// The ImageNet path of ompq_train under mpirun: the ranks' shards of an image folder together
// hold every image exactly once per epoch, each epoch in another order, with the folder's labels.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "data/catalog.h"
#include "data/dataloader.h"
#include "data/imagenet.h"
#include "tests/data/image_files.h"
#include "tests/mpi/world.h"

namespace ompq::data {
namespace {

namespace fs = std::filesystem;
using ompq::testing::world;

constexpr int kClasses = 3;
constexpr int kImagesPerClass = 6;

// A folder every rank of this job sees at the same path (mpirun is their common parent); rank 0
// writes it and removes it.
class SharedImageFolder {
 public:
  SharedImageFolder()
      : root_(fs::temp_directory_path() / ("ompq_mpi_shard_" + std::to_string(getppid()))) {
    if (world().rank() == 0) {
      for (int c = 0; c < kClasses; ++c) {
        for (int i = 0; i < kImagesPerClass; ++i) {
          const fs::path file =
              root_ / "train" / ("n0" + std::to_string(c)) / ("img" + std::to_string(i) + ".JPEG");
          fs::create_directories(file.parent_path());
          auto value = [c, i](int64_t y, int64_t x, int64_t ch) {
            return static_cast<uint8_t>((9 * y + 4 * x + 60 * ch + 17 * c + 5 * i) % 256);
          };
          std::ofstream(file, std::ios::binary) << testing::encode_jpeg(
              testing::make_pixels(24, 24, 3, value), 24, 24, TJPF_RGB, TJSAMP_420, 90);
        }
      }
    }
    world().barrier();
  }
  ~SharedImageFolder() {
    world().barrier();
    if (world().rank() == 0) fs::remove_all(root_);
  }
  std::string path() const { return root_.string(); }

 private:
  fs::path root_;
};

TEST(ImageFolderShards, TheRanksSeeEveryImageOncePerEpoch) {
  Communicator& comm = world();
  ASSERT_EQ(comm.size(), 2);
  SharedImageFolder folder;
  DatasetRequest request;
  request.kind = DatasetKind::kImageNet;
  request.dir = folder.path();
  request.input = {3, 16, 16};
  request.model = "resnet18";
  request.use = DatasetUse::kTraining;
  absl::StatusOr<std::shared_ptr<const Dataset>> dataset = open_dataset(request);
  ASSERT_TRUE(dataset.ok()) << dataset.status();
  const auto& images = dynamic_cast<const ImageFolderDataset&>(**dataset);
  const int64_t n = images.size();
  ASSERT_EQ(n, kClasses * kImagesPerClass);

  DataLoaderOptions options;
  options.batch_size = 4;
  options.shuffle = true;
  options.seed = 7;
  options.num_workers = 2;
  options.rank = comm.rank();
  options.world_size = comm.size();
  DataLoader loader(*dataset, options);
  std::vector<int64_t> previous_order;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    loader.set_epoch(epoch);
    std::vector<int64_t> mine;
    for (Batch& batch : loader.batches()) {
      const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
      for (size_t row = 0; row < batch.indices.size(); ++row) {
        EXPECT_EQ(labels[row], images.label(batch.indices[row]));
        mine.push_back(batch.indices[row]);
      }
    }
    ASSERT_EQ(static_cast<int64_t>(mine.size()), n / comm.size());
    std::vector<int64_t> all =
        comm.allgather(Tensor::from_vector<int64_t>(mine, {static_cast<int64_t>(mine.size())}))
            .to_vector<int64_t>();
    std::vector<int64_t> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> every(n);
    std::iota(every.begin(), every.end(), 0);
    EXPECT_EQ(sorted, every) << "epoch " << epoch << ": the shards overlap or miss images";
    EXPECT_NE(all, previous_order) << "epoch " << epoch << " repeats the previous order";
    previous_order = all;
  }
}

}  // namespace
}  // namespace ompq::data
