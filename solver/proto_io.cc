#include "solver/proto_io.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/atomic_file.h"

namespace ompq::solver {
namespace {

// Keeps the parser's first complaint (with its line and column) instead of printing it.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) error_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

}  // namespace

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
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a valid ",
                                                   message->GetDescriptor()->name(),
                                                   " in protobuf text format (", errors.error(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace ompq::solver
