# frozen_string_literal: true

module Task
  #--
  # Looking at lists as an operator does: how many tasks one holds, which lists there are.
  module Task
    # How many tasks the list holds, counted a page at a time (bounded memory at any size).
    def self.count(task_list)
      interface.count(task_list)
    end

    # The names of the lists that hold tasks, lazily, a page at a time.
    def self.lists
      interface.lists
    end

    # The tasks of the list saved more than `seconds` ago, lazily, in id order: what a
    # recovery job should take. Takes the options of `all` (after:, on_bad_row:).
    def self.older_than(task_list, seconds, **options)
      interface.older_than(task_list, seconds, **options)
    end

    # When the store wrote this task (a Time, to the microsecond): the server's write time on
    # Cassandra (WRITETIME of the data column), the insert time on the memory store. Known on
    # tasks read back by find or all; nil on a task built or saved here.
    def saved_at
      usec = @saved_at_usec if instance_variable_defined?(:@saved_at_usec)
      usec && Time.at(usec / 1_000_000, usec % 1_000_000)
    end
  end

  module DataInterface
    class Interface
      def count(task_list)
        adapter.count(task_list)
      end

      def lists
        adapter.lists
      end

      # The list's tasks whose write time is more than `seconds` before now, lazily. The store
      # cannot select by write time, so this reads the list and keeps the old ones; it compares
      # the server's clock with this machine's, which must agree (NTP) to within the margin
      # that matters to the caller.
      def older_than(task_list, seconds, **options)
        unless seconds.is_a?(Numeric) && seconds.real? && seconds >= 0 && seconds.finite?
          raise ArgumentError, "older_than needs a number of seconds >= 0, got #{seconds.inspect}"
        end

        cutoff = ((Time.now.to_r - seconds) * 1_000_000).floor
        all(task_list, **options).lazy.select do |task|
          usec = task.instance_variable_get(:@saved_at_usec)
          usec && usec <= cutoff
        end
      end
    end
  end
end
