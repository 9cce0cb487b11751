#include "solver/config/proto_io.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/atomic_file.h"

namespace ompq::solver {
namespace {

// Keeps the parser's first complaint (with its line and column) instead of printing it.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty())
      error_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// The path of the first enum field under `message` with a value its enum does not name, with that
// value; "" when there is none.
std::string first_unknown_enum_value(const google::protobuf::Message& message,
                                     const std::string& prefix) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string path = absl::StrCat(prefix, field->name());
    const int count = field->is_repeated() ? reflection.FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const std::string element = field->is_repeated() ? absl::StrCat(path, "[", i, "]") : path;
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const google::protobuf::Message& inner =
            field->is_repeated() ? reflection.GetRepeatedMessage(message, field, i)
                                 : reflection.GetMessage(message, field);
        std::string found = first_unknown_enum_value(inner, element + ".");
        if (!found.empty()) return found;
      } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_ENUM) {
        const int value = field->is_repeated() ? reflection.GetRepeatedEnumValue(message, field, i)
                                               : reflection.GetEnumValue(message, field);
        const google::protobuf::EnumDescriptor& type = *field->enum_type();
        if (type.FindValueByNumber(value) != nullptr) continue;
        std::vector<std::string> names;
        for (int v = 0; v < type.value_count(); ++v) names.push_back(type.value(v)->name());
        return absl::StrCat(element, " is ", value, " (expected ", absl::StrJoin(names, ", "), ")");
      }
    }
  }
  return "";
}

}  // namespace

absl::Status check_enum_values(const google::protobuf::Message& message, const std::string& where) {
  const std::string unknown = first_unknown_enum_value(message, "");
  if (unknown.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", unknown));
}

std::string to_text_format(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(message, &text);
  return text;
}

absl::Status write_text_proto(const std::string& path, const google::protobuf::Message& message) {
  return write_file_atomically(path, to_text_format(message));
}

absl::Status read_text_proto(const std::string& path, google::protobuf::Message* message,
                             bool merge) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  FirstError errors;
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  const bool parsed = merge ? parser.MergeFromString(text.str(), message)
                            : parser.ParseFromString(text.str(), message);
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a valid ", message->GetDescriptor()->name(),
                     " in protobuf text format (", errors.error(), ")"));
  }
  return check_enum_values(*message, path);
}

}  // namespace ompq::solver
