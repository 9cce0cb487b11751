// The enums of the config protos (core/proto/ompq.proto) on the command line and in messages, and
// as the solver's own enums (the search's in search/search_enums.h). On the command line a value is
// named by its proto name without the enum's prefix, in lower case (QUANT_PTQ: "ptq",
// DATASET_FASHION_MNIST: "fashion_mnist"); an UNSPECIFIED value by the empty string.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/generated_enum_reflection.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/dtype.h"
#include "core/proto/ompq.pb.h"

namespace ompq::solver {

// The command-line name of value `number` of `type`.
std::string enum_value_name(const google::protobuf::EnumDescriptor& type, int number);
// The number of the value of `type` that `name` names, one of `accepted` (empty: any value);
// anything else is an InvalidArgument error "FLAG=NAME (expected a, b or c)".
absl::StatusOr<int> parse_enum_value_name(const google::protobuf::EnumDescriptor& type,
                                          absl::string_view flag, absl::string_view name,
                                          const std::vector<int>& accepted);

template <typename Enum>
std::string enum_name(Enum value) {
  return enum_value_name(*google::protobuf::GetEnumDescriptor<Enum>(), value);
}

// A string flag as a config enum: parse_enum_flag<proto::Quant>("--quant", "ptq") is QUANT_PTQ.
template <typename Enum>
absl::StatusOr<Enum> parse_enum_flag(absl::string_view flag, absl::string_view name,
                                     const std::vector<Enum>& accepted = {}) {
  const std::vector<int> numbers(accepted.begin(), accepted.end());
  absl::StatusOr<int> number =
      parse_enum_value_name(*google::protobuf::GetEnumDescriptor<Enum>(), flag, name, numbers);
  if (!number.ok()) return number.status();
  return static_cast<Enum>(*number);
}

DType precision_dtype(proto::Precision precision);

}  // namespace ompq::solver
