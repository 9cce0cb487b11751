#include "solver/config/config_enums.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/error.h"

namespace ompq::solver {
namespace {

// The prefix of every value name of `type`: its name in upper snake case, "StageStatus":
// "STAGE_STATUS_".
std::string value_prefix(const google::protobuf::EnumDescriptor& type) {
  std::string prefix;
  for (char c : type.name()) {
    if (std::isupper(static_cast<unsigned char>(c)) && !prefix.empty()) prefix += '_';
    prefix += absl::ascii_toupper(c);
  }
  return prefix + "_";
}

bool is_unspecified(const google::protobuf::EnumValueDescriptor& value) {
  return absl::EndsWith(value.name(), "_UNSPECIFIED");
}

// "a, b or c"; the unspecified value comes last, as "empty".
std::string alternatives(const google::protobuf::EnumDescriptor& type,
                         const std::vector<int>& numbers) {
  std::vector<std::string> names;
  bool unspecified = false;
  for (int number : numbers) {
    const std::string name = enum_value_name(type, number);
    if (name.empty()) {
      unspecified = true;
    } else {
      names.push_back(name);
    }
  }
  if (unspecified) names.push_back("empty");
  if (names.size() < 2) return absl::StrJoin(names, "");
  const std::string last = names.back();
  names.pop_back();
  return absl::StrCat(absl::StrJoin(names, ", "), " or ", last);
}

}  // namespace

std::string enum_value_name(const google::protobuf::EnumDescriptor& type, int number) {
  const google::protobuf::EnumValueDescriptor* value = type.FindValueByNumber(number);
  if (value == nullptr) return absl::StrCat(number);
  if (is_unspecified(*value)) return "";
  return absl::AsciiStrToLower(value->name().substr(value_prefix(type).size()));
}

absl::StatusOr<int> parse_enum_value_name(const google::protobuf::EnumDescriptor& type,
                                          absl::string_view flag, absl::string_view name,
                                          const std::vector<int>& accepted) {
  std::vector<int> numbers = accepted;
  if (numbers.empty()) {
    for (int i = 0; i < type.value_count(); ++i) numbers.push_back(type.value(i)->number());
  }
  for (int number : numbers) {
    if (enum_value_name(type, number) == name) return number;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(flag, "=", name, " (expected ", alternatives(type, numbers), ")"));
}

DType precision_dtype(proto::Precision precision) {
  switch (precision) {
    case proto::PRECISION_BF16:
      return DType::kBF16;
    case proto::PRECISION_F16:
      return DType::kF16;
    default:
      return DType::kF32;
  }
}

}  // namespace ompq::solver
