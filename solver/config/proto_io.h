// Configs and bit configs on disk in protobuf text format: read with a message that names the file,
// written atomically (core/atomic_file.h: PATH is either the old file or the whole new one).
#pragma once

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"

namespace ompq::solver {

// The message in text format (google::protobuf::TextFormat).
std::string to_text_format(const google::protobuf::Message& message);
absl::Status write_text_proto(const std::string& path, const google::protobuf::Message& message);
// Replaces `message` with the file's contents (`merge`: sets only the fields the file names,
// keeping the others); a missing file is NotFound, a malformed one InvalidArgument naming the
// file and the parser's line and column, or the first enum field holding a number its enum does
// not name.
absl::Status read_text_proto(const std::string& path, google::protobuf::Message* message,
                             bool merge = false);

// Text format takes any number for an enum field (proto3 keeps unknown values): the first enum
// field, nested ones included, whose value its enum does not name is an InvalidArgument error
// "`where`: FIELD.PATH is N (expected NAME, ...)".
absl::Status check_enum_values(const google::protobuf::Message& message, const std::string& where);

}  // namespace ompq::solver
