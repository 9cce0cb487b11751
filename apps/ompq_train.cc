// ompq_train: trains a model end to end and writes everything into one output folder:
// config.pbtxt (the resolved config), metrics.csv (one row per epoch), checkpoint.safetensors
// (after every epoch; a rerun of the same command resumes from it) and model.safetensors.
//
// Today it runs the first real experiment: the FashionCnn on Fashion-MNIST. The OMPQ stages
// (search, PTQ, QAT, export) plug in here as they land.
#include <google/protobuf/text_format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "core/parallel.h"
#include "core/proto/ompq.pb.h"
#include "data/dataloader.h"
#include "data/mnist.h"
#include "data/subset.h"
#include "layers/lr_schedule.h"
#include "layers/models/registry.h"
#include "layers/optim.h"
#include "apps/app_main.h"
#include "runtime/init.h"
#include "solver/checkpoint.h"
#include "solver/metrics.h"
#include "solver/trainer.h"

ABSL_FLAG(std::string, config, "", "experiment config in protobuf text format; flags override it");
ABSL_FLAG(std::string, model, "fashion_cnn",
          "model name: fashion_cnn, resnet20, resnet18, resnet34, resnet50, mobilenet_v2");
ABSL_FLAG(bool, small_input, false, "the 28-32 px variant of an ImageNet model");
ABSL_FLAG(double, width_mult, 1.0, "channel width multiplier (mobilenet_v2)");
ABSL_FLAG(std::string, output_dir, "out/train", "folder for config, metrics, checkpoints");
ABSL_FLAG(uint64_t, seed, 0, "seed of initialization, shuffling and dropout");
ABSL_FLAG(int32_t, threads, 0, "CPU threads (0: all cores)");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda:N");
ABSL_FLAG(std::string, data_dir, "/usr/share/datasets/fashion-mnist",
          "Fashion-MNIST (or MNIST) IDX folder");
ABSL_FLAG(int64_t, train_limit, 0, "use only the first N training images (0: all)");
ABSL_FLAG(int64_t, test_limit, 0, "use only the first N test images (0: all)");
ABSL_FLAG(int32_t, workers, 1, "data loader worker threads");
ABSL_FLAG(int32_t, epochs, 2, "training epochs");
ABSL_FLAG(int32_t, batch_size, 64, "training batch size");
ABSL_FLAG(double, lr, 0.02, "peak learning rate (SGD)");
ABSL_FLAG(double, momentum, 0.9, "SGD momentum");
ABSL_FLAG(bool, nesterov, true, "Nesterov momentum");
ABSL_FLAG(double, weight_decay, 5e-4, "L2 weight decay");
ABSL_FLAG(double, label_smoothing, 0.0, "cross-entropy label smoothing");
ABSL_FLAG(int32_t, warmup_iterations, 200, "linear learning-rate warm-up (from 0) before the cosine decay");
ABSL_FLAG(int32_t, log_interval, 100, "steps between progress lines when not on a terminal");
ABSL_FLAG(int32_t, eval_batch_size, 1000, "evaluation batch size");
ABSL_FLAG(bool, fresh, false, "discard a checkpoint and metrics already in output_dir");

namespace ompq {
namespace {

namespace fs = std::filesystem;
using proto::ExperimentConfig;

// Fashion-MNIST and MNIST have ten classes.
constexpr int64_t kIdxClasses = 10;

// Names of the flags given on the command line (this Abseil has no public "was it set" query).
std::set<std::string>& given_flags() {
  static std::set<std::string> names;
  return names;
}

void collect_given_flags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--") && !absl::ConsumePrefix(&arg, "-")) continue;
    arg = arg.substr(0, arg.find('='));
    given_flags().insert(std::string(arg));
    if (absl::ConsumePrefix(&arg, "no")) given_flags().insert(std::string(arg));  // --nonesterov
  }
}

bool flag_given(const char* name) { return given_flags().count(name) > 0; }

// Defaults, then --config, then every flag given on the command line.
absl::StatusOr<ExperimentConfig> resolve_config() {
  ExperimentConfig c;
  c.set_model(absl::GetFlag(FLAGS_model));
  c.set_small_input(absl::GetFlag(FLAGS_small_input));
  c.set_width_mult(absl::GetFlag(FLAGS_width_mult));
  c.set_output_dir(absl::GetFlag(FLAGS_output_dir));
  c.set_seed(absl::GetFlag(FLAGS_seed));
  c.set_threads(absl::GetFlag(FLAGS_threads));
  c.set_device(absl::GetFlag(FLAGS_device));
  c.mutable_data()->set_dir(absl::GetFlag(FLAGS_data_dir));
  c.mutable_data()->set_train_limit(absl::GetFlag(FLAGS_train_limit));
  c.mutable_data()->set_test_limit(absl::GetFlag(FLAGS_test_limit));
  c.mutable_data()->set_workers(absl::GetFlag(FLAGS_workers));
  auto* t = c.mutable_train();
  t->set_epochs(absl::GetFlag(FLAGS_epochs));
  t->set_batch_size(absl::GetFlag(FLAGS_batch_size));
  t->set_lr(absl::GetFlag(FLAGS_lr));
  t->set_momentum(absl::GetFlag(FLAGS_momentum));
  t->set_nesterov(absl::GetFlag(FLAGS_nesterov));
  t->set_weight_decay(absl::GetFlag(FLAGS_weight_decay));
  t->set_label_smoothing(absl::GetFlag(FLAGS_label_smoothing));
  t->set_warmup_iterations(absl::GetFlag(FLAGS_warmup_iterations));
  t->set_log_interval(absl::GetFlag(FLAGS_log_interval));
  t->set_eval_batch_size(absl::GetFlag(FLAGS_eval_batch_size));

  const std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) return c;
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open config file"));
  std::stringstream text;
  text << in.rdbuf();
  ExperimentConfig from_file;
  if (!google::protobuf::TextFormat::ParseFromString(text.str(), &from_file)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a valid ExperimentConfig in protobuf text format (see the "
                     "parser's message above)"));
  }
  // Fields the file sets replace the defaults; then flags given explicitly win over the file.
  ExperimentConfig merged = c;
  merged.MergeFrom(from_file);
  ExperimentConfig flags_only;
  if (flag_given("model")) flags_only.set_model(c.model());
  if (flag_given("small_input")) flags_only.set_small_input(c.small_input());
  if (flag_given("width_mult")) flags_only.set_width_mult(c.width_mult());
  if (flag_given("output_dir")) flags_only.set_output_dir(c.output_dir());
  if (flag_given("seed")) flags_only.set_seed(c.seed());
  if (flag_given("threads")) flags_only.set_threads(c.threads());
  if (flag_given("device")) flags_only.set_device(c.device());
  if (flag_given("data_dir")) flags_only.mutable_data()->set_dir(c.data().dir());
  if (flag_given("train_limit")) flags_only.mutable_data()->set_train_limit(c.data().train_limit());
  if (flag_given("test_limit")) flags_only.mutable_data()->set_test_limit(c.data().test_limit());
  if (flag_given("workers")) flags_only.mutable_data()->set_workers(c.data().workers());
  auto* ft = flags_only.mutable_train();
  if (flag_given("epochs")) ft->set_epochs(t->epochs());
  if (flag_given("batch_size")) ft->set_batch_size(t->batch_size());
  if (flag_given("lr")) ft->set_lr(t->lr());
  if (flag_given("momentum")) ft->set_momentum(t->momentum());
  if (flag_given("nesterov")) ft->set_nesterov(t->nesterov());
  if (flag_given("weight_decay")) ft->set_weight_decay(t->weight_decay());
  if (flag_given("label_smoothing")) ft->set_label_smoothing(t->label_smoothing());
  if (flag_given("warmup_iterations")) ft->set_warmup_iterations(t->warmup_iterations());
  if (flag_given("log_interval")) ft->set_log_interval(t->log_interval());
  if (flag_given("eval_batch_size")) ft->set_eval_batch_size(t->eval_batch_size());
  merged.MergeFrom(flags_only);
  return merged;
}

absl::Status validate(const ExperimentConfig& c) {
  const auto& t = c.train();
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (t.epochs() <= 0) return bad(absl::StrCat("epochs must be positive, got ", t.epochs()));
  if (t.batch_size() <= 0) return bad(absl::StrCat("batch_size must be positive, got ", t.batch_size()));
  if (t.eval_batch_size() <= 0) {
    return bad(absl::StrCat("eval_batch_size must be positive, got ", t.eval_batch_size()));
  }
  if (!(t.lr() > 0)) return bad(absl::StrCat("lr must be positive, got ", t.lr()));
  if (t.label_smoothing() < 0 || t.label_smoothing() >= 1) {
    return bad(absl::StrCat("label_smoothing must be in [0, 1), got ", t.label_smoothing()));
  }
  if (c.data().train_limit() < 0 || c.data().test_limit() < 0 || c.data().workers() < 0) {
    return bad("train_limit, test_limit and workers must not be negative");
  }
  if (c.output_dir().empty()) return bad("output_dir must not be empty");
  return absl::OkStatus();
}

std::string to_text(const ExperimentConfig& c) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(c, &text);
  return text;
}

absl::StatusOr<std::shared_ptr<const data::Dataset>> open_split(const ExperimentConfig& c,
                                                                 const Shape& input_shape,
                                                                 data::Split split, int64_t limit) {
  OMPQ_ASSIGN_OR_RETURN(data::MnistOptions options,
                        data::mnist_options_for_input(input_shape, c.model()));
  options.folder = c.data().dir();
  options.split = split;
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<const data::Dataset> dataset,
                        data::MnistDataset::open(options));
  if (limit > 0 && limit < dataset->size()) {
    dataset = std::make_shared<data::Prefix>(dataset, limit);
  }
  return dataset;
}

absl::Status write_text_file(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!(out << text) || !out.flush()) {
      return absl::PermissionDeniedError(absl::StrCat(tmp.string(), ": cannot write"));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat(path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status run() {
  OMPQ_ASSIGN_OR_RETURN(ExperimentConfig config, resolve_config());
  OMPQ_RETURN_IF_ERROR(validate(config));
  OMPQ_ASSIGN_OR_RETURN(Device device, parse_device(config.device()));
  if (device.is_cuda() && !cuda_available()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device=", config.device(), " but no GPU is usable (", runtime_info().cuda_status, ")"));
  }
  if (config.threads() > 0) set_num_threads(config.threads());

  const fs::path out_dir = config.output_dir();
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat(out_dir.string(), ": ", ec.message()));
  const fs::path config_path = out_dir / "config.pbtxt";
  const fs::path checkpoint_path = out_dir / "checkpoint.safetensors";
  const fs::path metrics_path = out_dir / "metrics.csv";
  const std::string config_text = to_text(config);
  if (absl::GetFlag(FLAGS_fresh)) {
    fs::remove(checkpoint_path, ec);
    fs::remove(metrics_path, ec);
  } else if (fs::exists(checkpoint_path)) {
    std::ifstream in(config_path);
    std::stringstream previous;
    previous << in.rdbuf();
    if (previous.str() != config_text) {
      return absl::FailedPreconditionError(absl::StrCat(
          out_dir.string(), " holds a checkpoint of a run with another config (", config_path.string(),
          "); pass --fresh to start over there, or choose another --output_dir"));
    }
  }
  OMPQ_RETURN_IF_ERROR(write_text_file(config_path, config_text));

  Generator gen(config.seed());
  nn::ModelSpec spec;
  spec.name = config.model();
  spec.num_classes = kIdxClasses;
  spec.small_input = config.small_input();
  spec.width_mult = config.width_mult() > 0 ? config.width_mult() : 1.0;
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, nn::make_model(spec, gen));
  const Shape input_shape = model->input_shape();
  OMPQ_ASSIGN_OR_RETURN(auto train_set, open_split(config, input_shape, data::Split::kTrain,
                                                   config.data().train_limit()));
  OMPQ_ASSIGN_OR_RETURN(auto test_set, open_split(config, input_shape, data::Split::kTest,
                                                  config.data().test_limit()));
  const auto& tc = config.train();
  data::DataLoaderOptions train_options;
  train_options.batch_size = tc.batch_size();
  train_options.shuffle = true;
  train_options.drop_last = true;
  train_options.seed = config.seed();
  train_options.num_workers = config.data().workers();
  data::DataLoader train_loader(train_set, train_options);
  data::DataLoaderOptions test_options;
  test_options.batch_size = tc.eval_batch_size();
  test_options.num_workers = config.data().workers();
  data::DataLoader test_loader(test_set, test_options);
  if (train_loader.num_batches() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("batch_size ", tc.batch_size(), " exceeds the ",
                                                   train_set->size(), " training examples"));
  }

  model->to(device);
  SgdOptions sgd;
  sgd.lr = tc.lr();
  sgd.momentum = tc.momentum();
  sgd.nesterov = tc.nesterov();
  sgd.weight_decay = tc.weight_decay();
  nn::SGD optimizer(model->parameters(), sgd);
  const int64_t total_iterations = static_cast<int64_t>(tc.epochs()) * train_loader.num_batches();
  if (tc.warmup_iterations() < 0 || tc.warmup_iterations() >= total_iterations) {
    return absl::InvalidArgumentError(absl::StrCat(
        "warmup_iterations must be in [0, ", total_iterations, ") (the run's ", tc.epochs(),
        " epochs x ", train_loader.num_batches(), " steps), got ", tc.warmup_iterations()));
  }
  auto cosine = std::make_shared<nn::CosineLr>(total_iterations - tc.warmup_iterations());
  std::shared_ptr<const nn::LrSchedule> schedule = cosine;
  if (tc.warmup_iterations() > 0) {
    schedule = std::make_shared<nn::WarmupLr>(tc.warmup_iterations(), 0.0, cosine);
  }

  int64_t first_epoch = 0;
  if (fs::exists(checkpoint_path)) {
    OMPQ_ASSIGN_OR_RETURN(solver::CheckpointState state,
                          solver::load_checkpoint(checkpoint_path.string(), *model, optimizer));
    first_epoch = state.epochs_done;
    gen.set_state(state.rng_seed, state.rng_offset);
    std::fprintf(stderr, "resuming from %s after epoch %lld\n", checkpoint_path.c_str(),
                 static_cast<long long>(first_epoch));
  }
  OMPQ_ASSIGN_OR_RETURN(solver::MetricsCsv metrics,
                        solver::MetricsCsv::open(metrics_path.string(),
                                                 {"epoch", "train_loss", "train_top1", "test_loss",
                                                  "test_top1", "test_top5", "images_per_second",
                                                  "epoch_seconds"}));

  std::fprintf(stderr, "ompq_train: %s on %s (%lld train / %lld test), %d threads, %s\n",
               config.model().c_str(), train_set->name().c_str(),
               static_cast<long long>(train_set->size()), static_cast<long long>(test_set->size()),
               num_threads(), device.str().c_str());
  solver::TrainOptions options;
  options.label_smoothing = tc.label_smoothing();
  options.log_interval = tc.log_interval();
  options.device = device;
  solver::Trainer trainer(*model, optimizer, *schedule, options);
  for (int64_t epoch = first_epoch; epoch < tc.epochs(); ++epoch) {
    train_loader.set_epoch(epoch);
    OMPQ_ASSIGN_OR_RETURN(solver::EpochResult train,
                          trainer.train_epoch(train_loader, epoch, tc.epochs()));
    solver::EvalResult test = solver::evaluate(*model, test_loader, device);
    std::fprintf(stderr,
                 "epoch %lld/%d: train loss %.4f top-1 %.2f%% | test loss %.4f top-1 %.2f%% "
                 "top-5 %.2f%% | %.0f img/s, %.1f s\n",
                 static_cast<long long>(epoch + 1), tc.epochs(), train.loss, train.top1, test.loss,
                 test.top1, test.top5, train.images_per_second, train.seconds);
    OMPQ_RETURN_IF_ERROR(metrics.append(
        {absl::StrCat(epoch + 1), absl::StrFormat("%.6f", train.loss), absl::StrFormat("%.4f", train.top1),
         absl::StrFormat("%.6f", test.loss), absl::StrFormat("%.4f", test.top1),
         absl::StrFormat("%.4f", test.top5), absl::StrFormat("%.1f", train.images_per_second),
         absl::StrFormat("%.2f", train.seconds)}));
    OMPQ_RETURN_IF_ERROR(solver::save_checkpoint(checkpoint_path.string(), *model, optimizer,
                                                 {epoch + 1, gen.seed(), gen.offset()}));
  }
  OMPQ_RETURN_IF_ERROR(model->save((out_dir / "model.safetensors").string()));
  std::fprintf(stderr, "wrote %s\n", out_dir.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace ompq

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Trains a model end to end.\n  ompq_train [--epochs=2] [--output_dir=out/train] ...\n"
      "A rerun with the same flags resumes from output_dir/checkpoint.safetensors.");
  ompq::collect_given_flags(argc, argv);
  absl::ParseCommandLine(argc, argv);
  return ompq::run_app("ompq_train", ompq::run);
}
