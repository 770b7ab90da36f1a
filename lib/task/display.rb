# frozen_string_literal: true

module Task
  # Showing stored text (list names, ids, errors) to a person, on a terminal or a web page,
  # without letting it act on the display: control characters and Unicode bidi controls are
  # shown as visible escapes instead of being passed on.
  #
  #   Task::Display.visible("a\e[2Jb")        # => "a\\e[2Jb"
  #   Task::Display.visible("abc\u202Efdp.exe") # => "abc\\u202Efdp.exe"
  #   Task::Display.visible("ok\xFF".b)       # => "ok\\xFF"
  #
  # Escaped: C0 controls (U+0000-U+001F) and DEL as \0 \a \b \t \n \v \f \r \e or \u0001;
  # C1 controls (U+0080-U+009F) as \u0085; the bidi controls U+061C, U+200E, U+200F,
  # U+202A-U+202E and U+2066-U+2069 as \u202E; each byte that is not part of valid UTF-8 as
  # \xFF. A backslash already in the text is left as it is, so a name holding one stays
  # readable and can be copied; the escaped form is for reading, not for parsing back.
  module Display
    # What gets escaped (after invalid bytes have been dealt with).
    PATTERN = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/
    NAMED = {
      "\0" => "\\0", "\a" => "\\a", "\b" => "\\b", "\t" => "\\t", "\n" => "\\n",
      "\v" => "\\v", "\f" => "\\f", "\r" => "\\r", "\e" => "\\e"
    }.freeze
    private_constant :NAMED

    # +value+ (a String, or anything with to_s) as a UTF-8 String that shows every control
    # and bidi character as an escape. Text in another encoding is converted to UTF-8 first
    # when it can be; a binary String is read as UTF-8.
    def self.visible(value)
      s = utf8(value.is_a?(String) ? value : value.to_s)
      s = s.scrub { |bytes| bytes.unpack("C*").map { |b| format("\\x%02X", b) }.join } unless s.valid_encoding?
      return s unless s.match?(PATTERN)

      s.gsub(PATTERN) { |c| NAMED[c] || format("\\u%04X", c.ord) }
    end

    # A UTF-8 copy of +s+ (its bytes relabelled when it is binary or cannot be converted).
    def self.utf8(s)
      enc = s.encoding
      return s.dup if enc == Encoding::UTF_8
      return s.dup.force_encoding(Encoding::UTF_8) if enc == Encoding::BINARY || enc == Encoding::US_ASCII

      begin
        s.encode(Encoding::UTF_8)
      rescue EncodingError
        s.b.force_encoding(Encoding::UTF_8)
      end
    end
    private_class_method :utf8
  end
end
