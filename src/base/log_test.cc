#include "base/log.h"

#include <gtest/gtest.h>

namespace sealdrop {
namespace {

TEST(LogTest, QuotesControlCharactersSoNoValueCanEndTheLine) {
  EXPECT_EQ(JsonQuoted("a\nb"), "\"a\\u000ab\"");
  EXPECT_EQ(JsonQuoted("\r\t\x1b\x7f"), "\"\\u000d\\u0009\\u001b\\u007f\"");
  EXPECT_EQ(JsonQuoted("\"}\\"), "\"\\\"}\\\\\"");
  EXPECT_EQ(JsonQuoted(std::string_view("a\0b", 3)), "\"a\\u0000b\"");
}

TEST(LogTest, KeepsUtf8AndReplacesWhatIsNot) {
  EXPECT_EQ(JsonQuoted("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");
  EXPECT_EQ(JsonQuoted("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(JsonQuoted("\xc0\xaf"), "\"\\ufffd\\ufffd\"");           // overlong '/'
  EXPECT_EQ(JsonQuoted("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); // a surrogate
  EXPECT_EQ(JsonQuoted("\xe2\x82"), "\"\\ufffd\\ufffd\"");           // cut short
}

TEST(LogTest, OneLineWithTheFixedFieldsFirstAndEmptyFieldsLeftOut) {
  SetLogProgram("sealdropd");
  LogField fields[] = {{"user", "x\n{\"level\":\"info\"}"}, {"order", ""}};
  std::string line = FormatLogLine(LogLevel::kWarning, "login_refused", fields);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u);
  EXPECT_NE(line.find("\",\"level\":\"warning\",\"program\":\"sealdropd\",\"event\":\"login_refused\","
                      "\"user\":\"x\\u000a{\\\"level\\\":\\\"info\\\"}\"}"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("order"), std::string::npos);
}

}  // namespace
}  // namespace sealdrop
