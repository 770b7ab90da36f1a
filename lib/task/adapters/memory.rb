# frozen_string_literal: true

module Task
  module DataInterface
    # The memory store's adapter class (ext/task_native/src/adapter/memory.rs defines it).
    class MemoryAdapter
      # How the taskrb command opens it (see Task::CLI.store_flags): `taskrb doctor --memory`.
      def self.cli_store
        { flag: "--memory", help: "--memory (doctor and schema only)", across_processes: false, open: ->(_) { new },
          describe: ->(_) { "the memory store (this process only)" },
          schema: ->(_) { "the memory store has no tables: it lives in this process only" } }
      end

      ##
      # :singleton-method: new
      # :call-seq: new(page_size: 5000, max_attempts: 25, default_ttl: nil) -> adapter
      #
      # An in-process store, for tests and demos: it keeps what the Cassandra table keeps, in
      # the same order.

      ##
      # :method: clear
      # :call-seq: clear -> nil
      #
      # Forgets every task and claim.
    end
  end
end
