#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/error.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment.h"
#include "solver/pipeline/experiment_impl.h"
#include "solver/search/search_enums.h"

namespace ompq::solver {

absl::Status validate_experiment_config(const ExperimentConfig& c) {
  const proto::TrainConfig& t = c.train();
  if (c.output_dir().empty()) return invalid("output_dir must not be empty");
  OMPQ_RETURN_IF_ERROR(check_enum_values(c, "config"));
  if (c.data().train_limit() < 0 || c.data().test_limit() < 0 || c.data().workers() < 0) {
    return invalid("train_limit, test_limit and workers must not be negative");
  }
  if (t.batch_size() <= 0)
    return invalid(absl::StrCat("batch_size must be positive, got ", t.batch_size()));
  if (t.eval_batch_size() <= 0) {
    return invalid(absl::StrCat("eval_batch_size must be positive, got ", t.eval_batch_size()));
  }
  if (t.warmup_iterations() < 0) {
    return invalid(
        absl::StrCat("warmup_iterations must not be negative, got ", t.warmup_iterations()));
  }
  if (c.data().prefetch() < 0) {
    return invalid(absl::StrCat("prefetch must not be negative, got ", c.data().prefetch()));
  }
  if (c.data().image_size() < 0) {
    return invalid(absl::StrCat("image_size must not be negative, got ", c.data().image_size()));
  }
  if (c.data().dataset() != proto::DATASET_IMAGENET && !c.data().label_file().empty()) {
    return invalid("label_file is for dataset imagenet (a flat val/ folder)");
  }
  if (t.checkpoint_steps() < 0) {
    return invalid(
        absl::StrCat("checkpoint_steps must not be negative, got ", t.checkpoint_steps()));
  }
  if (c.weights().empty()) {
    if (t.epochs() <= 0) return invalid(absl::StrCat("epochs must be positive, got ", t.epochs()));
    if (!(t.lr() > 0)) return invalid(absl::StrCat("lr must be positive, got ", t.lr()));
    if (t.label_smoothing() < 0 || t.label_smoothing() >= 1) {
      return invalid(absl::StrCat("label_smoothing must be in [0, 1), got ", t.label_smoothing()));
    }
  }
  if (c.quant() == proto::QUANT_NONE) return absl::OkStatus();
  if (c.act_bits() < 2 || c.act_bits() > 8) {
    return invalid(absl::StrCat("act_bits ", c.act_bits(), " (expected 2..8)"));
  }
  const proto::SearchConfig& s = c.search();
  if (s.bits().empty()) {
    if (s.budget_mb() < 0 || s.budget_fraction() < 0) {
      return invalid(absl::StrCat("budget_mb ", s.budget_mb(), " and budget_fraction ",
                                  s.budget_fraction(), " (expected >= 0)"));
    }
    if (!(std::isfinite(s.beta()) && s.beta() >= 0)) {
      return invalid(absl::StrCat("beta ", s.beta(), " (expected finite and >= 0)"));
    }
    OMPQ_RETURN_IF_ERROR(solver_kind(s.solver()).status());
    if (s.solver() != proto::SOLVER_PROJECTION && s.images() < 2) {
      return invalid(absl::StrCat("search_images ", s.images(), " (expected >= 2)"));
    }
  }
  if (c.quant() == proto::QUANT_QAT) {
    const proto::QatConfig& q = c.qat();
    if (q.epochs() <= 0)
      return invalid(absl::StrCat("qat_epochs must be positive, got ", q.epochs()));
    if (!(q.lr() > 0)) return invalid(absl::StrCat("qat_lr must be positive, got ", q.lr()));
    if (q.momentum() < 0 || q.weight_decay() < 0) {
      return invalid("qat momentum and weight_decay must not be negative");
    }
  } else {
    if (c.ptq().iters() <= 0) {
      return invalid(absl::StrCat("ptq_iters must be positive, got ", c.ptq().iters()));
    }
    if (c.ptq().calibration_images() <= 0) {
      return invalid(
          absl::StrCat("calibration_images must be positive, got ", c.ptq().calibration_images()));
    }
  }
  return absl::OkStatus();
}
}  // namespace ompq::solver
