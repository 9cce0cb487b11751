// The config protos' enums: their names on the command line, their C++ counterparts, and config
// files holding values their enums do not name.
#include "solver/config/config_enums.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "solver/config/proto_io.h"
#include "solver/search/search_enums.h"
#include "tests/temp_dir.h"

namespace ompq::solver {
namespace {

using ::testing::HasSubstr;

template <typename Enum>
std::string flag_error(const std::string& flag, const std::string& name,
                       const std::vector<Enum>& accepted = {}) {
  absl::StatusOr<Enum> parsed = parse_enum_flag<Enum>(flag, name, accepted);
  EXPECT_FALSE(parsed.ok()) << flag << "=" << name;
  return std::string(parsed.status().message());
}

TEST(ConfigEnums, NamesAValueByItsProtoNameWithoutThePrefix) {
  EXPECT_EQ(enum_name(proto::QUANT_PTQ), "ptq");
  EXPECT_EQ(enum_name(proto::DATASET_FASHION_MNIST), "fashion_mnist");
  EXPECT_EQ(enum_name(proto::STAGE_STATUS_SKIPPED), "skipped");
  EXPECT_EQ(enum_name(proto::PRECISION_BF16), "bf16");
  EXPECT_EQ(enum_name(proto::ROUNDING_UNSPECIFIED), "");
  EXPECT_EQ(enum_name(static_cast<proto::Solver>(9)), "9");
}

TEST(ConfigEnums, ParsesFlagsAndNamesTheFlagAndTheChoicesOfABadOne) {
  EXPECT_EQ(*parse_enum_flag<proto::Quant>("--quant", "ptq"), proto::QUANT_PTQ);
  EXPECT_EQ(*parse_enum_flag<proto::Precision>("--precision", "f16"), proto::PRECISION_F16);
  EXPECT_EQ(*parse_enum_flag<proto::Dataset>("--dataset", "imagenet"), proto::DATASET_IMAGENET);
  EXPECT_EQ(*parse_enum_flag<proto::Rounding>("--rounding", ""), proto::ROUNDING_UNSPECIFIED);
  EXPECT_EQ(flag_error<proto::Quant>("--quant", "int4"),
            "--quant=int4 (expected qat, ptq or none)");
  EXPECT_EQ(flag_error<proto::Quant>("--quant", "QUANT_QAT"),
            "--quant=QUANT_QAT (expected qat, ptq or none)");
  EXPECT_EQ(flag_error<proto::Rounding>("--rounding", "unspecified"),
            "--rounding=unspecified (expected dfs, nearest or empty)");
  EXPECT_EQ(flag_error<proto::Precision>("--precision", ""),
            "--precision= (expected f32, bf16 or f16)");
  // A flag may take a part of its enum: the search solvers, not the baselines.
  const std::vector<proto::Solver> solvers = {proto::SOLVER_LP, proto::SOLVER_ILP,
                                              proto::SOLVER_PROJECTION};
  EXPECT_EQ(*parse_enum_flag<proto::Solver>("--solver", "ilp", solvers), proto::SOLVER_ILP);
  EXPECT_EQ(flag_error<proto::Solver>("--solver", "uniform", solvers),
            "--solver=uniform (expected lp, ilp or projection)");
  EXPECT_EQ(flag_error<proto::Quant>("--quant", "none", {proto::QUANT_QAT, proto::QUANT_PTQ}),
            "--quant=none (expected qat or ptq)");
}

TEST(ConfigEnums, MapOntoTheSolversEnumsUnderTheSameNames) {
  for (QuantMode mode : {QuantMode::kQat, QuantMode::kPtq}) {
    EXPECT_EQ(quant_mode(to_proto(mode)), mode);
    EXPECT_EQ(enum_name(to_proto(mode)), quant_mode_name(mode));
  }
  EXPECT_THAT([] { quant_mode(proto::QUANT_NONE); },
              ::testing::ThrowsMessage<Error>(HasSubstr("quant none has no quantization mode")));
  for (SolverKind solver : {SolverKind::kLp, SolverKind::kIlp, SolverKind::kProjection}) {
    EXPECT_EQ(*solver_kind(to_proto(solver)), solver);
    EXPECT_EQ(enum_name(to_proto(solver)), solver_name(solver));
  }
  for (proto::Solver baseline :
       {proto::SOLVER_UNIFORM, proto::SOLVER_RANDOM, proto::SOLVER_HESSIAN}) {
    EXPECT_THAT(std::string(solver_kind(baseline).status().message()),
                HasSubstr("(expected lp, ilp or projection"));
  }
  for (Rounding rounding : {Rounding::kDfs, Rounding::kHalfToEven}) {
    EXPECT_EQ(rounding_kind(to_proto(rounding), "resnet50"), rounding);
    EXPECT_EQ(enum_name(to_proto(rounding)), rounding_name(rounding));
  }
  EXPECT_EQ(rounding_kind(proto::ROUNDING_UNSPECIFIED, "resnet18"), Rounding::kDfs);
  EXPECT_EQ(rounding_kind(proto::ROUNDING_UNSPECIFIED, "mobilenet_v2"), Rounding::kHalfToEven);
  EXPECT_EQ(precision_dtype(proto::PRECISION_F32), DType::kF32);
  EXPECT_EQ(precision_dtype(proto::PRECISION_BF16), DType::kBF16);
  EXPECT_EQ(precision_dtype(proto::PRECISION_F16), DType::kF16);
}

TEST(ConfigEnums, AFileWithAnUnknownValueIsAnErrorNamingTheFile) {
  testing::ScopedTempDir temp;
  const std::string path = (temp.path() / "config.pbtxt").string();
  auto read_error = [&](const std::string& text) {
    std::ofstream(path) << text;
    proto::ExperimentConfig config;
    const absl::Status status = read_text_proto(path, &config);
    EXPECT_FALSE(status.ok()) << text;
    return std::string(status.message());
  };
  EXPECT_THAT(read_error("quant: QAT"), HasSubstr(path + ": not a valid ExperimentConfig"));
  EXPECT_THAT(read_error("quant: QAT"), HasSubstr("Unknown enumeration value of \"QAT\""));
  EXPECT_EQ(read_error("search { solver: SOLVER_ILP rounding: 7 }"),
            path +
                ": search.rounding is 7 (expected ROUNDING_UNSPECIFIED, ROUNDING_DFS, "
                "ROUNDING_NEAREST)");
  proto::PipelineState state;
  std::ofstream(path) << "stage { name: \"qat\" status: STAGE_STATUS_GIVEN }\n"
                         "stage { name: \"eval\" status: 3 }";
  EXPECT_EQ(read_text_proto(path, &state).message(),
            path +
                ": stage[1].status is 3 (expected STAGE_STATUS_DONE, STAGE_STATUS_SKIPPED, "
                "STAGE_STATUS_GIVEN)");
  std::ofstream(path) << "quant: QUANT_PTQ train { precision: PRECISION_BF16 }";
  proto::ExperimentConfig config;
  ASSERT_TRUE(read_text_proto(path, &config).ok());
  EXPECT_EQ(config.quant(), proto::QUANT_PTQ);
  EXPECT_EQ(config.train().precision(), proto::PRECISION_BF16);
}

}  // namespace
}  // namespace ompq::solver
