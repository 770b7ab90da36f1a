# frozen_string_literal: true

module Task
  class Web
    # The reads of one page view, kept within a budget of rows. The adapter reads a list a
    # page (its page_size) at a time, so a scan is charged whole pages unless it reached the
    # list's end; no scan starts without a page's worth of budget left (the first excepted).
    class Reader
      # One item of a list: a task, or a row this process cannot make a task of (null or
      # broken data, a type that names no task class loaded here) with the reason.
      Entry = Struct.new(:id, :task, :row, :reason) do
        def bad?
          task.nil?
        end
      end

      # Ends a scan early from inside it.
      class Stop < StandardError; end
      private_constant :Stop

      attr_reader :read, :page_size

      def initialize(adapter, budget)
        @adapter = adapter
        @budget = budget
        @read = 0
        size = adapter.respond_to?(:options) ? adapter.options[:page_size] : nil
        @page_size = size.is_a?(Integer) && size.positive? ? size : 5000
      end

      def left
        @budget - @read
      end

      # Whether another scan fits (the first always does).
      def room?
        @read.zero? || left >= @page_size
      end

      # +rows+ rounded down to whole pages, at least one.
      def whole_pages(rows)
        [rows / @page_size, 1].max * @page_size
      end

      # Yields the list's entries from after +after+ in id order, at most +rows+ of them
      # (whole_pages(left) by default); the block returns :stop to end early. Returns
      # [entries read, whether the list's end was reached].
      def scan(list, after: nil, rows: whole_pages(left), &block)
        limit = rows
        n = 0
        take = lambda do |entry|
          n += 1
          raise Stop if block.call(entry) == :stop || n >= limit
        end
        bad = ->(row, error) { take.call(Entry.new(row[:id].to_s, nil, row, reason(error))) }
        ended = begin
          @adapter.all(list, after: after, on_bad_row: bad).each { |task| take.call(Entry.new(task.id, task, nil, nil)) }
          true
        rescue Stop
          false
        end
        @read += ended ? n : [(n + @page_size - 1) / @page_size, 1].max * @page_size
        [n, ended]
      end

      # The first names of lists (up to +limit+ + 1, to tell whether there are more).
      def lists(limit)
        names = []
        @adapter.lists.each do |name|
          names << name
          break if names.size > limit
        end
        @read += names.size
        names
      end

      # The task, or the entry of a row that cannot become one, or nil.
      def find(list, id)
        @read += 1
        task = @adapter.find(list, id)
        task && Entry.new(task.id, task, nil, nil)
      rescue ::Task::Error::BadData
        row_entry(list, id)
      end

      private

      # A row that cannot become a task, read by a scan that starts just before its id: the
      # greatest string sorting before it that no likely id sorts between (ids compare by
      # their UTF-8 bytes, that is by code point).
      def row_entry(list, id)
        found = nil
        scan(list, after: just_before(id), rows: 1) do |entry|
          found = entry if entry.id == id
          :stop
        end
        found
      end

      def just_before(id)
        chars = id.to_s.chars
        last = chars.pop.ord
        return (chars.empty? ? nil : chars.join) if last.zero?

        prev = last - 1
        prev = 0xD7FF if prev.between?(0xD800, 0xDFFF)
        "#{chars.join}#{prev.chr(Encoding::UTF_8)}#{"\u{10FFFF}" * 4}"
      end

      def reason(error)
        text = error.is_a?(Exception) ? error.message : error.to_s
        text.size > 500 ? "#{text[0, 500]}…" : text
      end
    end
  end
end
