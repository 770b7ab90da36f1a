# frozen_string_literal: true

require "task/display"

module Task
  class CLI
    # Stored text as the command shows it: on a terminal it must not act on the display (an
    # Escape sequence or a BEL in a list name, an id or an error message is shown escaped,
    # see Task::Display), and what is meant to be pasted into a shell is quoted for it.
    module Text
      # Characters a shell word may hold unquoted.
      PLAIN = %r{\A[A-Za-z0-9_.,:/@%+=-]+\z}
      # Characters JSON may carry as they are but a terminal would act on or reorder: DEL, the
      # C1 controls, the bidi controls and the line and paragraph separators.
      JSON_UNSAFE = /[\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]/

      module_function

      # +value+ with control and bidi characters and invalid bytes shown as escapes.
      def visible(value)
        ::Task::Display.visible(value)
      end

      # A JSON text (from JSON.generate, which escapes the C0 controls) with the other
      # characters a terminal acts on written as \uXXXX escapes: the same JSON value.
      def json(text)
        text.match?(JSON_UNSAFE) ? text.gsub(JSON_UNSAFE) { |c| format("\\u%04x", c.ord) } : text
      end

      # +text+ as one shell word that reads back as exactly +text+ in sh and bash: as it is
      # when plain, in single quotes, or (when it holds characters a terminal would act on) in
      # bash's $'...' with those characters as \xHH escapes, so the line shown is safe to show.
      def shell_word(text)
        text = text.to_s
        return text if text.valid_encoding? && text.match?(PLAIN)
        return "'#{text.gsub("'") { "'\\''" }}'" if text.valid_encoding? && visible(text) == text

        quoted = text.each_char.map do |c|
          if c == "'" || c == "\\"
            "\\#{c}"
          elsif c.valid_encoding? && visible(c) == c
            c
          else
            c.bytes.map { |b| format("\\x%02X", b) }.join
          end
        end
        "$'#{quoted.join}'"
      end
    end
  end
end
