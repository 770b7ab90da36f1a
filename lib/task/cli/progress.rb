# frozen_string_literal: true

module Task
  class CLI
    # A progress line on a terminal: count, rate and (when the total is known) ETA.
    class Progress
      def initialize(io, verb, total)
        @io = io
        @verb = verb
        @total = total
        @count = 0
        @started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        @shown = @started
        @tty = io.tty?
      end

      def step
        @count += 1
        return unless @tty

        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return if now - @shown < 0.2

        @shown = now
        rate = @count / (now - @started)
        eta = @total && rate.positive? ? format(", %ds left", (@total - @count) / rate) : ""
        of = @total ? " of #{@total}" : ""
        @io.print(format("\r%s %d%s (%.0f/s%s)   ", @verb, @count, of, rate, eta))
      end

      def finish
        @io.print("\r#{@verb} #{@count}#{" of #{@total}" if @total}            \n") if @tty
      end
    end
  end
end
