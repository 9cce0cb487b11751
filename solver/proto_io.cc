#include "solver/proto_io.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ompq::solver {
namespace {

namespace fs = std::filesystem;

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

absl::Status write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!(out << text) || !out.flush()) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write ", tmp));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    return absl::InternalError(absl::StrCat(path, ": cannot rename ", tmp, ": ", ec.message()));
  }
  return absl::OkStatus();
}

std::string to_text_format(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(message, &text);
  return text;
}

absl::Status write_text_proto(const std::string& path, const google::protobuf::Message& message) {
  return write_text_atomically(path, to_text_format(message));
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
