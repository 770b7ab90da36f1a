# frozen_string_literal: true

module Task
  class << self
    # The logger of every adapter that logs and has none of its own (`logger:`); nil, the
    # default, logs nothing. Any object with debug, info, warn and error (a Logger).
    attr_reader :logger

    def logger=(logger)
      Logging.check(logger) unless logger.nil?
      @logger = logger
      Logging.refresh
    end
  end

  # What gets logged, at which level: sessions opened (info) and connections that failed
  # (warn), each retry of a call with its attempt number and reason (warn), a call that
  # succeeded after retries (info) or gave up (error), calls slower than the adapter's
  # `slow_call:` (warn, default 2 s), schema changes made by create_schema and tune_table
  # (info). Nothing for a call that simply succeeded. Lines are delivered by the calling
  # thread, while it waits and when the call returns; never from the I/O thread.
  module Logging
    # `logger:`: the adapter's lines go to that logger instead of Task.logger.
    module WithLogger
      def new(*args, logger: nil, **options)
        Logging.check(logger) unless logger.nil?
        adapter = super(*args, **options)
        unless logger.nil?
          adapter.instance_variable_set(:@logger, logger)
          Logging.register(adapter.log_source, logger)
        end
        adapter
      end
    end

    # The adapter's logger.
    module AdapterLogger
      # The logger given to new, or nil (Task.logger then gets this adapter's lines).
      def logger
        @logger if instance_variable_defined?(:@logger)
      end
    end

    @by_source = {}.freeze
    @lock = Mutex.new
    @driver_level = nil

    # The driver's own levels, least severe first (its lines read "LEVEL target: message").
    DRIVER_LEVELS = %w[TRACE DEBUG INFO WARN ERROR].freeze
    # The driver's levels delivered at a Logger level of their own (the rest: debug).
    DRIVER_RAISED = { "WARN" => "warn", "ERROR" => "error" }.freeze

    class << self
      # The least severe of the Cassandra driver's own lines (source "driver": connections,
      # pools, nodes up and down) that are logged: :debug, :info, :warn or :error; nil (the
      # default outside Rails) logs them all. They are handed to the logger at debug, as
      # before; this picks them by the driver's own level. The Railtie sets :warn unless
      # config.task.driver_log_level says otherwise.
      def driver_level
        @driver_level && DRIVER_LEVELS[@driver_level].downcase.to_sym
      end

      def driver_level=(level)
        @driver_level = level.nil? ? nil : driver_rank(level)
      end

      def check(logger)
        return if %i[debug info warn error].all? { |m| logger.respond_to?(m) }

        raise ArgumentError, "logger must respond to debug, info, warn and error (a Logger), got #{logger.inspect}"
      end

      # Lines about this source (an adapter's table and hosts) go to this logger.
      def register(source, logger)
        @lock.synchronize { @by_source = @by_source.merge(source => logger).freeze }
        refresh
      end

      # Gives an adapter class the `logger:` option of `new` and `#logger` (for a store that
      # logs: its lib/task/adapters/STORE.rb calls this).
      def adapter_logs(adapter_class)
        adapter_class.singleton_class.prepend(WithLogger)
        adapter_class.include(AdapterLogger)
      end

      def refresh
        self.native_enabled = !::Task.logger.nil? || !@by_source.empty?
      end

      # Called by the extension for each line.
      def deliver(level, source, message)
        if source == "driver"
          return nil if @driver_level && !driver_line_wanted?(message)

          # The driver's warnings and errors at their own level (a production logger at info
          # shows them); its other lines at debug.
          level = DRIVER_RAISED.fetch(message[/\A[A-Z]+/], level)
        end

        text = source.empty? ? "task: #{message}" : "task [#{source}]: #{message}"
        loggers_for(source).each do |logger|
          logger.public_send(level, text)
        rescue StandardError => e
          warn "task: the logger raised #{e.class}: #{e.message}"
        end
        nil
      end

      private

      def driver_line_wanted?(message)
        rank = DRIVER_LEVELS.index(message[/\A[A-Z]+/])
        rank.nil? || rank >= @driver_level
      end

      def driver_rank(level)
        rank = case level
               when Integer then level.between?(0, 3) ? level + 1 : nil # Logger::DEBUG..ERROR
               when String, Symbol then DRIVER_LEVELS.index(level.to_s.upcase)
               end
        return rank if rank && rank >= 1

        raise ArgumentError, "driver_log_level must be :debug, :info, :warn or :error (or nil: all), got #{level.inspect}"
      end

      # An adapter's lines go to its logger, else Task.logger. The driver's own lines (source
      # "driver") concern every session: Task.logger, else every adapter logger.
      def loggers_for(source)
        own = @by_source[source]
        return [own] if own
        return [::Task.logger] if ::Task.logger
        return @by_source.values.uniq if source == "driver"

        []
      end
    end
  end
end
