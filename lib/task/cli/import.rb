# frozen_string_literal: true

require "json"

module Task
  class CLI
    # `taskrb import`: JSON lines (as export writes them) stored IMPORT_CHUNK at a time. A line
    # that is not a task, or whose row the server refuses (too large, ...), is reported with
    # its number; the run stops there or (skip) goes on past it.
    class Import
      # Tasks go to the store CHUNK at a time (store_many: batched by list).
      CHUNK = 1000
      # Failures of the store itself rather than of a row: the run cannot go on past them.
      STORE_FAILURES = [::Task::Error::Timeout, ::Task::Error::Unavailable, ::Task::Error::NoHostAvailable,
                        ::Task::Error::Forked].freeze

      # Characters of an error message shown.
      MESSAGE_MAX = 500

      attr_reader :stored, :bad

      def initialize(adapter, err, skip:, progress:)
        @adapter = adapter
        @err = err
        @skip = skip
        @progress = progress
        @stored = 0
        @bad = 0
        @read = 0
        @pending = [] # [line number, task]
      end

      # Reads and stores every line of +source+; false when the run stopped early.
      def run(source)
        stopped = catch(:stop) do
          source.each_line.with_index(1) do |line, number|
            @read = number
            next if line.strip.empty?

            import_line(line, number)
            flush if @pending.size >= CHUNK
          end
          flush
          false
        end
        !stopped
      end

      private

      # One line: a task to store with the next chunk, a row stored now (its class is not
      # loaded here), or a bad line reported.
      def import_line(line, number)
        @pending << [number, ::Task::Task.from_json(line)]
      rescue NameError => e
        raise if e.is_a?(NoMethodError)

        flush # in order: what came before first
        guarded(number) { store_as_row(line) }
      rescue JSON::ParserError, ArgumentError, ::Task::Error::InvalidType => e
        flush
        bad_lines([[number, e]])
      end

      def flush
        return if @pending.empty?

        chunk = @pending
        @pending = []
        begin
          @stored += @adapter.store_many(chunk.map(&:last))
          chunk.size.times { @progress.step }
        rescue ArgumentError, ::Task::Error::BadData
          # One of them is bad, and store_many wrote none: one at a time, to name its line.
          chunk.each { |(number, task)| guarded(number) { @adapter.store(task) } }
        rescue ::Task::Error::BulkFailure => e
          not_stored(chunk, e.failures)
        end
      end

      # The tasks of +chunk+ that store_many reported in +failures+ were not written; all
      # the others were.
      def not_stored(chunk, failures)
        failed = lines_of(chunk, failures)
        (chunk.size - failed.size).times do
          @stored += 1
          @progress.step
        end
        broken, refused = failed.partition { |(_, _, error)| store_failure?(error) }
        store_failed(chunk, failed) unless broken.empty?
        if refused.size == chunk.size && chunk.size > 1
          store_failed(chunk, refused) # every row refused: the store, not the rows
        elsif refused.size > 1
          # A batch is refused whole: one at a time, so that only the refused rows are named.
          refused.each { |(number, task, _)| guarded(number) { @adapter.store(task) } }
        else
          bad_lines(refused.map { |(number, _, error)| [number, error] })
        end
      end

      # [line number, task, error] for each failure, in line order.
      def lines_of(chunk, failures)
        numbers = Hash.new { |h, k| h[k] = [] }
        chunk.each { |(number, task)| numbers[[task.task_list, task.id]] << [number, task] }
        failures.map do |f|
          number, task = numbers[[f[:task_list], f[:id]]].shift
          [number, task, f[:error]]
        end.sort_by { |(number, _, _)| number || 0 }
      end

      def store_failure?(error)
        STORE_FAILURES.any? { |c| error.is_a?(c) } || !error.is_a?(::Task::Error)
      end

      def guarded(number)
        yield
        @stored += 1
        @progress.step
      rescue ArgumentError, ::Task::Error, JSON::ParserError => e
        raise if store_failure?(e)

        bad_lines([[number, e]])
      end

      # Reports each [line number, error]; stops at the first unless skipping.
      def bad_lines(lines)
        return if lines.empty?

        lines.each do |(number, error)|
          @bad += 1
          say(number, error)
        end
        return if @skip

        stop(lines.first[0], "--on-bad-line skip goes on past bad lines")
      end

      def store_failed(chunk, failed)
        number, _, error = failed.first
        say(number, error)
        @err.puts("taskrb: the store failed on #{failed.size} of lines #{chunk.first[0]} to #{chunk.last[0]}: " \
                  "not stored (importing again is safe: saves are upserts)")
        stop(number, nil)
      end

      # A line's problem, on one line (a message quoting a huge line is cut short).
      def say(number, error)
        text = error.message.to_s
        text = "#{text[0, MESSAGE_MAX]}... (#{text.size} characters)" if text.size > MESSAGE_MAX
        @err.puts(Text.visible("taskrb: line #{number}: #{text}"))
      end

      def stop(number, advice)
        read = @read > number ? ", lines 1 to #{@read} read" : ""
        @err.puts("taskrb: stopped at line #{number} (#{@stored} stored#{read})#{"; #{advice}" if advice}")
        throw :stop, true
      end

      # Writes the row a JSON line describes (its type kept), for a task whose class is not
      # loaded here: the application reads it as before.
      def store_as_row(line)
        h = JSON.parse(line)
        data = h["data"]
        raise ArgumentError, "data must be a JSON object, got #{JSON.generate(data)}" unless data.is_a?(Hash)

        type = h["type"]
        unless type.is_a?(String) && type.match?(/\A[A-Z]\w*(::[A-Z]\w*)*\z/)
          raise ArgumentError, "type must be a class name, got #{type.inspect}"
        end

        @adapter.store_row(task_list: h["task_list"], id: h["id"], type: type, data: JSON.generate(data))
      end
    end
  end
end
