// The stages that choose and apply the bit-widths: the OMPQ search and PTQ.
#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/safetensors.h"
#include "data/catalog.h"
#include "solver/capture/sample_batch.h"
#include "solver/config/config_enums.h"
#include "solver/config/proto_io.h"
#include "solver/pipeline/experiment_impl.h"
#include "solver/pipeline/quantize_point.h"
#include "solver/quantize/ptq.h"
#include "solver/search/search.h"
#include "solver/search/search_enums.h"

namespace ompq::solver {

absl::Status Experiment::search_bits(proto::StageRecord& record) {
  record.add_outputs(kBitsFile);
  if (given_bits_) {
    record.set_status(proto::STAGE_STATUS_GIVEN);
    say("[search] bits from %s\n", config_.search().bits().c_str());
    return writes() ? write_text_proto(path(kBitsFile).string(), *given_bits_) : absl::OkStatus();
  }
  const proto::SearchConfig& sc = config_.search();
  SearchOptions options;
  options.model_name = config_.model();
  options.mode = quant_mode(config_.quant());
  options.beta = sc.beta();
  OMPQ_ASSIGN_OR_RETURN(options.allocation.solver, solver_kind(sc.solver()));
  options.allocation.rounding = rounding_kind(sc.rounding(), config_.model());
  options.allocation.budget_mib = sc.budget_mb();
  options.allocation.act_bits = config_.act_bits();
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model(gen));
  Tensor images;
  const bool data_free = options.allocation.solver == SolverKind::kProjection;
  if (!data_free) {
    OMPQ_ASSIGN_OR_RETURN(
        images, first_shuffled_batch(search_set_, sc.images(), config_.seed(), "search images"));
    images = images.to(runtime_.device);
  }
  OMPQ_ASSIGN_OR_RETURN(SearchResult result, search(*model, images, options));
  say("[search] %s %s: %.4f MiB (budget %.4f), %.4f G BOPs; features %.2f s, ORM %.2f s, "
      "solve %.3f s\n",
      solver_name(options.allocation.solver), quant_mode_name(options.mode),
      result.allocation.size_mib, sc.budget_mb(), result.allocation.bops_g,
      result.timings.features_s, result.timings.orm_s, result.timings.solve_s);
  if (result.allocation.size_mib > sc.budget_mb()) {
    say("[search] over the budget: half-to-even rounding ignores it, as the reference's "
        "does; --rounding=dfs or --solver=ilp keep to it\n");
  }
  proto::BitConfig bits = make_bit_config(options, result);
  bits.set_num_classes(num_classes_);
  bits.set_small_input(config_.small_input());
  bits.set_width_mult(config_.width_mult());
  bits.set_seed(config_.seed());
  if (!data_free) {
    bits.set_weights(fp32_weights());
    bits.set_data(absl::StrCat(data::dataset_kind_name(dataset_kind_), ":", config_.data().dir()));
    bits.set_num_images(sc.images());
  }
  if (!writes()) return absl::OkStatus();
  if (result.orm.defined()) {
    const int64_t units = static_cast<int64_t>(result.log_theta.size());
    OMPQ_RETURN_IF_ERROR(
        save_safetensors(path(kSearchFile).string(),
                         {{"orm", result.orm.to(Device::cpu())},
                          {"log_theta", Tensor::from_vector<double>(result.log_theta, {units})}}));
    record.add_outputs(kSearchFile);
  }
  return write_text_proto(path(kBitsFile).string(), bits);
}

absl::Status Experiment::ptq(proto::StageRecord& record) {
  Generator gen(config_.seed());
  OMPQ_ASSIGN_OR_RETURN(LayerBitsPlan plan, bits_plan());
  OMPQ_ASSIGN_OR_RETURN(std::shared_ptr<nn::Model> model, fp32_model(gen));
  const proto::PtqConfig& pc = config_.ptq();
  OMPQ_ASSIGN_OR_RETURN(Tensor images, first_shuffled_batch(train_set_, pc.calibration_images(),
                                                            config_.seed(), "calibration images"));
  PtqOptions options = ptq_options(pc);
  options.progress_interval = std::max(1, config_.train().log_interval());
  options.checkpoint = path(kPtqCheckpoint).string();
  options.write_checkpoint = writes();
  options.on_resume = [this, &options](int phase, int64_t done, int64_t units) {
    say("[ptq] resuming from %s: phase %d, %lld of %lld units done\n", options.checkpoint.c_str(),
        phase, static_cast<long long>(done), static_cast<long long>(units));
  };
  options.on_progress = [this](const PtqProgress& p) {
    say("[ptq] phase %d unit %lld/%lld %s: iteration %lld/%lld, loss %.4g%s\n", p.phase,
        static_cast<long long>(p.unit_index + 1), static_cast<long long>(p.num_units),
        p.unit.c_str(), static_cast<long long>(p.iteration), static_cast<long long>(p.iterations),
        p.reconstruction_loss,
        p.phase == 1 ? absl::StrFormat(" + rounding %.4g", p.rounding_loss).c_str() : "");
  };
  OMPQ_ASSIGN_OR_RETURN(PtqResult result, quantize_by_ptq(*model, plan, config_.act_bits(),
                                                          images.to(runtime_.device), options));
  for (const PtqUnitResult& unit : result.units) {
    say("[ptq] %s: error %.4g nearest -> %.4g AdaRound (%.1f s)\n", unit.name.c_str(),
        unit.nearest_error, unit.adaround_error, unit.seconds);
  }
  if (writes()) OMPQ_RETURN_IF_ERROR(model->save(path(kQuantizedFile).string()));
  record.add_outputs(kQuantizedFile);
  return absl::OkStatus();
}
}  // namespace ompq::solver
