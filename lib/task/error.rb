# frozen_string_literal: true

module Task
  # Base of every error the gem raises for a reason a caller can act on. Bad arguments (an
  # empty task list, a nil id) raise ArgumentError instead.
  class Error < StandardError
    # Data that cannot be stored (NaN, invalid UTF-8, nesting too deep), or a stored row that
    # cannot be read back (its data is not JSON, its type names no task class).
    class BadData < Error; end

    # Task::Task.from_hash was given a type that is not a class including Task::Task.
    class InvalidType < Error; end

    # No contact host answered. Nothing was written.
    class NoHostAvailable < Error; end

    # The request ran out of time. For a write the outcome is unknown: it may have been
    # applied. Saving again is safe (saves are upserts).
    class Timeout < Error; end

    # The server refused the request: a missing keyspace or table, bad credentials, ...
    class QueryRejected < Error; end

    # The cluster could not serve the request now (not enough replicas, overloaded).
    class Unavailable < Error; end

    # Some writes of a bulk call failed; #failures lists each one as
    # { task_list:, id:, error: }. All the others were stored.
    class BulkFailure < Error
      attr_reader :failures

      def initialize(message = nil, failures = [])
        super(message)
        @failures = failures
      end
    end
  end
end
