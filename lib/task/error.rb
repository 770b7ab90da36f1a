# frozen_string_literal: true

module Task
  # Base of every error the gem raises for a reason a caller can act on. Bad arguments (an
  # empty task list, a nil id) raise ArgumentError instead.
  class Error < StandardError
    # The text of the Cassandra driver's error behind this one (its message and those of its
    # causes), or nil when the gem raised it on its own (bad data, a timeout of its own, ...).
    attr_reader :driver_error

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

    # A read of a list stepped over more deleted tasks (tombstones not yet purged) than the
    # node allows. Not retried: it fails the same way until the tombstones are purged (see
    # the README, "Lists that churn").
    class TooManyTombstones < Error; end

    # A call, a scan or a bulk write was in progress when the process forked, and the child
    # tried to go on with it. Its requests belong to the parent's connections, which the child
    # never touches; the parent carries on unaffected. (A scan the child iterates further
    # continues on the child's own connection instead; this is raised only where that cannot
    # be done.)
    class Forked < Error; end

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
